// Package preflight makes every read a deploy, a rollback or a dry run
// needs before the first build and the first write, and collects the calls
// AWS denies, so that a role missing permissions learns all of them at once
// (exit 2, nothing built, pushed or written) instead of one per run, minutes
// into a build.
//
// The probe list lives here only: deploy, rollback and doctor share it.
//
// What is probed, and why it is safe: each probe is a read of the very
// resource the run reads (the service, its live revision, the repositories,
// the lock parameter, the log groups), bounded to one item where the API
// pages. A probe answered with anything but access denied counts as
// allowed: the call got past IAM authorization (IAM User Guide,
// "Understanding how IAM works": a request is authenticated, then
// authorized, and only then is the operation performed on the resource, so
// a "not found" answer proves the permission; DescribeTasks and
// DescribeServiceDeployments answer an unknown ARN in failures[], "ECS API
// Reference"). Access denied is the code AccessDeniedException (ECS, ECR,
// SSM, CloudWatch Logs), AccessDenied (STS, IAM) or UnauthorizedOperation
// (EC2-style APIs).
//
// Writes (ecs:RegisterTaskDefinition, ecs:TagResource, ecs:UpdateService,
// ecs:StopServiceDeployment, ssm:PutParameter,
// iam:PassRole, the ECR pushes) cannot be tried without writing: `ENV doctor`
// asks iam:SimulatePrincipalPolicy about them where the identity may call it.
//
// The service deployment API (ecs:ListServiceDeployments,
// ecs:DescribeServiceDeployments), CloudWatch Logs' GetLogEvents and
// ecr:DescribeImages (status only) are reads the run can do without: ctjdeploy follows the service's deployments
// instead, and a failed rollout is reported without the containers' last log
// lines. Their denial is named (with what is lost) in the same message when
// other reads are denied; alone it is a warning and the run goes on. This is
// the same fallback the follower takes (rollout.Follow) on an account
// without the API.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/hackforla/ctjdeploy/internal/awserr"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/iampolicy"
	"github.com/hackforla/ctjdeploy/internal/lease"
)

// STS is the part of STS the preflight calls.
type STS interface {
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, opts ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// ECR is the part of the ECR API the preflight calls.
type ECR interface {
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, opts ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
	DescribeRepositories(ctx context.Context, in *ecr.DescribeRepositoriesInput, opts ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error)
	DescribeImages(ctx context.Context, in *ecr.DescribeImagesInput, opts ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)
	ListImages(ctx context.Context, in *ecr.ListImagesInput, opts ...func(*ecr.Options)) (*ecr.ListImagesOutput, error)
	BatchGetImage(ctx context.Context, in *ecr.BatchGetImageInput, opts ...func(*ecr.Options)) (*ecr.BatchGetImageOutput, error)
}

// ECS is the part of the ECS API the preflight reads.
type ECS interface {
	DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput, opts ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error)
	DescribeTaskDefinition(ctx context.Context, in *ecs.DescribeTaskDefinitionInput, opts ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error)
	ListTaskDefinitions(ctx context.Context, in *ecs.ListTaskDefinitionsInput, opts ...func(*ecs.Options)) (*ecs.ListTaskDefinitionsOutput, error)
	ListTasks(ctx context.Context, in *ecs.ListTasksInput, opts ...func(*ecs.Options)) (*ecs.ListTasksOutput, error)
	DescribeTasks(ctx context.Context, in *ecs.DescribeTasksInput, opts ...func(*ecs.Options)) (*ecs.DescribeTasksOutput, error)
	ListServiceDeployments(ctx context.Context, in *ecs.ListServiceDeploymentsInput, opts ...func(*ecs.Options)) (*ecs.ListServiceDeploymentsOutput, error)
	DescribeServiceDeployments(ctx context.Context, in *ecs.DescribeServiceDeploymentsInput, opts ...func(*ecs.Options)) (*ecs.DescribeServiceDeploymentsOutput, error)
}

