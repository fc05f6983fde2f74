package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/spf13/cobra"

	"github.com/hackforla/ctjdeploy/deploy/doctor"
	"github.com/hackforla/ctjdeploy/deploy/preflight"
	"github.com/hackforla/ctjdeploy/deploy/taskdef"
	"github.com/hackforla/ctjdeploy/internal/awserr"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/iampolicy"
	"github.com/hackforla/ctjdeploy/internal/lease"
	"github.com/hackforla/ctjdeploy/push"
	"github.com/hackforla/ctjdeploy/tfvars"
)

const doctorLong = `Read-only preflight: what a truthful deploy of ENV needs, and what to change.

One line per check, each ok, failed or unknown, with the change that fixes it
(HCL for the incubator's Terraform layout where the fix is Terraform, else an
aws command). It checks the credentials and account; every read a deploy,
rollback or dry run makes (probed by making it); the writes through
iam:SimulatePrincipalPolicy where the identity may call it (else unknown);
the deployment controller and strategy; minimum/maximum percent against the
data guard; the circuit breaker and its rollback; the desired count; whether
the live revision was registered by ctjdeploy or by Terraform; every
Terraform output the template reads; the repositories; the lock.

Only read calls are made. Exit 0 when no check failed, 2 otherwise.`

func newDoctorCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:               "doctor ENV",
		Short:             "Read-only preflight: what a truthful deploy of ENV needs, and what to change",
		Long:              doctorLong,
		Example:           "  ctjdeploy stage doctor\n  ctjdeploy --output json stage doctor",
		Args:              envArg,
		ValidArgsFunction: g.completeEnvs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.loadEnv(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			checks := doctor.Evaluate(readDoctorState(ctx, env))
			if err := ctx.Err(); err != nil && cmd.Context() != nil && cmd.Context().Err() != nil {
				return cmd.Context().Err()
			}
			if g.output == "json" {
				if err := writeDoctorJSON(g.stdout, checks); err != nil {
					return err
				}
			} else {
				writeDoctorText(g.stdout, checks)
			}
			if doctor.AnyFailed(checks) {
				n := 0
				for _, c := range checks {
					if c.Status == doctor.Failed {
						n++
					}
				}
				return exitcode.Invalidf("doctor: %d check(s) of %s failed; each line above names the change that fixes it", n, env.Name)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "how long to wait for AWS and Terraform")
	return cmd
}

func writeDoctorJSON(w io.Writer, checks []doctor.Check) error {
	if checks == nil {
		checks = []doctor.Check{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Checks []doctor.Check `json:"checks"`
	}{checks})
}

func writeDoctorText(w io.Writer, checks []doctor.Check) {
	moduleShown := ""
	for _, c := range checks {
		fmt.Fprintf(w, "%-8s %s: %s\n", c.Status, c.Check, c.Detail)
		if c.Fix != "" && c.Status != doctor.OK {
			fix := c.Fix
			// The container module's change is the same in every fix that
			// needs it: printed once, then referred to.
			if head, _, ok := strings.Cut(fix, doctor.ModuleChangeMarker); ok {
				if moduleShown != "" {
					fix = head + "# terraform/modules/container: the change shown under " + moduleShown
				} else {
					moduleShown = "\"" + c.Check + "\""
				}
			}
			fmt.Fprintf(w, "         fix:\n")
			for _, ln := range strings.Split(strings.TrimRight(fix, "\n"), "\n") {
				fmt.Fprintf(w, "           %s\n", ln)
			}
		}
	}
}

