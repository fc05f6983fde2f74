package deploy

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/hackforla/ctjdeploy/deploy/rollout"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// The preflight runs before every other phase: a denial ends the run with
// its exit 2 before the service is read (Deps.ECS is nil here: any call
// would panic) or anything is built.
func TestPreflightRunsFirst(t *testing.T) {
	env := &config.Environment{Name: "stage", Cluster: "c", Service: "s", Images: map[string]*config.Image{}}
	called := false
	res, err := Run(context.Background(), Options{Env: env, Tag: "abc1234", DryRun: true}, Deps{
		Preflight: func(context.Context) ([]string, error) {
			called = true
			return nil, exitcode.Invalidf("denied: ecs:ListTasks on *")
		},
	})
	if !called || exitcode.Of(err) != exitcode.Invalid {
		t.Fatalf("called %v, err %v (exit %d), want the preflight's exit 2", called, err, exitcode.Of(err))
	}
	if len(res.Timings) != 1 || res.Timings[0].Phase != "preflight" {
		t.Errorf("phases %+v, want only preflight", res.Timings)
	}

	// Warnings alone: the run goes on to read the service (which fails
	// here), the warnings in the result.
	res, err = Run(context.Background(), Options{Env: env, Tag: "abc1234", DryRun: true}, Deps{
		ECS: noService{},
		Preflight: func(context.Context) ([]string, error) {
			return []string{"access denied: ecs:ListServiceDeployments"}, nil
		},
	})
	if err == nil || len(res.Warnings) != 1 || len(res.Timings) != 2 || res.Timings[1].Phase != "live" {
		t.Errorf("err %v, warnings %v, phases %+v: want the warning and the live phase", err, res.Warnings, res.Timings)
	}
}

// noService answers DescribeServices with an error; any other call panics.
type noService struct{ rollout.ECS }

func (noService) DescribeServices(context.Context, *ecs.DescribeServicesInput, ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error) {
	return nil, errors.New("no such service")
}
