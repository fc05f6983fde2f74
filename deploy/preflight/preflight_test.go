package preflight

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// Fake answers every read; an action in deny gets the service's access
// denied shape.
type Fake struct {
	Deny  map[string]bool
	mu    sync.Mutex
	Calls []string
	TDARN string
	Tags  []ecstypes.Tag
}

func (f *Fake) call(action string) error {
	f.mu.Lock()
	f.Calls = append(f.Calls, action)
	f.mu.Unlock()
	if f.Deny[action] {
		code := "AccessDeniedException"
		if strings.HasPrefix(action, "sts:") {
			code = "AccessDenied"
		}
		return &smithy.GenericAPIError{Code: code, Message: "User: arn:aws:sts::123456789012:assumed-role/ci/x is not authorized to perform: " + action}
	}
	return nil
}

func (f *Fake) GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, _ ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	return &sts.GetCallerIdentityOutput{Account: aws.String("123456789012"), Arn: aws.String("arn:aws:sts::123456789012:assumed-role/ci/x")}, f.call("sts:GetCallerIdentity")
}
func (f *Fake) GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, _ ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	return &ecr.GetAuthorizationTokenOutput{}, f.call("ecr:GetAuthorizationToken")
}
func (f *Fake) DescribeRepositories(ctx context.Context, in *ecr.DescribeRepositoriesInput, _ ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error) {
	return &ecr.DescribeRepositoriesOutput{}, f.call("ecr:DescribeRepositories")
}
func (f *Fake) DescribeImages(ctx context.Context, in *ecr.DescribeImagesInput, _ ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error) {
	return &ecr.DescribeImagesOutput{}, f.call("ecr:DescribeImages")
}
func (f *Fake) ListImages(ctx context.Context, in *ecr.ListImagesInput, _ ...func(*ecr.Options)) (*ecr.ListImagesOutput, error) {
	return &ecr.ListImagesOutput{}, f.call("ecr:ListImages")
}
func (f *Fake) BatchGetImage(ctx context.Context, in *ecr.BatchGetImageInput, _ ...func(*ecr.Options)) (*ecr.BatchGetImageOutput, error) {
	return &ecr.BatchGetImageOutput{}, f.call("ecr:BatchGetImage")
}
func (f *Fake) DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput, _ ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error) {
	return &ecs.DescribeServicesOutput{Services: []ecstypes.Service{{ServiceName: aws.String(in.Services[0]), TaskDefinition: aws.String(f.TDARN)}}}, f.call("ecs:DescribeServices")
}
func (f *Fake) DescribeTaskDefinition(ctx context.Context, in *ecs.DescribeTaskDefinitionInput, _ ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error) {
	td := &ecstypes.TaskDefinition{TaskDefinitionArn: in.TaskDefinition, ContainerDefinitions: []ecstypes.ContainerDefinition{{
		Name: aws.String("django"), LogConfiguration: &ecstypes.LogConfiguration{LogDriver: ecstypes.LogDriverAwslogs, Options: map[string]string{"awslogs-group": "/ecs/app"}}}}}
	return &ecs.DescribeTaskDefinitionOutput{TaskDefinition: td, Tags: f.Tags}, f.call("ecs:DescribeTaskDefinition")
}
func (f *Fake) ListTaskDefinitions(ctx context.Context, in *ecs.ListTaskDefinitionsInput, _ ...func(*ecs.Options)) (*ecs.ListTaskDefinitionsOutput, error) {
	return &ecs.ListTaskDefinitionsOutput{}, f.call("ecs:ListTaskDefinitions")
}
func (f *Fake) ListTasks(ctx context.Context, in *ecs.ListTasksInput, _ ...func(*ecs.Options)) (*ecs.ListTasksOutput, error) {
	return &ecs.ListTasksOutput{}, f.call("ecs:ListTasks")
}
func (f *Fake) DescribeTasks(ctx context.Context, in *ecs.DescribeTasksInput, _ ...func(*ecs.Options)) (*ecs.DescribeTasksOutput, error) {
	return &ecs.DescribeTasksOutput{}, f.call("ecs:DescribeTasks")
}
func (f *Fake) ListServiceDeployments(ctx context.Context, in *ecs.ListServiceDeploymentsInput, _ ...func(*ecs.Options)) (*ecs.ListServiceDeploymentsOutput, error) {
	return &ecs.ListServiceDeploymentsOutput{ServiceDeployments: []ecstypes.ServiceDeploymentBrief{{ServiceDeploymentArn: aws.String("arn:aws:ecs:us-west-2:123456789012:service-deployment/c/s/abc")}}}, f.call("ecs:ListServiceDeployments")
}
func (f *Fake) DescribeServiceDeployments(ctx context.Context, in *ecs.DescribeServiceDeploymentsInput, _ ...func(*ecs.Options)) (*ecs.DescribeServiceDeploymentsOutput, error) {
	return &ecs.DescribeServiceDeploymentsOutput{}, f.call("ecs:DescribeServiceDeployments")
}
func (f *Fake) GetParameterHistory(ctx context.Context, in *ssm.GetParameterHistoryInput, _ ...func(*ssm.Options)) (*ssm.GetParameterHistoryOutput, error) {
	if err := f.call("ssm:GetParameterHistory"); err != nil {
		return nil, err
	}
	return nil, &ssmtypes.ParameterNotFound{Message: aws.String("not found")}
}
func (f *Fake) GetLogEvents(ctx context.Context, in *cloudwatchlogs.GetLogEventsInput, _ ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.GetLogEventsOutput, error) {
	return &cloudwatchlogs.GetLogEventsOutput{}, f.call("logs:GetLogEvents")
}