// readDoctorState makes doctor's reads: the preflight's probes (which read
// the service, the live revision, the repositories and the lock), the
// writes through iam:SimulatePrincipalPolicy, the template and the
// Terraform outputs. Nothing is written.
func readDoctorState(ctx context.Context, env *config.Environment) doctor.State {
	s := doctor.State{Env: env}
	cfg, err := loadAWSForEnv(ctx, env)
	if err != nil {
		s.PreflightErr = err
		return s
	}
	registry, err := push.RegistryFor(ctx, cfg, env)
	if err != nil {
		s.PreflightErr = err
		return s
	}
	// The template and the outputs (Terraform is slow: beside AWS's reads).
	var wg sync.WaitGroup
	wg.Add(1)
	var tmpl []byte
	var outs tfvars.Outputs
	go func() {
		defer wg.Done()
		tmpl, s.TemplateOutputs, s.TemplateErr = templateOutputs(env)
		if env.Terraform != nil && s.TemplateErr == nil && len(s.TemplateOutputs) > 0 {
			outs, s.OutputsErr = tfvars.Read(ctx, tfvars.Options{Dir: env.Terraform.Dir, Workspace: env.Terraform.Workspace, Init: env.Terraform.Init})
			if s.OutputsErr == nil {
				s.Outputs = map[string]bool{}
				for n := range outs {
					s.Outputs[n] = true
				}
			}
		}
	}()
	rep, err := preflight.Run(ctx, preflightClients(cfg, env), preflight.Target{Env: env, Registry: registry})
	wg.Wait()
	if err != nil {
		s.PreflightErr = err
		return s
	}
	s.Preflight = rep

	// What the data guard judges: the rendered template (placeholder
	// digests), else the live revision.
	if tmpl != nil && (s.OutputsErr == nil || len(s.TemplateOutputs) == 0) {
		refs := map[string]string{}
		for _, n := range env.ImageNames() {
			refs[n] = registry + "/" + env.Images[n].Repository + "@sha256:" + strings.Repeat("0", 64)
		}
		if td, err := taskdef.Render(filepath.Base(env.TaskDefinition), tmpl, taskdef.Inputs{Images: refs, Outputs: outs, Env: os.LookupEnv, SecretEnv: env.SecretEnv}); err == nil {
			s.TaskDef, s.TaskDefFrom = td, "the template"
		}
	}
	if s.TaskDef == nil && rep.LiveTD != nil {
		s.TaskDef, s.TaskDefFrom = taskdef.FromLive(rep.LiveTD), "the live revision"
	}

	// logs:GetLogEvents on the groups the rendered (else live) definition
	// writes to: a failed rollout shows its containers' last lines.
	if s.TaskDef != nil {
		if c := preflightClients(cfg, env); c.Logs != nil {
			rep.Outcomes = append(rep.Outcomes, preflight.ProbeLogs(ctx, c.Logs, env.Region, rep.Account, preflight.LogGroups(s.TaskDef.ContainerDefinitions))...)
		}
	}
	s.Lock = lockState(env, rep)
	s.Writes, s.WritesErr = simulateWrites(ctx, iam.NewFromConfig(cfg), env, rep, s.TaskDef, registry)
	return s
}

