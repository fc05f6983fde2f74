package doctor

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/deploy/preflight"
	"github.com/hackforla/ctjdeploy/internal/config"
)

func testEnv() *config.Environment {
	return &config.Environment{Name: "stage", Region: "us-west-2", Cluster: "incubator-prod", Service: "civic-tech-jobs-fullstack-stage",
		FailureThreshold: 3, Terraform: &config.Terraform{Dir: "infra/stage"},
		Images: map[string]*config.Image{"django": {Repository: "ctj-backend"}, "next": {Repository: "ctj-frontend"}}}
}

// pgTD is a task with postgres 18 on a persistent (shared docker) volume.
func pgTD() *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("ctj"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{
			{Name: aws.String("django"), Image: aws.String("r/ctj-backend@sha256:00")},
			{Name: aws.String("pgdb"), Image: aws.String("postgres:18"), MountPoints: []ecstypes.MountPoint{{SourceVolume: aws.String("pgdata"), ContainerPath: aws.String("/var/lib/postgresql")}}},
		},
		Volumes: []ecstypes.Volume{{Name: aws.String("pgdata"), DockerVolumeConfiguration: &ecstypes.DockerVolumeConfiguration{Scope: ecstypes.ScopeShared}}},
	}
}

type shape struct {
	min, max   int32
	minUnset   bool
	breaker    bool
	rollback   bool
	desired    int32
	controller ecstypes.DeploymentControllerType
	tags       map[string]string
	deny       []string
	repoGone   string
	outputGone string
	lock       Lock
}

func state(sh shape) State {
	env := testEnv()
	svc := &ecstypes.Service{ServiceName: aws.String(env.Service), DesiredCount: sh.desired,
		TaskDefinition: aws.String("arn:aws:ecs:us-west-2:123456789012:task-definition/ctj:4"),
		DeploymentConfiguration: &ecstypes.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(sh.min), MaximumPercent: aws.Int32(sh.max),
			DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: sh.breaker, Rollback: sh.rollback}}}
	if sh.minUnset {
		svc.DeploymentConfiguration.MinimumHealthyPercent = nil
	}
	if sh.controller != "" {
		svc.DeploymentController = &ecstypes.DeploymentController{Type: sh.controller}
	}
	rep := &preflight.Report{Account: "123456789012", Identity: "arn:aws:sts::123456789012:assumed-role/ci/x", Service: svc,
		LiveTD:   &ecstypes.TaskDefinition{TaskDefinitionArn: svc.TaskDefinition, Family: aws.String("ctj"), Revision: 4},
		LiveTags: sh.tags, Repositories: map[string]bool{"ctj-backend": true, "ctj-frontend": true}}
	if sh.repoGone != "" {
		rep.Repositories[sh.repoGone] = false
	}
	denied := map[string]bool{}
	for _, a := range sh.deny {
		denied[a] = true
	}
	for _, a := range []string{"ecs:DescribeServices", "ecs:DescribeTaskDefinition", "ecs:ListTasks", "ecs:ListServiceDeployments", "ssm:GetParameterHistory", "ecr:DescribeRepositories"} {
		o := preflight.Outcome{Action: a, Resource: "arn:aws:x:" + a, Status: preflight.Allowed}
		if a == "ecs:ListTasks" {
			o.Resource = "* (condition ecs:cluster = arn:aws:ecs:us-west-2:123456789012:cluster/incubator-prod)"
		}
		if denied[a] {
			o.Status, o.Detail = preflight.Denied, "AccessDeniedException: no"
		}
		if a == "ecs:ListServiceDeployments" {
			o.Degrades = "follows the service's deployments"
		}
		rep.Outcomes = append(rep.Outcomes, o)
	}
	outs := map[string]bool{"execution_role_arn": true, "log_group": true}
	if sh.outputGone != "" {
		delete(outs, sh.outputGone)
	}
	lock := sh.lock
	if lock.Name == "" {
		lock = Lock{Name: "/ctjdeploy/incubator-prod/civic-tech-jobs-fullstack-stage/lock", Read: true}
	}
	return State{Env: env, Preflight: rep, TaskDef: pgTD(), TaskDefFrom: "template", TemplateOutputs: []string{"execution_role_arn", "log_group"},
		Outputs: outs, Lock: lock, WritesErr: errors.New("AccessDenied")}
}

var example = shape{min: 0, max: 100, breaker: true, rollback: true, desired: 1, tags: map[string]string{"ctjdeploy:commit": "0123456789abcdef", "ctjdeploy:env": "stage"}}