func (f *Fake) Clients() Clients { return Clients{STS: f, ECR: f, ECS: f, SSM: f, Logs: f} }

func testEnv() *config.Environment {
	return &config.Environment{Name: "stage", Region: "us-west-2", Cluster: "incubator-prod", Service: "ctj-stage",
		Images: map[string]*config.Image{"django": {Repository: "ctj-backend"}, "next": {Repository: "ctj-frontend"}}}
}

// IncubatorBuilderAllows are the reads of incubator_builder (terraform/cicd.tf
// of hackforla/incubator) among the probes.
var incubatorAllows = map[string]bool{"ecr:GetAuthorizationToken": true, "ecr:BatchGetImage": true, "ecs:DescribeServices": true, "sts:GetCallerIdentity": true}

func TestRunIncubatorBuilder(t *testing.T) {
	f := &Fake{TDARN: "arn:aws:ecs:us-west-2:123456789012:task-definition/ctj-stage:7", Deny: map[string]bool{}}
	for _, a := range []string{"ecr:DescribeRepositories", "ecr:DescribeImages", "ecr:ListImages", "ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions",
		"ecs:ListTasks", "ecs:DescribeTasks", "ecs:ListServiceDeployments", "ecs:DescribeServiceDeployments", "ssm:GetParameterHistory", "logs:GetLogEvents"} {
		if incubatorAllows[a] {
			t.Fatalf("%s both allowed and denied", a)
		}
		f.Deny[a] = true
	}
	rep, err := Run(context.Background(), f.Clients(), Target{Env: testEnv(), Registry: "123456789012.dkr.ecr.us-west-2.amazonaws.com"})
	if err != nil {
		t.Fatal(err)
	}
	if f.Calls[1] != "ecs:DescribeServices" {
		t.Errorf("calls %v: the service is read first, alone, after sts", f.Calls)
	}
	e := rep.Err("stage")
	if exitcode.Of(e) != exitcode.Invalid {
		t.Fatalf("exit %d, want 2: %v", exitcode.Of(e), e)
	}
	msg := e.Error()
	t.Log(msg)
	for _, want := range []string{
		"ecs:DescribeTaskDefinition on * (reading arn:aws:ecs:us-west-2:123456789012:task-definition/ctj-stage:7)",
		"ecs:ListTasks on * (condition ecs:cluster = arn:aws:ecs:us-west-2:123456789012:cluster/incubator-prod)",
		"ecs:DescribeTasks on arn:aws:ecs:us-west-2:123456789012:task/incubator-prod/*",
		"ecr:DescribeRepositories on arn:aws:ecr:us-west-2:123456789012:repository/ctj-backend",
		"ecr:ListImages on arn:aws:ecr:us-west-2:123456789012:repository/ctj-frontend",
		"ssm:GetParameterHistory on arn:aws:ssm:us-west-2:123456789012:parameter/ctjdeploy/incubator-prod/ctj-stage/lock",
		"ecs:ListServiceDeployments on arn:aws:ecs:us-west-2:123456789012:service/incubator-prod/ctj-stage [can do without",
		"ecs:ListTaskDefinitions on * (reading family ctj-stage)",
		"`ctjdeploy stage iam-policy`", "`ctjdeploy stage doctor`", "iam:PassRole", "nothing was built, pushed or written",
		"arn:aws:sts::123456789012:assumed-role/ci/x",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q", want)
		}
	}
	// Every denied action is listed; no allowed one is.
	for a := range f.Deny {
		if a == "logs:GetLogEvents" {
			continue // not probed: no LogGroups given (the deploy's preflight passes none)
		}
		if !strings.Contains(msg, "  "+a+" on ") {
			t.Errorf("message lacks denied %s", a)
		}
	}
	for a := range incubatorAllows {
		if strings.Contains(msg, "  "+a+" on ") {
			t.Errorf("message lists allowed %s", a)
		}
	}
	if len(rep.Warnings("stage")) != 0 {
		t.Errorf("warnings besides the error: %v", rep.Warnings("stage"))
	}
}

