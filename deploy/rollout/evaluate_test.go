package rollout

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
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
	const (
		inProg = ecstypes.DeploymentRolloutStateInProgress
		done   = ecstypes.DeploymentRolloutStateCompleted
		failed = ecstypes.DeploymentRolloutStateFailed
	)
	tests := []struct {
		name       string
		deps       []ecstypes.Deployment
		want       Phase
		rolledBack bool
		reason     string // substring
	}{
		{"just started: ours PRIMARY IN_PROGRESS, old ACTIVE", []ecstypes.Deployment{
			dep(ours, "PRIMARY", tdNew, inProg, "ECS deployment ecs-svc/1111 in progress.", 1, 1, 0, 0),
			dep(other, "ACTIVE", tdOld, done, "", 1, 0, 1, 0),
		}, InProgress, false, "in progress"},
		{"completed", []ecstypes.Deployment{
			dep(ours, "PRIMARY", tdNew, done, "ECS deployment ecs-svc/1111 completed.", 1, 0, 1, 0),
		}, Completed, false, "completed"},
		{"completed while old still draining is still completed (ECS says so)", []ecstypes.Deployment{
			dep(ours, "PRIMARY", tdNew, done, "", 1, 0, 1, 0),
			dep(other, "ACTIVE", tdOld, done, "", 0, 0, 1, 0),
		}, Completed, false, ""},
		{"circuit breaker: ours FAILED and ACTIVE, rollback PRIMARY on old revision", []ecstypes.Deployment{
			dep("ecs-svc/3333", "PRIMARY", tdOld, inProg, "ECS deployment ecs-svc/3333 in progress.", 1, 0, 1, 0),
			dep(ours, "ACTIVE", tdNew, failed, "ECS deployment circuit breaker: tasks failed to start.", 1, 0, 0, 3),
		}, Failed, true, "circuit breaker: tasks failed to start"},
		{"failed without rollback: ours still PRIMARY", []ecstypes.Deployment{
			dep(ours, "PRIMARY", tdNew, failed, "ECS deployment circuit breaker: tasks failed to start.", 1, 0, 0, 3),
		}, Failed, false, "tasks failed to start"},
		{"failed with no reason", []ecstypes.Deployment{
			dep(ours, "PRIMARY", tdNew, failed, "", 1, 0, 0, 3),
		}, Failed, false, "FAILED"},
		{"ours gone, PRIMARY on old revision: rolled back", []ecstypes.Deployment{
			dep("ecs-svc/3333", "PRIMARY", tdOld, done, "", 1, 0, 1, 0),
		}, Failed, true, "rolled the service back to stage:7"},
		{"ours ACTIVE (not failed), PRIMARY runs old revision: rolled back", []ecstypes.Deployment{
			dep("ecs-svc/3333", "PRIMARY", tdOld, inProg, "", 1, 0, 0, 0),
			dep(ours, "ACTIVE", tdNew, inProg, "", 1, 0, 0, 1),
		}, Failed, true, "no longer PRIMARY"},
		{"superseded by a deployment of the same revision", []ecstypes.Deployment{
			dep("ecs-svc/3333", "PRIMARY", tdNew, inProg, "", 1, 1, 0, 0),
			dep(ours, "ACTIVE", tdNew, inProg, "", 1, 0, 0, 0),
		}, Superseded, false, "same revision"},
		{"ours gone and no PRIMARY", nil, Failed, false, "no PRIMARY"},
		{"no rolloutState (moto, no circuit breaker): steady", []ecstypes.Deployment{
			dep(ours, "PRIMARY", tdNew, "", "", 2, 0, 2, 0),
		}, Completed, false, "only one left"},
		{"no rolloutState: old still running", []ecstypes.Deployment{
			dep(ours, "PRIMARY", tdNew, "", "", 2, 0, 2, 0),
			dep(other, "ACTIVE", tdOld, "", "", 2, 0, 1, 0),
		}, InProgress, false, ""},
		{"no rolloutState: pending", []ecstypes.Deployment{
			dep(ours, "PRIMARY", tdNew, "", "", 2, 1, 1, 0),
		}, InProgress, false, ""},
		{"no rolloutState: old one INACTIVE is ignored", []ecstypes.Deployment{
			dep(ours, "PRIMARY", tdNew, "", "", 1, 0, 1, 0),
			dep(other, "INACTIVE", tdOld, "", "", 0, 0, 0, 0),
		}, Completed, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := evaluate(ours, tdNew, ecstypes.Service{Deployments: tt.deps})
			if st.Phase != tt.want || st.RolledBack != tt.rolledBack {
				t.Fatalf("phase %s rolledBack %v (reason %q), want %s %v", st.Phase, st.RolledBack, st.Reason, tt.want, tt.rolledBack)
			}
			if !strings.Contains(st.Reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", st.Reason, tt.reason)
			}
		})
	}
}

func TestShortARN(t *testing.T) {
	if got := shortARN(tdNew); got != "stage:8" {
		t.Errorf("shortARN = %q", got)
	}
	if got := shortARN("stage:8"); got != "stage:8" {
		t.Errorf("shortARN = %q", got)
	}
}
