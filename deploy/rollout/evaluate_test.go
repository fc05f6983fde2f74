package rollout

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/ecsread"
)

const (
	tdOld = "arn:aws:ecs:us-west-2:123456789012:task-definition/stage:7"
	tdNew = "arn:aws:ecs:us-west-2:123456789012:task-definition/stage:8"
	ours  = "ecs-svc/1111"
	other = "ecs-svc/2222"
)

// dep builds a Deployment the way DescribeServices returns one (ECS API
// reference, Deployment: id, status PRIMARY|ACTIVE|INACTIVE, taskDefinition,
// desiredCount, pendingCount, runningCount, failedTasks, rolloutState
// COMPLETED|FAILED|IN_PROGRESS, rolloutStateReason).
func dep(id, status, td string, rs ecstypes.DeploymentRolloutState, reason string, desired, pending, running, failed int32) ecstypes.Deployment {
	d := ecstypes.Deployment{Id: aws.String(id), Status: aws.String(status), TaskDefinition: aws.String(td),
		RolloutState: rs, DesiredCount: desired, PendingCount: pending, RunningCount: running, FailedTasks: failed}
	if reason != "" {
		d.RolloutStateReason = aws.String(reason)
	}
	return d
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	const (
		inProg = ecstypes.DeploymentRolloutStateInProgress
		done   = ecstypes.DeploymentRolloutStateCompleted
		failed = ecstypes.DeploymentRolloutStateFailed
	)
	upd := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	before, after := upd.Add(-time.Hour), upd.Add(20*time.Second)
	at := func(d ecstypes.Deployment, t time.Time) ecstypes.Deployment { d.CreatedAt = aws.Time(t); return d }
	const tdOther = "arn:aws:ecs:us-west-2:123456789012:task-definition/stage:9"
	tests := []struct {
		name   string
		deps   []ecstypes.Deployment
		since  time.Duration // now − update (default 10 s)
		want   Phase
		reason string // substring
	}{
		{"just started: ours PRIMARY IN_PROGRESS, old ACTIVE", []ecstypes.Deployment{
			at(dep(ours, "PRIMARY", tdNew, inProg, "ECS deployment ecs-svc/1111 in progress.", 1, 1, 0, 0), after),
			at(dep(other, "ACTIVE", tdOld, done, "", 1, 0, 1, 0), before),
		}, 0, InProgress, "in progress"},
		{"completed", []ecstypes.Deployment{
			dep(ours, "PRIMARY", tdNew, done, "ECS deployment ecs-svc/1111 completed.", 1, 0, 1, 0),
		}, 0, Completed, "completed"},
		{"completed while old still draining is still completed (ECS says so)", []ecstypes.Deployment{
			dep(ours, "PRIMARY", tdNew, done, "", 1, 0, 1, 0),
			dep(other, "ACTIVE", tdOld, done, "", 0, 0, 1, 0),
		}, 0, Completed, ""},
		{"circuit breaker: ours FAILED, rollback PRIMARY on the source revision still rolling: keep following", []ecstypes.Deployment{
			at(dep("ecs-svc/3333", "PRIMARY", tdOld, inProg, "ECS deployment ecs-svc/3333 in progress.", 1, 1, 0, 0), after),
			at(dep(ours, "ACTIVE", tdNew, failed, "ECS deployment circuit breaker: tasks failed to start.", 1, 0, 0, 3), upd),
		}, 0, InProgress, "rolling the service back to stage:7"},
		{"circuit breaker rollback completed: exit 3", []ecstypes.Deployment{
			at(dep("ecs-svc/3333", "PRIMARY", tdOld, done, "ECS deployment ecs-svc/3333 completed.", 1, 0, 1, 0), after),
			at(dep(ours, "ACTIVE", tdNew, failed, "ECS deployment circuit breaker: tasks failed to start.", 1, 0, 0, 3), upd),
		}, 0, RolledBack, "tasks failed to start; ECS rolled the service back to stage:7"},
		{"rollback failed too: exit 6", []ecstypes.Deployment{
			at(dep("ecs-svc/3333", "PRIMARY", tdOld, failed, "ECS deployment circuit breaker: tasks failed to start.", 1, 0, 0, 3), after),
			at(dep(ours, "ACTIVE", tdNew, failed, "ECS deployment circuit breaker: tasks failed to start.", 1, 0, 0, 3), upd),
		}, 0, NotRecovered, "failed too"},
		{"rollback to the last completed revision, which is not the one live before (ours failed): still a rollback", []ecstypes.Deployment{
			at(dep("ecs-svc/3333", "PRIMARY", tdOther, done, "", 1, 0, 1, 0), after),
			at(dep(ours, "ACTIVE", tdNew, failed, "circuit breaker", 1, 0, 0, 3), upd),
		}, 0, RolledBack, "stage:9"},
		{"failed without rollback: ours still PRIMARY: exit 6", []ecstypes.Deployment{
			dep(ours, "PRIMARY", tdNew, failed, "ECS deployment circuit breaker: tasks failed to start.", 1, 0, 0, 3),
			at(dep(other, "ACTIVE", tdOld, done, "", 1, 0, 1, 0), before),
		}, 0, NotRecovered, "did not roll the service back"},
		{"failed with no reason", []ecstypes.Deployment{
			dep(ours, "PRIMARY", tdNew, failed, "", 1, 0, 0, 3),
		}, 0, NotRecovered, "FAILED"},
		{"ours gone, PRIMARY on the source revision created after the update, completed: rolled back", []ecstypes.Deployment{
			at(dep("ecs-svc/3333", "PRIMARY", tdOld, done, "", 1, 0, 1, 0), after),
		}, time.Minute, RolledBack, "rolled the service back to stage:7"},
		{"outside update mid-rollout (terraform apply to another revision): replaced, exit 1", []ecstypes.Deployment{
			at(dep("ecs-svc/3333", "PRIMARY", tdOther, inProg, "", 1, 1, 0, 0), after),
			at(dep(ours, "ACTIVE", tdNew, inProg, "", 1, 0, 1, 0), upd),
			at(dep(other, "ACTIVE", tdOld, done, "", 1, 0, 1, 0), before),
		}, 0, Replaced, "stage:9, which this run did not start"},
		{"outside update back to the source revision (terraform apply), ours not failed: replaced, never a rollback", []ecstypes.Deployment{
			at(dep("ecs-svc/3333", "PRIMARY", tdOld, done, "", 1, 0, 1, 0), after),
			at(dep(ours, "ACTIVE", tdNew, inProg, "", 1, 0, 0, 1), upd),
		}, 0, Replaced, "stage:7, which this run did not start"},
		{"superseded by a deployment of the same revision", []ecstypes.Deployment{
			at(dep("ecs-svc/3333", "PRIMARY", tdNew, inProg, "", 1, 1, 0, 0), after),
			at(dep(ours, "ACTIVE", tdNew, inProg, "", 1, 0, 0, 0), upd),
		}, 0, Replaced, "same revision"},
		{"lagging read: ours not listed yet, old PRIMARY from before the update: keep following", []ecstypes.Deployment{
			at(dep(other, "PRIMARY", tdOld, done, "", 1, 0, 1, 0), before),
		}, 2 * time.Second, InProgress, "does not list deployment"},
		{"lagging read past the grace period: not ours, not a rollback: replaced", []ecstypes.Deployment{
			at(dep(other, "PRIMARY", tdOld, done, "", 1, 0, 1, 0), before),
		}, time.Minute, Replaced, "is no longer listed"},
		{"ours gone and no PRIMARY", nil, time.Minute, NotRecovered, "no PRIMARY"},
		{"no rolloutState (moto, no circuit breaker): steady", []ecstypes.Deployment{
			dep(ours, "PRIMARY", tdNew, "", "", 2, 0, 2, 0),
		}, 0, Completed, "only one left"},
		{"no rolloutState: old still running", []ecstypes.Deployment{
			dep(ours, "PRIMARY", tdNew, "", "", 2, 0, 2, 0),
			dep(other, "ACTIVE", tdOld, "", "", 2, 0, 1, 0),
		}, 0, InProgress, ""},
		{"no rolloutState: pending", []ecstypes.Deployment{
			dep(ours, "PRIMARY", tdNew, "", "", 2, 1, 1, 0),
		}, 0, InProgress, ""},
		{"no rolloutState: old one INACTIVE is ignored", []ecstypes.Deployment{
			dep(ours, "PRIMARY", tdNew, "", "", 1, 0, 1, 0),
			dep(other, "INACTIVE", tdOld, "", "", 0, 0, 0, 0),
		}, 0, Completed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			since := tt.since
			if since == 0 {
				since = 10 * time.Second
			}
			st := evaluate(Observation{ID: ours, TaskDefinition: tdNew, Source: tdOld, UpdatedAt: upd, Now: upd.Add(since),
				Svc: ecstypes.Service{Deployments: tt.deps}})
			if st.Phase != tt.want {
				t.Fatalf("phase %s (reason %q), want %s", st.Phase, st.Reason, tt.want)
			}
			if !strings.Contains(st.Reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", st.Reason, tt.reason)
			}
		})
	}
}

