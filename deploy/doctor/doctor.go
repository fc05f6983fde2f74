// Package doctor judges, read-only, what a truthful deploy of an
// environment needs and what to change: one Check per question, each ok,
// failed or unknown, with the change that fixes it (HCL for the incubator's
// Terraform layout where the fix is Terraform, else an aws command).
//
// Evaluate is pure: it decides over the State the command read (the
// preflight's probes and reads, iam:SimulatePrincipalPolicy's answers, the
// template's Terraform outputs, the lock). The service checks call the
// deploy's own decisions (rollout.CheckService, rollout.DataGuard,
// inspect.Drift), so doctor and a deploy cannot disagree.
package doctor

import (
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/deploy/inspect"
	"github.com/hackforla/ctjdeploy/deploy/preflight"
	"github.com/hackforla/ctjdeploy/deploy/rollout"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
)

// Status of a check.
type Status string

const (
	OK      Status = "ok"
	Failed  Status = "failed"
	Unknown Status = "unknown"
)

// Check is one line of doctor's answer (the contract's JSON shape).
type Check struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix"`
}

// Simulated is iam:SimulatePrincipalPolicy's decision for one write.
type Simulated struct {
	Action, Resource string
	// Decision: "allowed", "implicitDeny", "explicitDeny".
	Decision string
}

// Lock is the deploy lock's state.
type Lock struct {
	Name     string // "" when the environment has lock: false
	Read     bool
	Held     bool
	Holder   string // who, when held
	Stale    bool   // held longer than its time to live
	ReadNote string // why it could not be read
}

// State is what the command read.
type State struct {
	Env *config.Environment
	// Preflight is the probes' report; PreflightErr the failure to learn
	// the caller (no credentials).
	Preflight    *preflight.Report
	PreflightErr error
	// Writes are the simulated writes; WritesErr why they could not be
	// simulated (iam:SimulatePrincipalPolicy denied or absent).
	Writes    []Simulated
	WritesErr error
	// TaskDef is the rendered template (placeholder digests), else the live
	// revision's definition; nil when neither could be had.
	TaskDef *ecs.RegisterTaskDefinitionInput
	// TaskDefFrom says which ("template" or "live revision").
	TaskDefFrom string
	// TemplateOutputs are the Terraform outputs the template reads;
	// TemplateErr why the template could not be read.
	TemplateOutputs []string
	TemplateErr     error
	// Outputs are the names of the Terraform outputs that exist;
	// OutputsErr why they could not be read.
	Outputs    map[string]bool
	OutputsErr error
	Lock       Lock
}

// Evaluate decides every check. Pure.
func Evaluate(s State) []Check {
	env := s.Env
	if s.PreflightErr != nil || s.Preflight == nil {
		return []Check{{Check: "credentials", Status: Failed, Detail: errText(s.PreflightErr, "no AWS identity"),
			Fix: "set AWS credentials for the account of cluster " + env.Cluster + ": `aws sso login` (or AWS_PROFILE) on a laptop, the OIDC role in CI; then `aws sts get-caller-identity`"},
			{Check: "everything else", Status: Unknown, Detail: "nothing can be read without credentials"}}
	}
	p := s.Preflight
	out := []Check{{Check: "credentials", Status: OK, Detail: fmt.Sprintf("account %s as %s", p.Account, p.Identity)}}
	out = append(out, readChecks(env, p)...)
	out = append(out, writeChecks(s)...)
	out = append(out, serviceSection(s)...)
	out = append(out, ownerChecks(env, p)...)
	out = append(out, outputChecks(s)...) // Terraform outputs the template reads
	out = append(out, repositoryChecks(env, p)...)
	return append(out, lockCheck(env, s.Lock))
}

