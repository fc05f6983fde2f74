package ecssim

import (
	"context"
	"strings"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/teststack"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TestSDDockerRollback runs the tasks for real (Options.Engine): a revision
// whose container stays up succeeds; one whose essential container exits 1
// trips the circuit breaker at 3 failed tasks and ECS rolls back to the
// first, whose container starts again.
func TestSDDockerRollback(t *testing.T) {
	eng, _, logs := engTestEngine(t)
	img := teststack.PageImage(t)
	e := newStackEnv(t, Success, 2, wallClock, func(o *Options) { o.Engine = eng })
	ctx := context.Background()
	register := func(cmd ...string) string {
		rt, err := e.api.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String(e.n.Family),
			ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(img), Essential: aws.Bool(true),
				Memory: aws.Int32(64), EntryPoint: []string{"sh", "-c"}, Command: cmd}}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(rt.TaskDefinition.TaskDefinitionArn)
	}
	good := register("sleep 300")
	arn, _ := e.deploy(t, good)
	seq, _ := e.watch(t, arn, 2250, nil) // 90 s of 40 ms steps
	wantSeq(t, seq, "PENDING", "IN_PROGRESS", "SUCCESSFUL")
	if !logs.Has("started (1 containers") {
		t.Fatal("the engine logged no task start: the task did not run on Docker")
	}
	bad := register("echo boom >&2; exit 1")
	arn, id := e.deploy(t, bad)
	seq, sd := e.watch(t, arn, 2250, nil) // 90 s of 40 ms steps
	wantSeq(t, seq, "PENDING", "IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL")
	if sd.DeploymentCircuitBreaker.FailureCount != 3 {
		t.Errorf("failure count %d", sd.DeploymentCircuitBreaker.FailureCount)
	}
	if got := aws.ToString(e.describe(t).TaskDefinition); got != good {
		t.Errorf("service runs %s after the rollback, want %s", got, good)
	}
	n := 0
	for _, tk := range e.stopped(t) {
		if aws.ToString(tk.StartedBy) != id {
			continue
		}
		n++
		if tk.StopCode != "EssentialContainerExited" || len(tk.Containers) != 1 || aws.ToInt32(tk.Containers[0].ExitCode) != 1 {
			t.Errorf("stopped task %s: %s %+v", aws.ToString(tk.TaskArn), tk.StopCode, tk.Containers)
		}
	}
	if n != 3 {
		t.Errorf("%d stopped tasks of the failing revision, want 3", n)
	}
	if !logs.Has("exited with code 1") || strings.Contains(strings.Join(logs.Lines(), "\n"), "EMULATED") {
		t.Error("the engine did not report the real exit")
	}
}
