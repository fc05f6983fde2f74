package deploy

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/hackforla/ctjdeploy/deploy/rollout"
	"github.com/hackforla/ctjdeploy/internal/ecssim"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// outsideAfterRegister moves the service (as terraform apply would) right
// after this run's register succeeded: between the register and the update.
type outsideAfterRegister struct {
	rollout.ECS
	do func()
}

func (o *outsideAfterRegister) RegisterTaskDefinition(ctx context.Context, in *ecs.RegisterTaskDefinitionInput, opts ...func(*ecs.Options)) (*ecs.RegisterTaskDefinitionOutput, error) {
	out, err := o.ECS.RegisterTaskDefinition(ctx, in, opts...)
	if err == nil && o.do != nil {
		o.do()
		o.do = nil
	}
	return out, err
}

// The re-read right before UpdateService: a service moved between this
// run's register and its update is not updated (that would undo the other
// change); exit 5, naming the unused revision.
func TestOutsideUpdateBetweenRegisterAndUpdate(t *testing.T) {
	t.Parallel() // its own cluster, service, repositories and simulator (TestMain: the stack's environment)
	f := newFixture(t, ecssim.Success, 100)
	ctx := context.Background()
	var outside string
	f.deps.ECS = &outsideAfterRegister{ECS: f.deps.ECS, do: func() {
		out, err := f.moto.RegisterTaskDefinition(ctx, teststack.ExampleTaskDefinition(f.n, f.st.Registry, "terraform"))
		if err == nil {
			outside = aws.ToString(out.TaskDefinition.TaskDefinitionArn)
			err = f.sim.OutsideUpdate(f.n.Cluster, f.n.Service, outside)
		}
		if err != nil {
			t.Error(err)
		}
	}}
	res, err := Run(ctx, f.opts(f.c[1]), f.deps)
	if exitcode.Of(err) != exitcode.Refused || err == nil || !strings.Contains(err.Error(), "changed since this run's plan") ||
		!strings.Contains(err.Error(), "registered by this run, is unused") {
		t.Fatalf("want exit 5 naming the unused revision, got %d: %v", exitcode.Of(err), err)
	}
	if res == nil || !res.Registered || res.DeploymentID != "" {
		t.Fatalf("want registered and not updated: %+v", res)
	}
	if !strings.Contains(err.Error(), shortARN(res.TaskDefARN)) {
		t.Fatalf("the message does not name %s: %v", shortARN(res.TaskDefARN), err)
	}
	ds, derr := f.moto.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(f.n.Cluster), Services: []string{f.n.Service}})
	if derr != nil || aws.ToString(ds.Services[0].TaskDefinition) != outside {
		t.Fatalf("the service must stay on the outside update's %s: %v %v", outside, ds, derr)
	}
}