// templateOutputs reads the template and lists the Terraform outputs it
// reads ({{ tf "name" }}), executing it with the deploy's own renderer and
// budgets.
func templateOutputs(env *config.Environment) ([]byte, []string, error) {
	data, err := os.ReadFile(env.TaskDefinition)
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	funcs := template.FuncMap{
		"image": func(string) string { return "image" },
		"tf":    func(name string) string { seen[name] = true; return "0" },
		"env":   func(string) string { return "0" },
	}
	if _, err := taskdef.Execute(env.TaskDefinition, string(data), funcs); err != nil {
		return data, nil, err
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return data, names, nil
}

// lockState says who holds the lock, as internal/lease decided it from
// the versions the preflight read.
func lockState(env *config.Environment, rep *preflight.Report) doctor.Lock {
	l := doctor.Lock{Name: env.LockParameter()}
	if l.Name == "" {
		return l
	}
	if !rep.LockRead {
		if o, ok := rep.Outcome("ssm:GetParameterHistory"); ok {
			l.ReadNote = o.Detail
		}
		return l
	}
	l.Read, l.Held = true, rep.Lock.Held
	if !l.Held {
		return l
	}
	l.Holder = rep.Lock.Holder.String()
	v, _ := lease.Decide(rep.Lock, "", time.Now(), env.LockTTL(), false, "")
	l.Stale = v == lease.Stale
	return l
}

// simulateWrites asks iam:SimulatePrincipalPolicy whether the caller's role
// may make the writes a deploy makes, with the context keys the printed
// policy's conditions use ("SimulatePrincipalPolicy", IAM API Reference).
// An assumed-role session is simulated as its role.
func simulateWrites(ctx context.Context, api *iam.Client, env *config.Environment, rep *preflight.Report, td *ecs.RegisterTaskDefinitionInput, registry string) ([]doctor.Simulated, error) {
	principal := principalARN(rep.Identity)
	if principal == "" {
		return nil, fmt.Errorf("cannot name the caller's role from %q", rep.Identity)
	}
	part := iampolicy.Partition(env.Region)
	arn := func(service, account, resource string) string {
		return fmt.Sprintf("arn:%s:%s:%s:%s:%s", part, service, env.Region, account, resource)
	}
	acct := rep.Account
	family := ""
	if td != nil {
		family = aws.ToString(td.Family)
	}
	if family == "" && rep.LiveTD != nil {
		family = aws.ToString(rep.LiveTD.Family)
	}
	type want struct{ action, resource string }
	var ws []want
	if family != "" {
		ws = append(ws, want{"ecs:RegisterTaskDefinition", arn("ecs", acct, "task-definition/"+family+":*")}, want{"ecs:TagResource", arn("ecs", acct, "task-definition/"+family+":*")})
	}
	ws = append(ws, want{"ecs:UpdateService", arn("ecs", acct, "service/"+env.Cluster+"/"+env.Service)},
		want{"ecs:StopServiceDeployment", arn("ecs", acct, "service-deployment/"+env.Cluster+"/"+env.Service+"/*")})
	if lock := env.LockParameter(); lock != "" {
		p := arn("ssm", acct, "parameter/"+strings.TrimPrefix(lock, "/"))
		ws = append(ws, want{"ssm:PutParameter", p})
	}
	if td != nil {
		for _, r := range []*string{td.ExecutionRoleArn, td.TaskRoleArn} {
			if v := aws.ToString(r); v != "" {
				ws = append(ws, want{"iam:PassRole", iampolicy.RoleARN(part, acct, v)})
			}
		}
	}
	ecrAcct := acct
	if id := registryAccount(registry); id != "" {
		ecrAcct = id
	}
	for _, n := range env.ImageNames() {
		for _, a := range iampolicy.ECRPush {
			ws = append(ws, want{a, arn("ecr", ecrAcct, "repository/"+env.Images[n].Repository)})
		}
	}
	str := iamtypes.ContextKeyTypeEnumString
	// UpdateService's condition (ecs:task-definition) names a revision of
	// the family: the live one when it is of the family, else revision 1.
	tdARN := arn("ecs", acct, "task-definition/"+family+":1")
	if rep.LiveTD != nil && aws.ToString(rep.LiveTD.Family) == family {
		tdARN = aws.ToString(rep.LiveTD.TaskDefinitionArn)
	}
	entries := []iamtypes.ContextEntry{
		{ContextKeyName: aws.String("ecs:task-definition"), ContextKeyType: str, ContextKeyValues: []string{tdARN}},
		{ContextKeyName: aws.String("aws:RequestTag/" + ecsread.TagEnv), ContextKeyType: str, ContextKeyValues: []string{env.Name}},
		{ContextKeyName: aws.String("aws:TagKeys"), ContextKeyType: iamtypes.ContextKeyTypeEnumStringList, ContextKeyValues: []string{ecsread.TagEnv}},
		{ContextKeyName: aws.String("ecs:CreateAction"), ContextKeyType: str, ContextKeyValues: []string{"RegisterTaskDefinition"}},
		{ContextKeyName: aws.String("iam:PassedToService"), ContextKeyType: str, ContextKeyValues: []string{"ecs-tasks.amazonaws.com"}},
	}
	out := make([]doctor.Simulated, 0, len(ws))
	seen := map[string]bool{}
	for _, w := range ws {
		if seen[w.action+" "+w.resource] {
			continue
		}
		seen[w.action+" "+w.resource] = true
		res, err := api.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{PolicySourceArn: aws.String(principal),
			ActionNames: []string{w.action}, ResourceArns: []string{w.resource}, ContextEntries: entries})
		if err != nil {
			if awserr.IsAccessDenied(err) {
				return nil, fmt.Errorf("was denied to %s (%v)", rep.Identity, err)
			}
			return nil, fmt.Errorf("failed: %v", err)
		}
		if len(res.EvaluationResults) == 0 {
			return nil, errors.New("answered no evaluation result")
		}
		out = append(out, doctor.Simulated{Action: w.action, Resource: w.resource, Decision: string(res.EvaluationResults[0].EvalDecision)})
	}
	return out, nil
}

// principalARN is the IAM principal to simulate for a caller ARN: the role
// of an assumed-role session (arn:aws:sts::A:assumed-role/ROLE/SESSION →
// arn:aws:iam::A:role/ROLE; a role path is not in the session ARN), a user
// as itself.
func principalARN(caller string) string {
	parts := strings.SplitN(caller, ":", 6)
	if len(parts) != 6 {
		return ""
	}
	res := parts[5]
	switch {
	case parts[2] == "sts" && strings.HasPrefix(res, "assumed-role/"):
		role := strings.Split(strings.TrimPrefix(res, "assumed-role/"), "/")[0]
		return fmt.Sprintf("arn:%s:iam::%s:role/%s", parts[1], parts[4], role)
	case parts[2] == "sts" && strings.HasPrefix(res, "user/"):
		return fmt.Sprintf("arn:%s:iam::%s:%s", parts[1], parts[4], res)
	case parts[2] == "iam":
		return caller
	}
	return ""
}

func registryAccount(host string) string {
	if i := strings.Index(host, ".dkr.ecr."); i == 12 {
		return host[:12]
	}
	return ""
}