// SSM is the part of SSM the preflight reads (the deploy lock, read as
// internal/lease reads it: the parameter's history).
type SSM interface {
	GetParameterHistory(ctx context.Context, in *ssm.GetParameterHistoryInput, opts ...func(*ssm.Options)) (*ssm.GetParameterHistoryOutput, error)
}

// Logs is the part of CloudWatch Logs the preflight reads.
type Logs interface {
	GetLogEvents(ctx context.Context, in *cloudwatchlogs.GetLogEventsInput, opts ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.GetLogEventsOutput, error)
}

// Clients are the AWS clients the probes call. Logs and SSM may be nil (no
// probe of them).
type Clients struct {
	STS  STS
	ECR  ECR
	ECS  ECS
	SSM  SSM
	Logs Logs
}

// Status is one probe's outcome.
type Status string

const (
	// Allowed: the call got past IAM (it answered, or answered "not found").
	Allowed Status = "allowed"
	// Denied: AWS answered access denied.
	Denied Status = "denied"
	// Unknown: the probe could not tell (another error, or nothing to
	// probe with, e.g. the live revision unknown because reading the
	// service was denied).
	Unknown Status = "unknown"
)

// Outcome is one probed read.
type Outcome struct {
	Action string `json:"action"`
	// Resource is the IAM resource the call is authorized on (as the
	// Service Authorization Reference defines it and `iam-policy` grants it).
	Resource string `json:"resource"`
	// Target is what was read, when it differs from Resource (e.g. the
	// live revision for ecs:DescribeTaskDefinition, which IAM authorizes on "*").
	Target string `json:"target,omitempty"`
	Status Status `json:"status"`
	// Detail is AWS's message (denied) or the error (unknown).
	Detail string `json:"detail,omitempty"`
	// Degrades is non-empty for a read the run can do without: what is lost.
	Degrades string `json:"degrades,omitempty"`
}

// Report is what the preflight read and which reads AWS denied.
type Report struct {
	Account  string    `json:"account,omitempty"`
	Identity string    `json:"identity,omitempty"` // the caller's ARN
	Outcomes []Outcome `json:"outcomes"`

	// What the probes read, for doctor (nil when not read).
	Service  *ecstypes.Service        `json:"-"`
	LiveTD   *ecstypes.TaskDefinition `json:"-"`
	LiveTags map[string]string        `json:"-"`
	// Repositories maps each configured repository to whether it exists
	// (absent: unknown).
	Repositories map[string]bool `json:"-"`
	// Lock is the deploy lock as internal/lease decides it from the
	// parameter's versions; LockRead says it was read.
	Lock     lease.State `json:"-"`
	LockRead bool        `json:"-"`
}

// Denials are the denied reads the run needs (Degrades == "").
func (r *Report) Denials() []Outcome {
	return r.filter(func(o Outcome) bool { return o.Status == Denied && o.Degrades == "" })
}

// Degraded are the denied reads the run can do without.
func (r *Report) Degraded() []Outcome {
	return r.filter(func(o Outcome) bool { return o.Status == Denied && o.Degrades != "" })
}

func (r *Report) filter(keep func(Outcome) bool) []Outcome {
	var out []Outcome
	for _, o := range r.Outcomes {
		if keep(o) {
			out = append(out, o)
		}
	}
	return out
}

// Outcome returns the outcome of action (the first probe of it).
func (r *Report) Outcome(action string) (Outcome, bool) {
	for _, o := range r.Outcomes {
		if o.Action == action {
			return o, true
		}
	}
	return Outcome{}, false
}

// WriteActions are the calls a deploy or rollback writes with; they cannot be
// probed by calling them (doctor simulates them).
var WriteActions = []string{
	"ecs:RegisterTaskDefinition", "ecs:TagResource", "ecs:UpdateService", "ecs:StopServiceDeployment",
	"ssm:PutParameter", "iam:PassRole",
	"ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage",
}

