package rollout

import (
	"testing"

	"github.com/hackforla/ctjdeploy/internal/report"
)

// While ECS rolls back, a reason that differs only in its count of failed
// tasks is said once; before, each count is news (the breaker's approach
// to its threshold).
func TestObserverSaysARollbackOnce(t *testing.T) {
	var rec report.Recorder
	w := newObserver(report.For(&rec, "rollout"), FollowOptions{DeploymentID: "ecs-svc/1"})
	for _, st := range []State{
		{Phase: InProgress, Reason: "ECS is at IN_PROGRESS (circuit breaker monitoring: 1 failed task of a threshold of 3)"},
		{Phase: InProgress, Reason: "ECS is at IN_PROGRESS (circuit breaker monitoring: 2 failed tasks of a threshold of 3)"},
		{Phase: InProgress, RollingBack: true, Reason: "ECS is rolling the deployment back (ROLLBACK_IN_PROGRESS): circuit breaker: tasks failed to start (circuit breaker triggered: 3 failed tasks of a threshold of 3)"},
		{Phase: InProgress, RollingBack: true, Reason: "ECS is rolling the deployment back (ROLLBACK_IN_PROGRESS): circuit breaker: tasks failed to start (circuit breaker triggered: 4 failed tasks of a threshold of 3)"},
		{Phase: InProgress, RollingBack: true, Reason: "ECS is rolling the deployment back (ROLLBACK_REQUESTED): circuit breaker: tasks failed to start (circuit breaker triggered: 5 failed tasks of a threshold of 3)"},
	} {
		w.state(st)
	}
	var said []string
	for _, e := range rec.Events {
		if e.Kind == report.Info {
			said = append(said, e.Message)
		}
	}
	if len(said) != 4 {
		t.Fatalf("said %d notes, want 4 (two counts before the rollback, the rollback once, its next status):\n%q", len(said), said)
	}
	if WithoutCounts("3 failed tasks; 1 failed task") != "N failed tasks; N failed tasks" {
		t.Errorf("WithoutCounts: %q", WithoutCounts("3 failed tasks; 1 failed task"))
	}
}
