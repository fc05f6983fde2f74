package rollout

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/ecsread"
)

// Ending a failing rollout that nothing watches (config failure_threshold).
//
// Without a deployment circuit breaker and without deployment alarms, ECS
// never ends a rollout whose tasks keep failing: it starts new tasks for as
// long as the deployment stays PRIMARY (API_DeploymentCircuitBreaker: with
// rollback off, or no breaker, ECS keeps trying). ctjdeploy counts the failed
// tasks of its own deployment instead, as ECS does in the deployment's
// failedTasks ("Deployment" in the Amazon ECS API Reference: "The number of
// consecutively failed tasks in the deployment. A task is considered a
// failure if the service scheduler can't launch the task, the task doesn't
// transition to a RUNNING state, or if it fails any of its defined health
// checks and is stopped"), and at failure_threshold stops the deployment
// with StopServiceDeployment, stopType ROLLBACK (API_StopServiceDeployment:
// "rolls back the service deployment to the previous service revision. You
// can use this option even if you didn't configure the service deployment
// for the rollback option"; "Stopping Amazon ECS service deployments": a
// PENDING or IN_PROGRESS deployment moves to ROLLBACK_REQUESTED, then the
// rollback starts). Where the service deployment API is absent or denied it
// updates the service back to the revision live before (UpdateService).
// Either way it then follows that rollback: exit 3 when it completes, 6
// when it fails (its own tasks reach the threshold too, or ECS says
// ROLLBACK_FAILED).

// ThresholdAction is what DecideThreshold asks Follow to do.
type ThresholdAction string

const (
	// ThresholdNone: keep following.
	ThresholdNone ThresholdAction = ""
	// ThresholdStop: StopServiceDeployment(ROLLBACK) on our service
	// deployment.
	ThresholdStop ThresholdAction = "stop"
	// ThresholdUpdate: UpdateService back to the revision live before (no
	// service deployment API).
	ThresholdUpdate ThresholdAction = "update"
)

// ThresholdObs is what one poll shows that DecideThreshold needs.
type ThresholdObs struct {
	// Threshold is failure_threshold (0 or less: ctjdeploy never acts).
	Threshold int
	// Failed is the failed tasks of OUR deployment (its failedTasks, or the
	// record's circuit breaker failureCount when higher).
	Failed int32
	// Config is the deployment configuration in force (the record's, else
	// the service's); nil when ECS did not say: whether a breaker watches
	// is then unknown and ctjdeploy does not act.
	Config *ecstypes.DeploymentConfiguration
	// Acted: ctjdeploy already stopped or rolled back this deployment.
	Acted bool
	// Phase and RollingBack are this poll's verdict on our deployment: only
	// a deployment still in progress, which ECS is not rolling back, is
	// stopped.
	Phase       Phase
	RollingBack bool
	// CanStop: our service deployment's ARN is known and the service
	// deployment API answers.
	CanStop bool
	// Source is the revision live before our update ("" if unknown): the
	// UpdateService fallback's target.
	Source string
}

// ThresholdVerdict is DecideThreshold's answer: an action, and why (also
// when it cannot act although the threshold is reached).
type ThresholdVerdict struct {
	Action ThresholdAction
	Reason string
}

// Watched says whether ECS itself watches the rollout: a circuit breaker,
// or deployment alarms with alarm names (API_DeploymentCircuitBreaker,
// API_DeploymentAlarms). It names the watcher.
func Watched(c *ecstypes.DeploymentConfiguration) (bool, string) {
	if c == nil {
		return false, ""
	}
	if cb := c.DeploymentCircuitBreaker; cb != nil && cb.Enable {
		return true, "the deployment circuit breaker"
	}
	if a := c.Alarms; a != nil && a.Enable && len(a.AlarmNames) > 0 {
		return true, "deployment alarms"
	}
	return false, ""
}

// DecideThreshold decides whether ctjdeploy ends our failing deployment
// now. Pure. It acts at most once (Acted), never on a service that a
// circuit breaker or alarms watch (ECS's own rollback stays in charge),
// never when the configuration is unknown, and on the first poll that shows
// Failed ≥ Threshold: so the stop comes within one poll of ECS counting the
// threshold's failed task.
func DecideThreshold(o ThresholdObs) ThresholdVerdict {
	if o.Threshold <= 0 || o.Acted || o.Phase != InProgress || o.RollingBack || o.Config == nil {
		return ThresholdVerdict{}
	}
	if w, _ := Watched(o.Config); w {
		return ThresholdVerdict{}
	}
	if int(o.Failed) < o.Threshold {
		return ThresholdVerdict{}
	}
	why := fmt.Sprintf("%d tasks of the deployment failed (failure_threshold %d) and neither a circuit breaker nor deployment alarms watch the service", o.Failed, o.Threshold)
	switch {
	case o.CanStop:
		return ThresholdVerdict{Action: ThresholdStop, Reason: why}
	case o.Source != "":
		return ThresholdVerdict{Action: ThresholdUpdate, Reason: why}
	}
	return ThresholdVerdict{Reason: why + ", but ctjdeploy knows no revision to go back to and cannot use the service deployment API: it keeps following"}
}

