package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/spf13/cobra"

	"github.com/hackforla/ctjdeploy/deploy/taskdef"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/iampolicy"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/internal/tmplbudget"
	"github.com/hackforla/ctjdeploy/tfvars"
)

type iamFlags struct {
	account string
	format  string
	timeout time.Duration
}

func newIAMPolicyCmd(g *globals) *cobra.Command {
	f := &iamFlags{}
	cmd := &cobra.Command{
		Use:   "iam-policy ENV",
		Short: "Print the least-privilege IAM policy ctjdeploy needs for ENV",
		Long: `Print, as JSON, the least-privilege IAM policy that deploy, rollback, status
and history need for ENV: ECR push and pull on exactly its repositories,
ecr:GetAuthorizationToken, the ECS calls scoped to its cluster, service and
task definition family, and iam:PassRole on exactly the roles its task
definition names. Attach it to the CI role (e.g. incubator-cicd-civic-tech-jobs).
With --format terraform it is printed as a data "aws_iam_policy_document"
block named ctjdeploy_ENV, statement for statement the same.

The account comes from --account, else from sts:GetCallerIdentity (which
needs no permission), else the policy says ACCOUNT_ID. The family and the
roles come from the task definition template, rendered with the Terraform
outputs; what the template cannot give is read from the live task definition
of the service; what neither gives is named in a warning and left as a
placeholder in the policy.`,
		Example: `  ctjdeploy stage iam-policy > ctjdeploy-stage-policy.json
  ctjdeploy stage iam-policy --account 123456789012
  ctjdeploy stage iam-policy --format terraform >> terraform/cicd.tf`,
		Args:              envArg,
		ValidArgsFunction: g.completeEnvs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runIAMPolicy(cmd.Context(), g, f, args[0])
		},
	}
	cmd.Flags().StringVar(&f.account, "account", "", "AWS account id of the cluster (default: from sts:GetCallerIdentity)")
	cmd.Flags().StringVar(&f.format, "format", "json", `json (a policy document) or terraform (a data "aws_iam_policy_document" block for cicd.tf)`)
	cmd.Flags().DurationVar(&f.timeout, "timeout", 30*time.Second, "how long to wait for Terraform and AWS")
	return cmd
}

var accountRE = regexp.MustCompile(`^\d{12}$`)

func runIAMPolicy(ctx context.Context, g *globals, f *iamFlags, envName string) error {
	env, err := g.loadEnv(envName)
	if err != nil {
		return err
	}
	if f.account != "" && !accountRE.MatchString(f.account) {
		return exitcodeInvalidf("--account %q: an AWS account id is 12 digits", f.account)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	p := report.For(g.reporter(), "iam-policy")
	a := &awsAccess{region: env.Region}

	account := f.account
	if account == "" {
		account, err = a.account(ctx)
		if err != nil {
			p.Warnf("could not learn the AWS account from sts:GetCallerIdentity (%v); the policy says %s: replace it, or pass --account", err, iampolicy.AccountPlaceholder)
			account = iampolicy.AccountPlaceholder
		}
	}

	td := probeTaskDefinition(ctx, env)
	if errors.As(td.tmplErr, new(*tmplbudget.Error)) {
		return td.tmplErr // a template bomb is exit 2, here as in a deploy
	}
	if td.invalid != nil {
		return td.invalid
	}
	if len(td.unresolved()) > 0 {
		live, err := a.liveTaskDefinition(ctx, env)
		if err != nil {
			td.liveErr = err
		} else {
			td.fillFrom(live)
		}
	}

	part := iampolicy.Partition(env.Region)
	family := td.fields["family"].value
	if !td.fields["family"].resolved() {
		family = "UNRESOLVED-family"
		p.Warnf("could not resolve the task definition family: %s; the policy names task-definition/%s: replace it", td.why("family"), family)
	}
	var roles []string
	for _, key := range []string{"executionRoleArn", "taskRoleArn"} {
		fv, named := td.fields[key]
		switch {
		case !named || (fv.resolved() && fv.value == ""):
			// The task definition passes no such role: nothing to allow.
		case fv.resolved():
			roles = append(roles, iampolicy.RoleARN(part, account, fv.value))
		default:
			placeholder := fmt.Sprintf("arn:%s:iam::%s:role/UNRESOLVED-%s", part, account, key)
			p.Warnf("could not resolve %s of the task definition: %s; the policy names %s: replace it with the role's ARN", key, td.why(key), placeholder)
			roles = append(roles, placeholder)
		}
	}
	// A name that renders as a wildcard would widen the policy to every
	// family, role or log group it matches (IAM reads * and ? in a
	// Resource as wildcards, ${...} as a policy variable).
	for _, n := range []struct{ what, value string }{{"family", family}} {
		if err := notWildcard(env.TaskDefinition, n.what, n.value); err != nil {
			return err
		}
	}
	for _, r := range roles {
		if err := notWildcard(env.TaskDefinition, "role", r); err != nil {
			return err
		}
	}
	for _, g := range td.logGroups {
		if err := notWildcard(env.TaskDefinition, "log group (awslogs-group)", g); err != nil {
			return err
		}
	}
	doc := iampolicy.Policy(env, account, family, roles, td.logGroups...)
	var out []byte
	switch f.format {
	case "", "json":
		out = doc.JSON()
	case "terraform":
		out = doc.HCL("ctjdeploy_" + env.Name)
	default:
		return exitcodeInvalidf("--format %q: one of json, terraform", f.format)
	}
	_, err = g.stdout.Write(out)
	return err
}

// notWildcard refuses a value the policy would read as a pattern.
func notWildcard(tmpl, what, value string) error {
	if strings.ContainsAny(value, "*?") || strings.Contains(value, "${") {
		return exitcodeInvalidf("%s: the task definition's %s renders as %q, which IAM reads as a wildcard (or a policy variable): the policy would allow far more than this environment; make the template (or the Terraform output it uses) give the exact name", tmpl, what, value)
	}
	return nil
}

// jsonKind names the JSON type of a decoded value.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	}
	return "an object"
}