// readChecks are the reads the preflight probed, one check per action.
func readChecks(env *config.Environment, p *preflight.Report) []Check {
	var out []Check
	byAction := map[string][]preflight.Outcome{}
	var actions []string
	for _, o := range p.Outcomes {
		if _, ok := byAction[o.Action]; !ok {
			actions = append(actions, o.Action)
		}
		byAction[o.Action] = append(byAction[o.Action], o)
	}
	sort.Strings(actions)
	for _, a := range actions {
		outs := byAction[a]
		var denied, unknown []preflight.Outcome
		for _, o := range outs {
			switch o.Status {
			case preflight.Denied:
				denied = append(denied, o)
			case preflight.Unknown:
				unknown = append(unknown, o)
			}
		}
		name := "permission " + a
		switch {
		case len(denied) > 0:
			var res, lines []string
			for _, o := range denied {
				res = append(res, o.Resource)
				lines = append(lines, o.Line())
			}
			detail := "denied: " + strings.Join(lines, "; ")
			if denied[0].Degrades == "" {
				detail += "; a deploy, rollback or dry run stops with exit 2 before building"
			}
			out = append(out, Check{Check: name, Status: Failed, Detail: detail, Fix: policyFix(env, a, res)})
		case len(unknown) > 0:
			out = append(out, Check{Check: name, Status: Unknown, Detail: unknown[0].Detail, Fix: fmt.Sprintf("`ctjdeploy %s iam-policy` grants it", env.Name)})
		default:
			out = append(out, Check{Check: name, Status: OK, Detail: "allowed on " + outs[0].Resource})
		}
	}
	return out
}

// writeChecks are the writes, simulated (iam:SimulatePrincipalPolicy).
func writeChecks(s State) []Check {
	env := s.Env
	if s.WritesErr != nil || len(s.Writes) == 0 {
		return []Check{{Check: "permissions to write", Status: Unknown,
			Detail: "writes (" + strings.Join(preflight.WriteActions, ", ") + ") cannot be tried without writing, and iam:SimulatePrincipalPolicy " + errText(s.WritesErr, "answered nothing"),
			Fix:    fmt.Sprintf("compare the role's policy with `ctjdeploy %s iam-policy`; to let doctor check, allow iam:SimulatePrincipalPolicy on the role itself", env.Name)}}
	}
	var out []Check
	for _, w := range s.Writes {
		c := Check{Check: "permission " + w.Action, Detail: w.Decision + " on " + w.Resource + " (iam:SimulatePrincipalPolicy)"}
		if w.Decision == "allowed" {
			c.Status = OK
		} else {
			c.Status, c.Fix = Failed, policyFix(env, w.Action, []string{w.Resource})
		}
		out = append(out, c)
	}
	return out
}

// serviceSection is the service's checks, or why it could not be read.
func serviceSection(s State) []Check {
	env, p := s.Env, s.Preflight
	if p.Service != nil {
		return serviceChecks(s, p.Service, ModuleCall(env))
	}
	why := "the service could not be read"
	if o, ok := p.Outcome("ecs:DescribeServices"); ok && o.Status == preflight.Allowed {
		why = fmt.Sprintf("service %s not found in cluster %s", env.Service, env.Cluster)
	}
	return []Check{{Check: "service", Status: Failed, Detail: why, Fix: "check `cluster:` and `service:` in the config against `aws ecs list-services --cluster " + env.Cluster + " --region " + env.Region + "`"}}
}