func TestEvaluate(t *testing.T) {
	mod := func(f func(*shape)) shape { s := example; f(&s); return s }
	for _, tc := range []struct {
		name string
		sh   shape
		// failed are the checks that must fail (and no other), with a
		// phrase the detail or fix must hold.
		failed map[string]string
	}{
		{"example", example, nil},
		{"incubator", mod(func(s *shape) {
			s.max, s.breaker, s.rollback, s.tags = 200, false, false, map[string]string{}
			s.deny = []string{"ecs:DescribeTaskDefinition", "ecs:ListTasks", "ecs:ListServiceDeployments", "ssm:GetParameterHistory", "ecr:DescribeRepositories"}
		}), map[string]string{
			"minimum/maximum percent":               "deployment_maximum_percent         = 100",
			"circuit breaker":                       "failure_threshold (3)",
			"live revision owner":                   "task_definition_managed_outside    = true",
			"permission ecs:DescribeTaskDefinition": "iam-policy --format terraform",
			"permission ecs:ListTasks":              "variable = \"ecs:cluster\"\n    values   = [\"arn:aws:ecs:us-west-2:123456789012:cluster/incubator-prod\"]",
			"permission ecs:ListServiceDeployments": "ctjdeploy_stage",
			"permission ssm:GetParameterHistory":    "actions   = [\"ssm:GetParameterHistory\"]",
			"permission ecr:DescribeRepositories":   "resources = [\"arn:aws:x:ecr:DescribeRepositories\"]",
		}},
		{"breaker without rollback", mod(func(s *shape) { s.rollback = false }), map[string]string{"circuit breaker": "do not roll back"}},
		{"code deploy", mod(func(s *shape) { s.controller = ecstypes.DeploymentControllerTypeCodeDeploy }), map[string]string{"deployment controller and strategy": "CODE_DEPLOY"}},
		{"min 100 max 100", mod(func(s *shape) { s.min = 100 }), map[string]string{"minimum/maximum percent": "deployment_minimum_healthy_percent = 0"}},
		{"max 100, min unset (ECS's 100)", mod(func(s *shape) { s.minUnset = true }), map[string]string{"minimum/maximum percent": "unset (ECS's default 100 %)"}},
		{"desired 0", mod(func(s *shape) { s.desired = 0 }), map[string]string{"desired count": "--desired-count 1"}},
		{"repository missing", mod(func(s *shape) { s.repoGone = "ctj-frontend" }), map[string]string{"repository ctj-frontend": "aws ecr create-repository --repository-name ctj-frontend"}},
		{"output missing", mod(func(s *shape) { s.outputGone = "log_group" }), map[string]string{"terraform output log_group": `output "log_group"`}},
		{"stale lock", mod(func(s *shape) {
			s.lock = Lock{Name: "/l", Read: true, Held: true, Stale: true, Holder: "run abc"}
		}), map[string]string{"lock": "aws ssm delete-parameter --name /l"}},
		{"lock held by a live run", mod(func(s *shape) { s.lock = Lock{Name: "/l", Read: true, Held: true, Holder: "run abc"} }), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := Evaluate(state(tc.sh))
			seen := map[string]bool{}
			for _, c := range cs {
				if c.Status == Failed {
					want, ok := tc.failed[c.Check]
					if !ok {
						t.Errorf("%s failed: %s", c.Check, c.Detail)
						continue
					}
					seen[c.Check] = true
					if !strings.Contains(c.Detail+"\n"+c.Fix, want) {
						t.Errorf("%s: %q lacks %q\nfix:\n%s", c.Check, c.Detail, want, c.Fix)
					}
					if c.Fix == "" {
						t.Errorf("%s failed without a fix", c.Check)
					}
				}
			}
			for name := range tc.failed {
				if !seen[name] {
					t.Errorf("%s did not fail", name)
				}
			}
			if AnyFailed(cs) != (len(tc.failed) > 0) {
				t.Errorf("AnyFailed %v", AnyFailed(cs))
			}
		})
	}
}

func TestEvaluateNoCredentials(t *testing.T) {
	cs := Evaluate(State{Env: testEnv(), PreflightErr: errors.New("no credentials")})
	if !AnyFailed(cs) || cs[0].Check != "credentials" || cs[0].Status != Failed {
		t.Fatalf("%+v", cs)
	}
}

func TestEvaluateSimulatedWrites(t *testing.T) {
	s := state(example)
	s.WritesErr = nil
	s.Writes = []Simulated{{Action: "ecs:UpdateService", Resource: "arn:svc", Decision: "allowed"}, {Action: "iam:PassRole", Resource: "arn:role", Decision: "implicitDeny"}}
	cs := Evaluate(s)
	var got []string
	for _, c := range cs {
		if strings.HasPrefix(c.Check, "permission ecs:UpdateService") || strings.HasPrefix(c.Check, "permission iam:PassRole") {
			got = append(got, c.Check+"="+string(c.Status))
		}
	}
	if strings.Join(got, ",") != "permission ecs:UpdateService=ok,permission iam:PassRole=failed" {
		t.Errorf("%v", got)
	}
	// Without the simulation: one unknown line naming the writes.
	cs = Evaluate(state(example))
	found := false
	for _, c := range cs {
		if c.Check == "permissions to write" && c.Status == Unknown && strings.Contains(c.Detail, "ecs:RegisterTaskDefinition") {
			found = true
		}
	}
	if !found {
		t.Error("no unknown line for the writes")
	}
}