// Err is the exit-2 error listing every denied read, nil when the run can
// go on (only reads it can do without were denied: see Warnings).
func (r *Report) Err(env string) error {
	den := r.Denials()
	if len(den) == 0 {
		return nil
	}
	all := append(den, r.Degraded()...)
	var b strings.Builder
	who := "the AWS identity"
	if r.Identity != "" {
		who += " " + r.Identity
	}
	fmt.Fprintf(&b, "%s may not make %d of the reads ctjdeploy makes for %s; nothing was built, pushed or written. Denied:\n", who, len(all), env)
	for _, o := range all {
		b.WriteString("  " + o.Line() + "\n")
	}
	fmt.Fprintf(&b, "Fix: attach the policy `ctjdeploy %s iam-policy` prints to this identity (it grants every call a deploy, a rollback, status and history make). "+
		"Writes (%s) cannot be tried without writing: `ctjdeploy %s doctor` checks them through iam:SimulatePrincipalPolicy where this identity may call it.",
		env, strings.Join(WriteActions, ", "), env)
	return exitcode.Invalidf("%s", b.String())
}

// Warnings name the denied reads the run can do without.
func (r *Report) Warnings(env string) []string {
	if len(r.Denials()) > 0 {
		return nil // named in Err
	}
	var out []string
	for _, o := range r.Degraded() {
		out = append(out, fmt.Sprintf("access denied: %s; grant it (`ctjdeploy %s iam-policy`)", o.Line(), env))
	}
	return out
}

// Line is "ACTION on RESOURCE (reading TARGET): what is lost".
func (o Outcome) Line() string {
	s := o.Action + " on " + o.Resource
	if o.Target != "" {
		s += " (reading " + o.Target + ")"
	}
	if o.Degrades != "" {
		s += " [can do without: " + o.Degrades + "]"
	}
	return s
}

// Timeout bounds the whole preflight: a probe that has not answered by then
// is unknown (the run's own call reports what is wrong).
var Timeout = 20 * time.Second

// Target names what the run deploys.
type Target struct {
	Env *config.Environment
	// Registry is the environment's registry host (an ECR host names the
	// repositories' account; a loopback test registry uses the caller's).
	Registry string
	// LogGroups are the awslogs groups of the rendered task definition
	// (logs:GetLogEvents is probed on each). A deploy's plan knows them
	// only after Terraform is read, so its preflight passes none and
	// doctor probes them; the live revision's groups are not a stand-in
	// (a template may have moved them).
	LogGroups []string
}

