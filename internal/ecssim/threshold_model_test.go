package ecssim

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// A service with neither breaker nor rollback whose new tasks crash: ECS
// keeps starting them (failedTasks grows, IN_PROGRESS) until a caller stops
// the deployment; StopServiceDeployment(ROLLBACK) then rolls back to the
// previous revision although rollback is not configured
// (API_StopServiceDeployment), and StopTiming times the threshold and the
// stop. With RollbackFails the rollback's own tasks crash too and, no
// breaker watching, the record stays ROLLBACK_IN_PROGRESS while they fail.
func TestSDStopWithoutBreaker(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sc       Scenario
		rollback string // the record's status after the stop, once settled
	}{{Rollback, "ROLLBACK_SUCCESSFUL"}, {RollbackFails, "ROLLBACK_IN_PROGRESS"}} {
		t.Run(string(tc.sc), func(t *testing.T) {
			t.Parallel()
			if testing.Short() {
				t.Skip("needs the stack")
			}
			e := newStackEnv(t, tc.sc, 2)
			e.sim.Configure(e.n.Cluster, e.n.Service, ServiceConfig{CircuitBreaker: false, Rollback: false})
			initial := e.describe(t)
			td, _ := e.register(t, "c3")
			arn, id := e.deploy(t, td)
			for i := 0; i < 20 && e.describe(t).Deployments[0].FailedTasks < 5; i++ {
				e.sim.Advance(1)
			}
			svc := e.describe(t)
			d := svc.Deployments[0]
			if sd := e.sd(t, arn); sd.Status != "IN_PROGRESS" || aws.ToString(d.Id) != id || d.FailedTasks < 5 || d.RolloutState != "IN_PROGRESS" || aws.ToString(svc.TaskDefinition) != td {
				t.Fatalf("no breaker: record %s, deployment %s %s failed %d, service on %s", sd.Status, aws.ToString(d.Id), d.RolloutState, d.FailedTasks, aws.ToString(svc.TaskDefinition))
			}
			asked := e.sim.Now()
			if _, err := e.api.StopServiceDeployment(context.Background(), &ecs.StopServiceDeploymentInput{ServiceDeploymentArn: aws.String(arn), StopType: "ROLLBACK"}); err != nil {
				t.Fatal(err)
			}
			reached, stopped := e.sim.StopTiming(e.n.Cluster, e.n.Service, 3)
			if reached.IsZero() || stopped.Before(asked) || !reached.Before(stopped) {
				t.Errorf("StopTiming: threshold reached %v, stop %v (asked at %v)", reached, stopped, asked)
			}
			var seq []string
			for i := 0; i < 20; i++ {
				s := string(e.sd(t, arn).Status)
				if len(seq) == 0 || seq[len(seq)-1] != s {
					seq = append(seq, s)
				}
				if s == tc.rollback && (terminal(s) || e.describe(t).Deployments[0].FailedTasks >= 5) {
					break
				}
				e.sim.Advance(1)
			}
			if seq[len(seq)-1] != tc.rollback {
				t.Fatalf("statuses after the stop: %v, want them to end at %s", seq, tc.rollback)
			}
			after := e.describe(t)
			prim := after.Deployments[0]
			if aws.ToString(prim.TaskDefinition) != aws.ToString(initial.TaskDefinition) || aws.ToString(after.TaskDefinition) != aws.ToString(initial.TaskDefinition) {
				t.Errorf("after the stop the service runs %s (PRIMARY %s), want the previous %s", aws.ToString(after.TaskDefinition), aws.ToString(prim.TaskDefinition), aws.ToString(initial.TaskDefinition))
			}
			if tc.sc == RollbackFails && (prim.FailedTasks < 5 || len(after.Deployments) < 2) {
				t.Errorf("a failing rollback without a breaker keeps trying: %+v", prim)
			}
			if tc.sc == Rollback && (prim.RolloutState != "COMPLETED" || len(after.Deployments) != 1) {
				t.Errorf("the rollback deployment: %s, %d deployments", prim.RolloutState, len(after.Deployments))
			}
		})
	}
}