func TestRunAllowedAndDegraded(t *testing.T) {
	f := &Fake{TDARN: "arn:aws:ecs:us-west-2:123456789012:task-definition/ctj-stage:7", Tags: []ecstypes.Tag{{Key: aws.String("ctjdeploy:commit"), Value: aws.String("abc")}}}
	rep, err := Run(context.Background(), f.Clients(), Target{Env: testEnv(), Registry: "127.0.0.1:5055", LogGroups: []string{"/ecs/app"}})
	if err != nil || rep.Err("stage") != nil || len(rep.Warnings("stage")) != 0 {
		t.Fatalf("all allowed: err %v, %v, warnings %v", err, rep.Err("stage"), rep.Warnings("stage"))
	}
	if rep.LiveTags["ctjdeploy:commit"] != "abc" || rep.LiveTD == nil || !rep.LockRead || rep.Lock.Held {
		t.Errorf("state not read: tags %v td %v lock %v %q", rep.LiveTags, rep.LiveTD != nil, rep.LockRead, map[bool]string{true: "held", false: "free"}[rep.Lock.Held])
	}
	for _, a := range []string{"ecs:DescribeServiceDeployments", "logs:GetLogEvents", "ecs:DescribeTasks", "ecs:ListTaskDefinitions"} {
		if o, ok := rep.Outcome(a); !ok || o.Status != Allowed {
			t.Errorf("%s: %+v, want allowed", a, o)
		}
	}

	f = &Fake{TDARN: "arn:aws:ecs:us-west-2:123456789012:task-definition/ctj-stage:7", Deny: map[string]bool{"ecs:ListServiceDeployments": true, "logs:GetLogEvents": true}}
	rep, err = Run(context.Background(), f.Clients(), Target{Env: testEnv(), Registry: "127.0.0.1:5055", LogGroups: []string{"/ecs/app"}})
	if err != nil {
		t.Fatal(err)
	}
	if e := rep.Err("stage"); e != nil {
		t.Fatalf("only reads the run can do without were denied, got %v", e)
	}
	w := strings.Join(rep.Warnings("stage"), "\n")
	if !strings.Contains(w, "ecs:ListServiceDeployments") || !strings.Contains(w, "logs:GetLogEvents on arn:aws:logs:us-west-2:123456789012:log-group:/ecs/app:*") {
		t.Errorf("warnings %q", w)
	}
}

func TestRunNoCredentials(t *testing.T) {
	f := &Fake{Deny: map[string]bool{"sts:GetCallerIdentity": true}}
	if _, err := Run(context.Background(), f.Clients(), Target{Env: testEnv()}); err == nil || !strings.Contains(err.Error(), "sts:GetCallerIdentity") {
		t.Fatalf("err %v", err)
	}
}