// Run makes every probe, concurrently where they do not depend on each
// other, and returns what it found. The error is only for a failure to
// learn who the caller is (no credentials) or an interruption; denials are
// in the Report (Report.Err).
//
// The probes run in stages: the service first, alone (it is the run's
// first read, the one a wrong config or a policy for another service fails
// on, and it names the live revision the later probes read); then the
// registry, the service's tasks and deployments and the lock; then what
// those named (the live revision, a task, a service deployment); then the
// log groups the caller names.
func Run(ctx context.Context, c Clients, t Target) (*Report, error) {
	id, err := c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil, fmt.Errorf("checking the AWS credentials (sts:GetCallerIdentity, which every identity may call): %w; set AWS credentials (AWS_PROFILE, or the OIDC role in CI)", err)
	}
	rep := &Report{Account: aws.ToString(id.Account), Identity: aws.ToString(id.Arn), Repositories: map[string]bool{}, LiveTags: map[string]string{}}
	pctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	p := newProber(c, t, rep)
	for _, stage := range []func() []probe{p.service, p.reads, p.named} {
		rep.Outcomes = append(rep.Outcomes, runAll(pctx, stage())...)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if len(t.LogGroups) > 0 && c.Logs != nil {
		rep.Outcomes = append(rep.Outcomes, ProbeLogs(pctx, c.Logs, t.Env.Region, rep.Account, t.LogGroups)...)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return rep, nil
}

// prober is one preflight: its inputs, the ARNs its probes name, and what
// the probes learnt (rep, and the task and service deployment the later
// stage reads), under mu.
type prober struct {
	c    Clients
	t    Target
	env  *config.Environment
	rep  *Report
	part string
	// ecrAcct is the registry's account (the caller's unless registry is
	// another account's ECR), registryID the same for the ECR calls (nil:
	// the caller's).
	ecrAcct                string
	registryID             *string
	serviceARN, clusterARN string

	mu      sync.Mutex
	taskARN string // a task of the service (ListTasks)
	sdARN   string // a service deployment of the service (ListServiceDeployments)
}

func newProber(c Clients, t Target, rep *Report) *prober {
	env := t.Env
	p := &prober{c: c, t: t, env: env, rep: rep, part: iampolicy.Partition(env.Region), ecrAcct: rep.Account}
	if id := config.ECRRegistryID(t.Registry); id != "" {
		p.ecrAcct, p.registryID = id, aws.String(id)
	}
	p.serviceARN = p.arn("ecs", rep.Account, "service/"+env.Cluster+"/"+env.Service)
	p.clusterARN = p.arn("ecs", rep.Account, "cluster/"+env.Cluster)
	return p
}

// arn is an ARN in the environment's partition and region.
func (p *prober) arn(service, account, resource string) string {
	return fmt.Sprintf("arn:%s:%s:%s:%s:%s", p.part, service, p.env.Region, account, resource)
}

// service probes ecs:DescribeServices and keeps the service (by name).
func (p *prober) service() []probe {
	env := p.env
	return []probe{{action: "ecs:DescribeServices", resource: p.serviceARN, call: func(ctx context.Context) error {
		out, err := p.c.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(env.Cluster), Services: []string{env.Service}})
		if err == nil {
			for i := range out.Services {
				if aws.ToString(out.Services[i].ServiceName) == env.Service {
					p.mu.Lock()
					p.rep.Service = &out.Services[i]
					p.mu.Unlock()
				}
			}
		}
		return err
	}}}
}

// reads are the probes that need nothing but the config: the registry
// (token, and each repository), the service's tasks and deployments, the
// deploy lock.
func (p *prober) reads() []probe {
	ps := []probe{{action: "ecr:GetAuthorizationToken", resource: "*", call: func(ctx context.Context) error {
		_, err := p.c.ECR.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
		return err
	}}}
	for _, n := range p.env.ImageNames() {
		ps = append(ps, p.repository(p.env.Images[n].Repository)...)
	}
	ps = append(ps, p.listings()...)
	if lock := p.env.LockParameter(); lock != "" && p.c.SSM != nil {
		ps = append(ps, p.lock(lock))
	}
	return ps
}

// repository probes the ECR reads on repo, and learns whether it exists.
func (p *prober) repository(repo string) []probe {
	env, c, registryID := p.env, p.c, p.registryID
	res := p.arn("ecr", p.ecrAcct, "repository/"+repo)
	return []probe{
		{action: "ecr:DescribeRepositories", resource: res, call: func(ctx context.Context) error {
			out, err := c.ECR.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RegistryId: registryID, RepositoryNames: []string{repo}})
			var nf *ecrtypes.RepositoryNotFoundException
			p.mu.Lock()
			defer p.mu.Unlock()
			switch {
			case errors.As(err, &nf):
				p.rep.Repositories[repo] = false
			case err == nil:
				p.rep.Repositories[repo] = len(out.Repositories) > 0
			}
			return err
		}},
		{action: "ecr:BatchGetImage", resource: res, target: repo + ":" + env.Name, call: func(ctx context.Context) error {
			_, err := c.ECR.BatchGetImage(ctx, &ecr.BatchGetImageInput{RegistryId: registryID, RepositoryName: aws.String(repo),
				ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String(env.Name)}}})
			// A role with pulls but without DescribeRepositories (the
			// incubator's) still tells whether the repository exists.
			var nf *ecrtypes.RepositoryNotFoundException
			p.mu.Lock()
			defer p.mu.Unlock()
			if _, known := p.rep.Repositories[repo]; !known {
				switch {
				case errors.As(err, &nf):
					p.rep.Repositories[repo] = false
				case err == nil:
					p.rep.Repositories[repo] = true
				}
			}
			return err
		}},
		{action: "ecr:DescribeImages", resource: res, degrades: "status does not show the live images' registry tags", call: func(ctx context.Context) error {
			_, err := c.ECR.DescribeImages(ctx, &ecr.DescribeImagesInput{RegistryId: registryID, RepositoryName: aws.String(repo), MaxResults: aws.Int32(1)})
			return err
		}},
		{action: "ecr:ListImages", resource: res, call: func(ctx context.Context) error {
			_, err := c.ECR.ListImages(ctx, &ecr.ListImagesInput{RegistryId: registryID, RepositoryName: aws.String(repo), MaxResults: aws.Int32(1)})
			return err
		}},
	}
}