// awsAccess reaches AWS lazily: the config is loaded, and STS asked, once.
type awsAccess struct {
	region  string
	cfg     *aws.Config
	cfgErr  error
	acct    string
	acctErr error
	asked   bool
}

func (a *awsAccess) config(ctx context.Context) (aws.Config, error) {
	if a.cfg == nil && a.cfgErr == nil {
		cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(a.region))
		a.cfg, a.cfgErr = &cfg, err
	}
	return *a.cfg, a.cfgErr
}

func (a *awsAccess) account(ctx context.Context) (string, error) {
	if a.asked {
		return a.acct, a.acctErr
	}
	a.asked = true
	cfg, err := a.config(ctx)
	if err != nil {
		a.acctErr = err
		return "", err
	}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		a.acctErr = err
		return "", err
	}
	a.acct = aws.ToString(out.Account)
	if !accountRE.MatchString(a.acct) {
		a.acctErr = fmt.Errorf("sts:GetCallerIdentity returned account %q", a.acct)
	}
	return a.acct, a.acctErr
}

// liveTaskDefinition reads the family and roles of the revision the service
// runs now.
func (a *awsAccess) liveTaskDefinition(ctx context.Context, env *config.Environment) (map[string]string, error) {
	if _, err := a.account(ctx); err != nil {
		return nil, fmt.Errorf("AWS is not reachable: %w", err)
	}
	cfg, err := a.config(ctx)
	if err != nil {
		return nil, err
	}
	c := ecs.NewFromConfig(cfg)
	ds, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(env.Cluster), Services: []string{env.Service}})
	if err != nil {
		return nil, fmt.Errorf("ecs:DescribeServices %s/%s: %w", env.Cluster, env.Service, err)
	}
	if len(ds.Services) == 0 || aws.ToString(ds.Services[0].TaskDefinition) == "" {
		return nil, fmt.Errorf("service %s not found in cluster %s", env.Service, env.Cluster)
	}
	arn := aws.ToString(ds.Services[0].TaskDefinition)
	dt, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("ecs:DescribeTaskDefinition %s: %w", arn, err)
	}
	td := dt.TaskDefinition
	return map[string]string{
		"family":           aws.ToString(td.Family),
		"executionRoleArn": aws.ToString(td.ExecutionRoleArn),
		"taskRoleArn":      aws.ToString(td.TaskRoleArn),
	}, nil
}

// unresolvedMark marks, in a probed template, a value the probe could not
// know; it survives JSON decoding.
const unresolvedMark = "\u2047UNRESOLVED:"

// fieldValue is one probed field of the task definition.
type fieldValue struct {
	value  string
	source string // "template", "live"
}

func (f fieldValue) resolved() bool { return !strings.Contains(f.value, unresolvedMark) }

// probedTD is what the template (and, failing it, the live revision) says
// about the family and the roles.
type probedTD struct {
	fields map[string]fieldValue // family, executionRoleArn, taskRoleArn (absent: not in the template)
	// logGroups are the resolved awslogs-group options of the containers
	// (their last lines are read on a failed rollout).
	logGroups []string
	needs     map[string][]string // field → what its value needs: `tf "x"`, `env "Y"`
	tmplErr   error               // the template could not be probed at all
	invalid   error               // the template renders to something no deploy accepts (exit 2)
	tfErr     error               // Terraform outputs could not be read
	liveErr   error               // the live task definition could not be read
}

