package rollback

import (
	"context"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// MakePlan runs the preflight before its first read (Deps.ECS is nil here:
// any call would panic): a denial is its exit 2.
func TestMakePlanPreflightFirst(t *testing.T) {
	env := &config.Environment{Name: "stage", Cluster: "c", Service: "s"}
	_, err := MakePlan(context.Background(), Deps{Preflight: func(context.Context) ([]string, error) {
		return nil, exitcode.Invalidf("denied: ecs:DescribeTaskDefinition on *")
	}}, env, Options{})
	if exitcode.Of(err) != exitcode.Invalid {
		t.Fatalf("err %v (exit %d), want the preflight's exit 2", err, exitcode.Of(err))
	}
}