// listings probes the service's task and service deployment lists, and
// keeps one of each for the next stage.
func (p *prober) listings() []probe {
	env, c := p.env, p.c
	return []probe{
		{action: "ecs:ListTasks", resource: "* (condition ecs:cluster = " + p.clusterARN + ")", call: func(ctx context.Context) error {
			out, err := c.ECS.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(env.Cluster), ServiceName: aws.String(env.Service), MaxResults: aws.Int32(1)})
			if err == nil && len(out.TaskArns) > 0 {
				p.mu.Lock()
				p.taskARN = out.TaskArns[0]
				p.mu.Unlock()
			}
			return err
		}},
		{action: "ecs:ListServiceDeployments", resource: p.serviceARN, degrades: sdDegrades, call: func(ctx context.Context) error {
			out, err := c.ECS.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Cluster: aws.String(env.Cluster), Service: aws.String(env.Service), MaxResults: aws.Int32(1)})
			if err == nil && len(out.ServiceDeployments) > 0 {
				p.mu.Lock()
				p.sdARN = aws.ToString(out.ServiceDeployments[0].ServiceDeploymentArn)
				p.mu.Unlock()
			}
			return err
		}},
	}
}

// lock probes reading the deploy lock's parameter, and reads it as
// internal/lease does (its history).
func (p *prober) lock(lock string) probe {
	return probe{action: "ssm:GetParameterHistory", resource: p.arn("ssm", p.rep.Account, "parameter/"+strings.TrimPrefix(lock, "/")), call: func(ctx context.Context) error {
		st, err := lease.Read(ctx, p.c.SSM, lock)
		if err == nil {
			p.mu.Lock()
			p.rep.Lock, p.rep.LockRead = st, true
			p.mu.Unlock()
		}
		return err
	}}
}

// named are the probes on what the first reads named: the live revision
// and its family, a task, a service deployment. Without a live revision
// its two probes are Unknown outcomes.
func (p *prober) named() []probe {
	var ps []probe
	if p.rep.Service != nil && aws.ToString(p.rep.Service.TaskDefinition) != "" {
		ps = append(ps, p.live(aws.ToString(p.rep.Service.TaskDefinition))...)
	} else {
		p.rep.Outcomes = append(p.rep.Outcomes,
			Outcome{Action: "ecs:DescribeTaskDefinition", Resource: "*", Status: Unknown, Detail: "the live revision is unknown (the service could not be read)"},
			Outcome{Action: "ecs:ListTaskDefinitions", Resource: "*", Status: Unknown, Detail: "the family is unknown (the service could not be read)"})
	}
	return append(ps, p.describes()...)
}

// live probes reading the live revision (kept, with its tags) and listing
// its family.
func (p *prober) live(liveARN string) []probe {
	c, family := p.c, ecsread.Family(liveARN)
	return []probe{
		{action: "ecs:DescribeTaskDefinition", resource: "*", target: liveARN, call: func(ctx context.Context) error {
			out, err := c.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(liveARN),
				Include: []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags}})
			if err == nil {
				p.mu.Lock()
				p.rep.LiveTD = out.TaskDefinition
				for k, v := range ecsread.TagMap(out.Tags) {
					p.rep.LiveTags[k] = v
				}
				p.mu.Unlock()
			}
			return err
		}},
		{action: "ecs:ListTaskDefinitions", resource: "*", target: "family " + family, call: func(ctx context.Context) error {
			_, err := c.ECS.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(family), MaxResults: aws.Int32(1)})
			return err
		}},
	}
}

