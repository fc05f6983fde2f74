package rollout

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Phase is where a followed deployment stands.
type Phase string

const (
	InProgress Phase = "in-progress" // keep polling
	Completed  Phase = "completed"   // our deployment finished: success
	Failed     Phase = "failed"      // our deployment failed or ECS rolled it back: exit 3
	Superseded Phase = "superseded"  // another deployment of the same revision replaced ours: exit 1
)

// State is the verdict of evaluate on one DescribeServices answer.
type State struct {
	Phase Phase
	// Reason says why, in words a user can act on (the rollout reason when
	// ECS gives one).
	Reason string
	// Ours is our deployment as ECS lists it (nil when it is gone).
	Ours *ecstypes.Deployment
	// Primary is the service's PRIMARY deployment (nil if none).
	Primary *ecstypes.Deployment
	// RolledBack says the PRIMARY deployment now runs another revision than
	// ours: the circuit breaker (or someone) put the service back.
	RolledBack bool
}

// Deployment statuses and rollout states, as the ECS API spells them.
const (
	statusPrimary  = "PRIMARY"
	statusActive   = "ACTIVE"
	statusInactive = "INACTIVE"
)

// evaluate decides where deployment id stands in svc (one DescribeServices
// service). taskDef is the revision our deployment runs (the ARN we passed to
// UpdateService); it tells a rollback (PRIMARY runs another revision) from a
// supersession (PRIMARY runs ours, under another deployment id). Pure.
//
// The rules, in order:
//   - our deployment's rolloutState FAILED → Failed (with rolloutStateReason);
//   - our deployment is gone, or no longer PRIMARY, and the PRIMARY runs
//     another revision → Failed, RolledBack (the circuit breaker's rollback);
//   - our deployment is gone or no longer PRIMARY and the PRIMARY runs our
//     revision → Superseded;
//   - rolloutState COMPLETED → Completed;
//   - no rolloutState (deployments without the circuit breaker's state):
//     Completed when ours is the only non-INACTIVE deployment and runs
//     desiredCount tasks with none pending, else InProgress;
//   - otherwise InProgress.
func evaluate(id, taskDef string, svc ecstypes.Service) State {
	var st State
	for i := range svc.Deployments {
		d := &svc.Deployments[i]
		if aws.ToString(d.Id) == id {
			st.Ours = d
		}
		if aws.ToString(d.Status) == statusPrimary {
			st.Primary = d
		}
	}
	ours, prim := st.Ours, st.Primary
	if ours != nil && ours.RolloutState == ecstypes.DeploymentRolloutStateFailed {
		st.Phase = Failed
		st.Reason = aws.ToString(ours.RolloutStateReason)
		if st.Reason == "" {
			st.Reason = fmt.Sprintf("ECS marked deployment %s FAILED", id)
		}
		st.RolledBack = prim != nil && prim != ours && aws.ToString(prim.TaskDefinition) != taskDef
		if st.RolledBack {
			st.Reason += fmt.Sprintf("; ECS rolled the service back to %s (deployment %s)", shortARN(aws.ToString(prim.TaskDefinition)), aws.ToString(prim.Id))
		}
		return st
	}
	if ours == nil || aws.ToString(ours.Status) != statusPrimary {
		where := "is no longer listed"
		if ours != nil {
			where = "is no longer PRIMARY (" + aws.ToString(ours.Status) + ")"
		}
		switch {
		case prim == nil:
			st.Phase = Failed
			st.Reason = fmt.Sprintf("deployment %s %s and the service has no PRIMARY deployment", id, where)
		case aws.ToString(prim.TaskDefinition) != taskDef:
			st.Phase = Failed
			st.RolledBack = true
			st.Reason = fmt.Sprintf("deployment %s %s: ECS rolled the service back to %s (deployment %s)",
				id, where, shortARN(aws.ToString(prim.TaskDefinition)), aws.ToString(prim.Id))
			if r := aws.ToString(prim.RolloutStateReason); r != "" {
				st.Reason += ": " + r
			}
		default:
			st.Phase = Superseded
			st.Reason = fmt.Sprintf("deployment %s %s: deployment %s of the same revision %s replaced it",
				id, where, aws.ToString(prim.Id), shortARN(taskDef))
		}
		return st
	}
	switch ours.RolloutState {
	case ecstypes.DeploymentRolloutStateCompleted:
		st.Phase = Completed
		st.Reason = aws.ToString(ours.RolloutStateReason)
		return st
	case "":
		active := 0
		for _, d := range svc.Deployments {
			if aws.ToString(d.Status) != statusInactive {
				active++
			}
		}
		if active == 1 && ours.RunningCount == ours.DesiredCount && ours.PendingCount == 0 {
			st.Phase = Completed
			st.Reason = fmt.Sprintf("deployment %s runs %d of %d tasks and is the only one left", id, ours.RunningCount, ours.DesiredCount)
			return st
		}
	}
	st.Phase = InProgress
	st.Reason = aws.ToString(ours.RolloutStateReason)
	return st
}

// shortARN is FAMILY:REVISION of a task definition ARN (the ARN itself if it
// has no "task-definition/" part).
func shortARN(arn string) string {
	if _, after, ok := strings.Cut(arn, ":task-definition/"); ok {
		return after
	}
	return arn
}
