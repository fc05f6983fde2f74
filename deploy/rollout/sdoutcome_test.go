package rollout

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// sdRecord builds a ServiceDeployment the way DescribeServiceDeployments
// returns one (ECS API reference, ServiceDeployment).
func sdRecord(st ecstypes.ServiceDeploymentStatus, reason string, cbFailures int32) *ecstypes.ServiceDeployment {
	sd := &ecstypes.ServiceDeployment{
		ServiceDeploymentArn:  aws.String("arn:aws:ecs:us-west-2:123456789012:service-deployment/c/s/ours"),
		Status:                st,
		CreatedAt:             aws.Time(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)),
		TargetServiceRevision: &ecstypes.ServiceRevisionSummary{Arn: aws.String("arn:aws:ecs:us-west-2:123456789012:service-revision/c/s/8")},
		DeploymentCircuitBreaker: &ecstypes.ServiceDeploymentCircuitBreaker{
			Status: ecstypes.ServiceDeploymentRollbackMonitorsStatusMonitoring, FailureCount: cbFailures, Threshold: 3},
	}
	if reason != "" {
		sd.StatusReason = aws.String(reason)
	}
	if cbFailures >= 3 {
		sd.DeploymentCircuitBreaker.Status = ecstypes.ServiceDeploymentRollbackMonitorsStatusTriggered
	}
	return sd
}

func TestDecideServiceDeployment(t *testing.T) {
	t.Parallel()
	const (
		inProg = ecstypes.DeploymentRolloutStateInProgress
		done   = ecstypes.DeploymentRolloutStateCompleted
		failed = ecstypes.DeploymentRolloutStateFailed
	)
	newer := &ecstypes.ServiceDeploymentBrief{ServiceDeploymentArn: aws.String("arn:aws:ecs:us-west-2:123456789012:service-deployment/c/s/theirs"),
		TargetServiceRevisionArn: aws.String("arn:aws:ecs:us-west-2:123456789012:service-revision/c/s/9")}
	oursPrimary := []ecstypes.Deployment{dep(ours, "PRIMARY", tdNew, inProg, "", 1, 1, 0, 0), dep(other, "ACTIVE", tdOld, done, "", 1, 0, 1, 0)}
	rolledBack := []ecstypes.Deployment{dep("ecs-svc/3", "PRIMARY", tdOld, done, "", 1, 0, 1, 0), dep(ours, "ACTIVE", tdNew, failed, "cb", 1, 0, 0, 3)}
	replaced := []ecstypes.Deployment{dep("ecs-svc/4", "PRIMARY", "arn:aws:ecs:us-west-2:123456789012:task-definition/stage:9", inProg, "", 1, 1, 0, 0)}
	withRollback := func(sd *ecstypes.ServiceDeployment) *ecstypes.ServiceDeployment {
		sd.Rollback = &ecstypes.Rollback{Reason: aws.String("Circuit breaker triggered"), ServiceRevisionArn: aws.String("rev-7")}
		return sd
	}
	cases := []struct {
		name   string
		sd     *ecstypes.ServiceDeployment
		newer  *ecstypes.ServiceDeploymentBrief
		deps   []ecstypes.Deployment
		want   Phase
		reason string
	}{
		{"not listed yet", nil, nil, oursPrimary, InProgress, "does not list"},
		{"pending", sdRecord(ecstypes.ServiceDeploymentStatusPending, "", 0), nil, oursPrimary, InProgress, "PENDING"},
		{"in progress, failures counted", sdRecord(ecstypes.ServiceDeploymentStatusInProgress, "", 2), nil, oursPrimary, InProgress, "2 failed tasks of a threshold of 3"},
		{"rollback requested", withRollback(sdRecord(ecstypes.ServiceDeploymentStatusRollbackRequested, "", 3)), nil, oursPrimary, InProgress, "rolling the deployment back (ROLLBACK_REQUESTED)"},
		{"rollback in progress", withRollback(sdRecord(ecstypes.ServiceDeploymentStatusRollbackInProgress, "", 3)), nil, rolledBack, InProgress, "Circuit breaker triggered"},
		{"stop requested", sdRecord(ecstypes.ServiceDeploymentStatusStopRequested, "", 0), nil, oursPrimary, InProgress, "STOP_REQUESTED"},
		{"successful", sdRecord(ecstypes.ServiceDeploymentStatusSuccessful, "", 0), nil, oursPrimary, Completed, "SUCCESSFUL"},
		{"rollback successful, service shows the rollback", withRollback(sdRecord(ecstypes.ServiceDeploymentStatusRollbackSuccessful, "", 3)), nil, rolledBack, RolledBack, "rolled the deployment back to stage:7"},
		{"rollback successful, describe still lags on ours", withRollback(sdRecord(ecstypes.ServiceDeploymentStatusRollbackSuccessful, "", 3)), nil, oursPrimary, InProgress, "waiting for the service"},
		{"rollback failed", withRollback(sdRecord(ecstypes.ServiceDeploymentStatusRollbackFailed, "rollback tasks failed to start", 3)), nil, rolledBack, NotRecovered, "rollback failed too"},
		{"stopped, failed without rollback", sdRecord(ecstypes.ServiceDeploymentStatusStopped, "circuit breaker: tasks failed to start", 3), nil, oursPrimary, NotRecovered, "no rollback ran"},
		{"stopped, failed without rollback, a newer one exists (the fix) but ours recorded failures", sdRecord(ecstypes.ServiceDeploymentStatusStopped, "", 3), newer, oursPrimary, NotRecovered, "no rollback ran"},
		{"stopped, replaced by a newer deployment", sdRecord(ecstypes.ServiceDeploymentStatusStopped, "", 0), newer, replaced, Replaced, "theirs of stage:9"},
		{"stopped by someone, nothing newer", sdRecord(ecstypes.ServiceDeploymentStatusStopped, "stopped by user", 0), nil, oursPrimary, NotRecovered, "stopped by user"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := DecideServiceDeployment(c.sd, c.newer, Observation{ID: ours, TaskDefinition: tdNew, Source: tdOld, Svc: ecstypes.Service{Deployments: c.deps}})
			if st.Phase != c.want {
				t.Fatalf("phase %s (%q), want %s", st.Phase, st.Reason, c.want)
			}
			if !strings.Contains(st.Reason, c.reason) {
				t.Errorf("reason %q lacks %q", st.Reason, c.reason)
			}
			if c.want != Completed && st.Phase == Completed {
				t.Errorf("success without SUCCESSFUL")
			}
		})
	}
	if Completed.Code() != exitcode.OK || RolledBack.Code() != exitcode.RolledBack || NotRecovered.Code() != exitcode.NotRecovered || Replaced.Code() != exitcode.Failed {
		t.Errorf("phase codes: %d %d %d %d", Completed.Code(), RolledBack.Code(), NotRecovered.Code(), Replaced.Code())
	}
}