// describes probes DescribeTasks and DescribeServiceDeployments: on a task
// or a service deployment of the service when one is listed, else on an id
// that does not exist (AWS authorizes before it looks the resource up, and
// answers a missing task in failures[]).
func (p *prober) describes() []probe {
	env, c, acct := p.env, p.c, p.rep.Account
	tARN := p.taskARN
	if tARN == "" {
		tARN = p.arn("ecs", acct, "task/"+env.Cluster+"/00000000000000000000000000000000")
	}
	sd := p.sdARN
	if sd == "" {
		sd = p.arn("ecs", acct, "service-deployment/"+env.Cluster+"/"+env.Service+"/ctjdeploypreflight0000")
	}
	return []probe{
		{action: "ecs:DescribeTasks", resource: p.arn("ecs", acct, "task/"+env.Cluster+"/*"), target: tARN, call: func(ctx context.Context) error {
			_, err := c.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(env.Cluster), Tasks: []string{tARN}})
			return err
		}},
		{action: "ecs:DescribeServiceDeployments", resource: p.arn("ecs", acct, "service-deployment/"+env.Cluster+"/"+env.Service+"/*"), target: sd, degrades: sdDegrades, call: func(ctx context.Context) error {
			_, err := c.ECS.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{sd}})
			return err
		}},
	}
}

// ProbeLogs probes logs:GetLogEvents on each group (a stream that does not
// exist: ResourceNotFoundException proves the permission).
func ProbeLogs(ctx context.Context, c Logs, region, account string, groups []string) []Outcome {
	var ps []probe
	for _, g := range groups {
		ps = append(ps, probe{action: "logs:GetLogEvents", resource: fmt.Sprintf("arn:%s:logs:%s:%s:log-group:%s:*", iampolicy.Partition(region), region, account, g),
			degrades: "a failed rollout is reported without the containers' last log lines",
			call: func(ctx context.Context) error {
				_, err := c.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(g), LogStreamName: aws.String("ctjdeploy-preflight"), Limit: aws.Int32(1)})
				return err
			}})
	}
	return runAll(ctx, ps)
}

// LogGroups are the awslogs groups of a task definition's containers.
func LogGroups(cds []ecstypes.ContainerDefinition) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range cds {
		if lc := c.LogConfiguration; lc != nil && lc.LogDriver == ecstypes.LogDriverAwslogs {
			if g := lc.Options["awslogs-group"]; g != "" && !seen[g] {
				seen[g] = true
				out = append(out, g)
			}
		}
	}
	sort.Strings(out)
	return out
}

const sdDegrades = "ctjdeploy follows the service's deployments instead of ECS's service deployment records, and `rollback` cannot stop a deployment in flight with StopServiceDeployment"

type probe struct {
	action, resource, target, degrades string
	call                               func(ctx context.Context) error
}

// runAll runs the probes concurrently and returns their outcomes in order.
func runAll(ctx context.Context, ps []probe) []Outcome {
	out := make([]Outcome, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := Outcome{Action: p.action, Resource: p.resource, Target: p.target, Degrades: p.degrades, Status: Allowed}
			err := p.call(ctx)
			switch {
			case err == nil:
			case awserr.IsAccessDenied(err):
				o.Status = Denied
				o.Detail = awserr.Code(err) + ": " + awserr.Message(err)
			case notFound(err):
				// Authorized; the resource is missing (the run's own read
				// names it).
			default:
				o.Status, o.Detail = Unknown, err.Error()
			}
			out[i] = o
		}()
	}
	wg.Wait()
	return out
}

// notFound: an answer that proves the call was authorized (the resource,
// or a parameter, was missing or invalid: AWS checks the permission first).
func notFound(err error) bool {
	switch awserr.Code(err) {
	case "InvalidParameterException", "ClientException":
		return true
	}
	return awserr.IsNotFound(err)
}