func (t *probedTD) unresolved() []string {
	var out []string
	for _, k := range []string{"family", "executionRoleArn", "taskRoleArn"} {
		if f, ok := t.fields[k]; (ok && !f.resolved()) || (!ok && k == "family") {
			out = append(out, k)
		}
	}
	return out
}

func (t *probedTD) fillFrom(live map[string]string) {
	for _, k := range t.unresolved() {
		t.fields[k] = fieldValue{value: live[k], source: "live"}
	}
}

// why explains why field is unresolved.
func (t *probedTD) why(field string) string {
	var parts []string
	if t.tmplErr != nil {
		parts = append(parts, fmt.Sprintf("the template could not be read (%v)", t.tmplErr))
	} else if needs := t.needs[field]; len(needs) > 0 {
		s := "the template takes it from " + strings.Join(needs, ", ")
		if t.tfErr != nil {
			s += fmt.Sprintf(" and the Terraform outputs could not be read (%v)", t.tfErr)
		}
		parts = append(parts, s)
	} else if _, ok := t.fields[field]; !ok {
		parts = append(parts, "the template does not name it")
	}
	if t.liveErr != nil {
		parts = append(parts, fmt.Sprintf("the live task definition could not be read (%v)", t.liveErr))
	}
	return strings.Join(parts, "; ")
}

// probeTaskDefinition renders env's task definition template as far as it
// can without images: Terraform outputs when they can be read, environment
// variables that are set; every other value is marked unresolved.
func probeTaskDefinition(ctx context.Context, env *config.Environment) *probedTD {
	t := &probedTD{fields: map[string]fieldValue{}, needs: map[string][]string{}}
	var outs tfvars.Outputs
	if env.Terraform != nil {
		o, err := tfvars.Read(ctx, tfvars.Options{Dir: env.Terraform.Dir, Workspace: env.Terraform.Workspace, Init: env.Terraform.Init})
		if err != nil {
			t.tfErr = err
		} else {
			outs = o
		}
	} else {
		t.tfErr = errors.New("the environment has no terraform: section")
	}
	// The renderer's own function map (taskdef.Funcs), with lookups that
	// never fail: a sensitive output or a secret variable is never used
	// here (the policy is printed, and a value derived from a secret would
	// be in it); what needs one stays unresolved (the live definition
	// fills it).
	funcs := taskdef.Funcs(taskdef.Lookup{
		Image: func(name string) (string, error) { return "IMAGE-" + name, nil },
		TF: func(name string) (string, error) {
			if outs != nil && !outs[name].Sensitive {
				if v, err := outs.Scalar(name); err == nil {
					return v, nil
				}
			}
			return unresolvedMark + `tf "` + name + `"`, nil
		},
		Env: func(name string) (string, error) {
			if v, ok := os.LookupEnv(name); ok && !taskdef.SecretEnvName(name, env.SecretEnv) {
				return v, nil
			}
			return unresolvedMark + `env "` + name + `"`, nil
		},
	})
	data, err := taskdef.ReadTemplate(env.TaskDefinition)
	if err != nil {
		t.tmplErr = err
		return t
	}
	// The renderer deploy uses, with its budgets (time, size, no range or
	// recursion): a template bomb fails fast here too.
	rendered, err := taskdef.Execute(env.TaskDefinition, string(data), funcs)
	if err != nil {
		t.tmplErr = err
		return t
	}
	var doc map[string]any
	if err := json.Unmarshal(rendered, &doc); err != nil {
		t.tmplErr = fmt.Errorf("%s is not JSON once rendered: %w", env.TaskDefinition, err)
		return t
	}
	if cds, ok := doc["containerDefinitions"].([]any); ok {
		for i, cd := range cds {
			obj, ok := cd.(map[string]any)
			if !ok {
				t.invalid = exitcodeInvalidf("%s: containerDefinitions[%d] is %s once rendered, not an object: fix the template", env.TaskDefinition, i, jsonKind(cd))
				return t
			}
			lc, _ := obj["logConfiguration"].(map[string]any)
			opts, _ := lc["options"].(map[string]any)
			if g, _ := opts["awslogs-group"].(string); lc["logDriver"] == "awslogs" && g != "" && !strings.Contains(g, unresolvedMark) {
				t.logGroups = append(t.logGroups, g)
			}
		}
	}
	markRE := regexp.MustCompile(unresolvedMark + `((?:tf|env) "[^"]*")`)
	for _, k := range []string{"family", "executionRoleArn", "taskRoleArn"} {
		v, ok := doc[k]
		if !ok {
			continue
		}
		s, _ := v.(string)
		t.fields[k] = fieldValue{value: s, source: "template"}
		for _, m := range markRE.FindAllStringSubmatch(s, -1) {
			t.needs[k] = append(t.needs[k], m[1])
		}
	}
	return t
}