// TestEvaluateSequences plays whole sequences of DescribeServices answers
// through evaluate, as Follow sees them, and checks where each ends.
func TestEvaluateSequences(t *testing.T) {
	t.Parallel()
	const (
		inProg = ecstypes.DeploymentRolloutStateInProgress
		done   = ecstypes.DeploymentRolloutStateCompleted
		failed = ecstypes.DeploymentRolloutStateFailed
	)
	upd := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	at := func(d ecstypes.Deployment, t time.Time) ecstypes.Deployment { d.CreatedAt = aws.Time(t); return d }
	old := at(dep(other, "PRIMARY", tdOld, done, "", 1, 0, 1, 0), upd.Add(-time.Hour))
	oldActive := old
	oldActive.Status = aws.String("ACTIVE")
	seqs := []struct {
		name  string
		polls [][]ecstypes.Deployment
		want  []Phase
	}{
		{"lag, then in progress, then completed", [][]ecstypes.Deployment{
			{old},
			{at(dep(ours, "PRIMARY", tdNew, inProg, "", 1, 1, 0, 0), upd), oldActive},
			{at(dep(ours, "PRIMARY", tdNew, done, "", 1, 0, 1, 0), upd)},
		}, []Phase{InProgress, InProgress, Completed}},
		{"failed, rolling back, rolled back", [][]ecstypes.Deployment{
			{at(dep(ours, "PRIMARY", tdNew, inProg, "", 1, 1, 0, 1), upd), oldActive},
			{at(dep("ecs-svc/3", "PRIMARY", tdOld, inProg, "", 1, 1, 0, 0), upd.Add(time.Second)), at(dep(ours, "ACTIVE", tdNew, failed, "cb", 1, 0, 0, 3), upd)},
			{at(dep("ecs-svc/3", "PRIMARY", tdOld, done, "", 1, 0, 1, 0), upd.Add(time.Second))},
		}, []Phase{InProgress, InProgress, RolledBack}},
		{"failed, rolling back, rollback fails", [][]ecstypes.Deployment{
			{at(dep(ours, "PRIMARY", tdNew, inProg, "", 1, 1, 0, 1), upd), oldActive},
			{at(dep("ecs-svc/3", "PRIMARY", tdOld, inProg, "", 1, 1, 0, 0), upd.Add(time.Second)), at(dep(ours, "ACTIVE", tdNew, failed, "cb", 1, 0, 0, 3), upd)},
			{at(dep("ecs-svc/3", "PRIMARY", tdOld, failed, "cb", 1, 0, 0, 3), upd.Add(time.Second)), at(dep(ours, "ACTIVE", tdNew, failed, "cb", 1, 0, 0, 3), upd)},
		}, []Phase{InProgress, InProgress, NotRecovered}},
	}
	for _, sq := range seqs {
		t.Run(sq.name, func(t *testing.T) {
			seen := false
			for i, deps := range sq.polls {
				st := evaluate(Observation{ID: ours, TaskDefinition: tdNew, Source: tdOld, UpdatedAt: upd, Now: upd.Add(time.Duration(i+1) * time.Second),
					Seen: seen, Svc: ecstypes.Service{Deployments: deps}})
				for _, d := range deps {
					seen = seen || aws.ToString(d.Id) == ours
				}
				if st.Phase != sq.want[i] {
					t.Fatalf("poll %d: phase %s (%q), want %s", i+1, st.Phase, st.Reason, sq.want[i])
				}
			}
		})
	}
}

func TestShortARN(t *testing.T) {
	t.Parallel()
	if got := ecsread.ShortARN(tdNew); got != "stage:8" {
		t.Errorf("shortARN = %q", got)
	}
	if got := ecsread.ShortARN("stage:8"); got != "stage:8" {
		t.Errorf("shortARN = %q", got)
	}
}