// ownerChecks says whose the live revision is: ctjdeploy's or Terraform's.
func ownerChecks(env *config.Environment, p *preflight.Report) []Check {
	switch {
	case p.LiveTD != nil:
		var tags []ecstypes.Tag
		for k, v := range p.LiveTags {
			tags = append(tags, ecstypes.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		rev := inspect.NewRevision(p.LiveTD, tags)
		if rev.ByCtjdeploy {
			return []Check{{Check: "live revision owner", Status: OK, Detail: fmt.Sprintf("%s was registered by ctjdeploy (commit %s)", ecsread.ShortARN(rev.ARN), ecsread.ShortCommit(rev.Commit))}}
		}
		d := inspect.Drift(env, rev)
		return []Check{{Check: "live revision owner", Status: Failed,
			Detail: fmt.Sprintf("%s has no ctjdeploy:* tags: Terraform (or another tool) registered it, and the next `terraform apply` puts its own revision back over a deploy. %s", ecsread.ShortARN(rev.ARN), strings.Join(d, "; ")),
			Fix:    ownershipFix(ModuleCall(env))}}
	case p.Service != nil:
		return []Check{{Check: "live revision owner", Status: Unknown, Detail: "the live revision could not be read (ecs:DescribeTaskDefinition)", Fix: fmt.Sprintf("`ctjdeploy %s iam-policy` grants it", env.Name)}}
	}
	return nil
}

// repositoryChecks says whether each image's repository exists.
func repositoryChecks(env *config.Environment, p *preflight.Report) []Check {
	var out []Check
	for _, n := range env.ImageNames() {
		repo := env.Images[n].Repository
		exists, known := p.Repositories[repo]
		c := Check{Check: "repository " + repo}
		switch {
		case !known:
			c.Status, c.Detail, c.Fix = Unknown, "could not be read (ecr:DescribeRepositories)", fmt.Sprintf("`ctjdeploy %s iam-policy` grants it", env.Name)
		case exists:
			c.Status, c.Detail = OK, "exists"
		default:
			c.Status, c.Detail = Failed, fmt.Sprintf("repository %s of image %s does not exist", repo, n)
			c.Fix = fmt.Sprintf("module \"%s\" {\n  source       = \"../../modules/ecr\"\n  project_name = \"%s\"\n}\n(or: aws ecr create-repository --repository-name %s --region %s)", hclName(repo), strings.TrimSuffix(repo, "-repo"), repo, env.Region)
		}
		out = append(out, c)
	}
	return out
}

// lockCheck says what the deploy lock's state means for the next deploy.
func lockCheck(env *config.Environment, l Lock) Check {
	switch {
	case l.Name == "":
		return Check{Check: "lock", Status: OK, Detail: "lock: false: deploys run without a lock"}
	case !l.Read:
		return Check{Check: "lock", Status: Unknown, Detail: "lock parameter " + l.Name + " could not be read" + suffix(l.ReadNote), Fix: fmt.Sprintf("`ctjdeploy %s iam-policy` grants ssm:GetParameterHistory on it", env.Name)}
	case !l.Held:
		return Check{Check: "lock", Status: OK, Detail: "lock parameter " + l.Name + " is free"}
	case l.Stale:
		return Check{Check: "lock", Status: Failed, Detail: "lock " + l.Name + " is held past its time to live by " + l.Holder + " (a run that died); the next deploy takes it over with a warning",
			Fix: fmt.Sprintf("aws ssm delete-parameter --name %s --region %s   (or deploy with --force-unlock)", l.Name, env.Region)}
	default:
		return Check{Check: "lock", Status: OK, Detail: "lock " + l.Name + " is held by " + l.Holder + ": a deploy is running now (another waits, exit 5)"}
	}
}

// Failed says whether any check failed (doctor's exit 2).
func AnyFailed(cs []Check) bool {
	for _, c := range cs {
		if c.Status == Failed {
			return true
		}
	}
	return false
}

func serviceChecks(s State, svc *ecstypes.Service, mod string) []Check {
	env := s.Env
	var out []Check
	chk := rollout.CheckService(env.Name, env.Service, svc)
	cfg := svc.DeploymentConfiguration
	if cfg == nil {
		cfg = &ecstypes.DeploymentConfiguration{}
	}
	ctl := "ECS"
	if svc.DeploymentController != nil && svc.DeploymentController.Type != "" {
		ctl = string(svc.DeploymentController.Type)
	}
	if chk.Refusal != nil {
		out = append(out, Check{Check: "deployment controller and strategy", Status: Failed, Detail: chk.Refusal.Error(),
			Fix: mod + "\n# in modules/container, resource \"aws_ecs_service\":\n  deployment_controller { type = \"ECS\" }   # strategy ROLLING (the default)"})
	} else {
		out = append(out, Check{Check: "deployment controller and strategy", Status: OK, Detail: ctl + " controller, " + rollout.Strategy(svc) + " strategy"})
	}

	// Minimum/maximum percent against the data guard.
	// Unset, ECS uses 100 % and 200 % for a REPLICA service
	// ("DeploymentConfiguration", ECS API Reference).
	minP, maxP := int32(100), int32(200)
	if cfg.MinimumHealthyPercent != nil {
		minP = *cfg.MinimumHealthyPercent
	}
	if cfg.MaximumPercent != nil {
		maxP = *cfg.MaximumPercent
	}
	pct := func(p *int32, def string) string {
		if p == nil {
			return "unset (ECS's default " + def + ")"
		}
		return fmt.Sprintf("%d %%", *p)
	}
	pc := Check{Check: "minimum/maximum percent", Detail: "minimum healthy " + pct(cfg.MinimumHealthyPercent, "100 %") + ", maximum " + pct(cfg.MaximumPercent, "200 %")}
	var v rollout.Verdict
	if s.TaskDef != nil {
		v = rollout.DataGuard(s.TaskDef, svc, env.EphemeralDatabase)
	}
	switch {
	case s.TaskDef != nil && v.Outcome == rollout.Refuse:
		pc.Status, pc.Detail = Failed, pc.Detail+" ("+s.TaskDefFrom+"): the data guard refuses every deploy (exit 5): "+v.Message
		pc.Fix = percentFix(mod)
	case maxP <= 100 && minP >= 100 && svc.DesiredCount > 0:
		pc.Status, pc.Detail = Failed, pc.Detail+": ECS can neither start a new task beside the old one nor stop the old one first; no deployment can progress"
		pc.Fix = percentFix(mod)
	case s.TaskDef == nil:
		pc.Status, pc.Detail = Unknown, pc.Detail+": neither the template nor the live revision could be read, so the data guard could not be judged"
	default:
		pc.Status, pc.Detail = OK, pc.Detail+": "+v.Message
	}
	out = append(out, pc)

	// The circuit breaker and its rollback.
	cb := cfg.DeploymentCircuitBreaker
	bc := Check{Check: "circuit breaker"}
	switch {
	case len(chk.Warnings) == 0 && cb != nil && cb.Enable:
		bc.Status, bc.Detail = OK, "on, with rollback"
	case len(chk.Warnings) == 0:
		bc.Status, bc.Detail = OK, "deployment alarms watch the rollout, with rollback"
	default:
		bc.Status = Failed
		bc.Detail = strings.Join(chk.Warnings, "; ")
		if cb == nil || !cb.Enable {
			// The warning says what ctjdeploy does meanwhile; this
			// environment's threshold, once.
			bc.Detail += fmt.Sprintf(" (here failure_threshold (%d): StopServiceDeployment with ROLLBACK, exit 3)", env.FailureThreshold)
		}
		bc.Fix = breakerFix(mod)
	}
	out = append(out, bc)

	// Desired count.
	dc := svc.DesiredCount
	switch {
	case dc < 1:
		out = append(out, Check{Check: "desired count", Status: Failed, Detail: "0: a deploy starts no task, so nothing proves the new revision runs",
			Fix: fmt.Sprintf("aws ecs update-service --cluster %s --service %s --desired-count 1 --region %s", env.Cluster, env.Service, env.Region)})
	default:
		out = append(out, Check{Check: "desired count", Status: OK, Detail: fmt.Sprint(dc)})
	}
	return out
}

func outputChecks(s State) []Check {
	env := s.Env
	if s.TemplateErr != nil {
		return []Check{{Check: "terraform outputs", Status: Unknown, Detail: "the template could not be read: " + s.TemplateErr.Error(), Fix: "fix the template (`ctjdeploy " + env.Name + " --dry-run` names the error)"}}
	}
	if len(s.TemplateOutputs) == 0 {
		return []Check{{Check: "terraform outputs", Status: OK, Detail: "the template reads none"}}
	}
	if env.Terraform != nil && s.OutputsErr != nil {
		return []Check{{Check: "terraform outputs", Status: Unknown, Detail: fmt.Sprintf("the template reads %s; the outputs could not be read: %v", strings.Join(s.TemplateOutputs, ", "), s.OutputsErr),
			Fix: "run `terraform output -json` in " + env.Terraform.Dir}}
	}
	var out []Check
	for _, n := range s.TemplateOutputs {
		c := Check{Check: "terraform output " + n}
		switch {
		case env.Terraform == nil:
			c.Status, c.Detail = Failed, "the template reads {{ tf \""+n+"\" }} but the environment has no terraform: section"
			c.Fix = "add terraform: {dir: DIR} to environment " + env.Name + " in the config"
		case s.OutputsErr != nil:
			c.Status, c.Detail = Unknown, "the outputs could not be read: "+s.OutputsErr.Error()
			c.Fix = "run `terraform output -json` in " + env.Terraform.Dir
		case s.Outputs[n]:
			c.Status, c.Detail = OK, "exists"
		default:
			c.Status, c.Detail = Failed, "the template reads {{ tf \""+n+"\" }} but Terraform in "+env.Terraform.Dir+" has no such output"
			c.Fix = fmt.Sprintf("output %q {\n  value = ...   # e.g. module.civic_tech_jobs_fullstack_stage_service.task_role_arn\n}", n)
		}
		out = append(out, c)
	}
	return out
}

func errText(err error, def string) string {
	if err == nil {
		return def
	}
	return err.Error()
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}