// thresholdAct is what ctjdeploy did at the threshold.
type thresholdAct struct {
	how    ThresholdAction
	why    string
	target string // the revision the service goes back to
	id     string // ThresholdUpdate: the deployment UpdateService started
	seen   bool   // a poll listed that deployment
	at     time.Time
}

// afterAct reinterprets a poll's verdict st once ctjdeploy has acted. Pure.
//
//   - StopServiceDeployment: ECS's record (fromRecord), else the service's
//     deployments, tell the rollback's course as for ECS's own rollbacks;
//     in the deployments' view a PRIMARY on the target is our rollback.
//   - UpdateService back: the deployment it started is followed as ours
//     (evaluate): completed → RolledBack, its failure → NotRecovered.
//   - Either way, the rollback's deployment reaching the threshold of failed
//     tasks is NotRecovered: ctjdeploy does not act twice.
func afterAct(st State, obs Observation, a thresholdAct, threshold int, fromRecord bool) State {
	if a.how == ThresholdNone {
		return st // the stop came too late: ECS's verdict stands
	}
	prefix := a.why + ": "
	switch a.how {
	case ThresholdStop:
		prefix += "ctjdeploy stopped it (StopServiceDeployment, stopType ROLLBACK) and "
		// Without a service deployment record, the service's deployments
		// tell: ECS's rollback is a PRIMARY on the target, which a
		// deployment view calls a replacement (ours not FAILED) or a
		// rollback without rolloutState (no breaker): follow it as ours.
		p := st.Primary
		if !fromRecord && p != nil && aws.ToString(p.TaskDefinition) == a.target && aws.ToString(p.Id) != obs.ID &&
			(st.Phase == Replaced || st.Phase == InProgress && p.RolloutState == "") {
			ro := obs
			ro.ID, ro.TaskDefinition, ro.Source, ro.Seen = aws.ToString(p.Id), a.target, obs.TaskDefinition, true
			return rollbackState(evaluate(ro), ro, prefix, threshold)
		}
	case ThresholdUpdate:
		prefix += "ctjdeploy updated the service back to " + ecsread.ShortARN(a.target) + " (UpdateService; no service deployment API) and "
		ro := obs
		ro.ID, ro.TaskDefinition, ro.Source, ro.Seen, ro.UpdatedAt = a.id, a.target, obs.TaskDefinition, a.seen, a.at
		return rollbackState(evaluate(ro), ro, prefix, threshold)
	}
	switch st.Phase {
	case RolledBack, NotRecovered:
		st.Reason = prefix + st.Reason
	case InProgress:
		if p := st.Primary; st.RollingBack && p != nil && aws.ToString(p.TaskDefinition) != obs.TaskDefinition && threshold > 0 && int(p.FailedTasks) >= threshold {
			st.Phase = NotRecovered
			st.Reason = fmt.Sprintf("%sthe rollback to %s (deployment %s) fails too: %d of its tasks failed", prefix, ecsread.ShortARN(aws.ToString(p.TaskDefinition)), aws.ToString(p.Id), p.FailedTasks)
		} else if st.Reason != "" {
			st.Reason = "after ctjdeploy's stop: " + st.Reason
		}
	}
	return st
}

// rollbackState maps the verdict on the rollback deployment (ro: the
// rollback as "ours") to the verdict on our deployment.
func rollbackState(rs State, ro Observation, prefix string, threshold int) State {
	st := rs
	st.RollingBack = true
	st.Replacer = rs.Ours
	d := rs.Ours
	switch rs.Phase {
	case Completed:
		st.Phase = RolledBack
		st.Reason = fmt.Sprintf("%sthe rollback to %s (deployment %s) completed", prefix, ecsread.ShortARN(ro.TaskDefinition), ro.ID)
	case NotRecovered, RolledBack:
		st.Phase = NotRecovered
		st.Reason = fmt.Sprintf("%sthe rollback to %s (deployment %s) failed: %s", prefix, ecsread.ShortARN(ro.TaskDefinition), ro.ID, rs.Reason)
	case Replaced:
		st.Reason = prefix + "the rollback was replaced: " + rs.Reason
	default:
		st.Phase = InProgress
		if d != nil && threshold > 0 && int(d.FailedTasks) >= threshold {
			st.Phase = NotRecovered
			st.Reason = fmt.Sprintf("%sthe rollback to %s (deployment %s) fails too: %d of its tasks failed", prefix, ecsread.ShortARN(ro.TaskDefinition), ro.ID, d.FailedTasks)
		} else if d != nil {
			st.Reason = fmt.Sprintf("rolling back to %s (deployment %s, %d/%d running, %d failed)", ecsread.ShortARN(ro.TaskDefinition), ro.ID, d.RunningCount, d.DesiredCount, d.FailedTasks)
		}
	}
	return st
}

// StopRollback asks ECS to stop the service deployment arn and roll it back
// to its source revision: StopServiceDeployment with stopType ROLLBACK
// (API_StopServiceDeployment; "Stopping Amazon ECS service deployments").
// Shared by `rollback` of an in-flight deployment and failure_threshold.
func StopRollback(ctx context.Context, api ECS, arn string) error {
	_, err := api.StopServiceDeployment(ctx, &ecs.StopServiceDeploymentInput{
		ServiceDeploymentArn: aws.String(arn), StopType: ecstypes.StopServiceDeploymentStopTypeRollback,
	})
	return err
}
