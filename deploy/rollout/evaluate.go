package rollout

import (
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/ecsread"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// Phase is where a followed deployment stands.
type Phase string

const (
	InProgress Phase = "in-progress" // keep polling
	Completed  Phase = "completed"   // our deployment finished: success (then the digest check)
	// RolledBack: our deployment failed, ECS rolled the service back and
	// that rollback has completed: exit 3.
	RolledBack Phase = "rolled-back"
	// NotRecovered: our deployment failed and the service is not back on a
	// working revision (no rollback, or the rollback failed): exit 6.
	NotRecovered Phase = "not-recovered"
	// Replaced: a deployment this run did not start took over (another
	// deploy, terraform apply): exit 1, naming it.
	Replaced Phase = "replaced"
)

// Code is the exit code a terminal phase ends the deploy with.
func (p Phase) Code() int {
	switch p {
	case Completed:
		return exitcode.OK
	case RolledBack:
		return exitcode.RolledBack
	case NotRecovered:
		return exitcode.NotRecovered
	case Replaced:
		return exitcode.Failed
	}
	return -1
}

// Terminal says whether following stops at p.
func (p Phase) Terminal() bool { return p != InProgress && p != "" }

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
	// RollingBack says ECS is rolling our failed deployment back (the
	// rollback has not ended yet), or did.
	RollingBack bool
	// Replacer is the deployment that replaced ours (Phase Replaced), or
	// the rollback deployment.
	Replacer *ecstypes.Deployment
}

// Deployment statuses and rollout states, as the ECS API spells them.
const (
	statusPrimary  = "PRIMARY"
	statusActive   = "ACTIVE"
	statusInactive = "INACTIVE"
)

// DefaultGrace is how long after UpdateService a DescribeServices answer
// that does not list our deployment is taken as a lagging read (the ECS API
// is eventually consistent: "Request throttling for the Amazon ECS API" and
// the API reference's "Eventual consistency" notes), not as a failure.
const DefaultGrace = 30 * time.Second

// Observation is what one poll of the service shows, with what the follower
// knows: our deployment's id and revision, the revision that was live before
// our update (Source), and when UpdateService returned.
type Observation struct {
	ID, TaskDefinition, Source string
	UpdatedAt, Now             time.Time
	Grace                      time.Duration // default DefaultGrace
	// Seen says an earlier poll listed our deployment: once seen, its
	// absence is no lagging read.
	Seen bool
	Svc  ecstypes.Service
}

// locate is a State with our deployment and the PRIMARY one found in the
// observation's service (nil where absent).
func (o Observation) locate() State {
	var st State
	for i := range o.Svc.Deployments {
		d := &o.Svc.Deployments[i]
		if aws.ToString(d.Id) == o.ID {
			st.Ours = d
		}
		if aws.ToString(d.Status) == statusPrimary {
			st.Primary = d
		}
	}
	return st
}

// evaluate decides where our deployment stands from the service's
// deployments (DescribeServices: the view every account has, and the
// fallback when the service deployment API is not available). Pure.
//
// The ECS developer guide ("Deployment circuit breaker", API
// DeploymentCircuitBreaker / DeploymentAlarms) says a rollback goes "to the
// last deployment that completed successfully" and is itself a new
// deployment, which can complete or fail; without rollback a FAILED
// deployment stays PRIMARY. So:
//   - our deployment COMPLETED (and PRIMARY) → Completed;
//   - a PRIMARY created after our update, on another revision, while ours
//     FAILED (or, ours no longer listed, on the revision live before the
//     update, Source) → ECS's rollback: keep
//     following until that deployment COMPLETED (→ RolledBack, exit 3) or
//     FAILED (→ NotRecovered, exit 6);
//   - ours FAILED and still PRIMARY → NotRecovered (no rollback);
//   - any other deployment taking PRIMARY from ours → Replaced (exit 1);
//   - ours not listed within Grace after the update → a lagging read: keep
//     following; after Grace, as if it left PRIMARY;
//   - no rolloutState (no circuit breaker): Completed when ours is the only
//     deployment that is not INACTIVE and runs desiredCount tasks with none
//     pending.
func evaluate(o Observation) State {
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	st := o.locate()
	ours, prim := st.Ours, st.Primary
	if ours == nil && !o.Seen && !o.UpdatedAt.IsZero() && o.Now.Sub(o.UpdatedAt) < o.Grace {
		st.Phase = InProgress
		st.Reason = fmt.Sprintf("ECS does not list deployment %s yet (reads are eventually consistent); waiting up to %s", o.ID, o.Grace)
		return st
	}
	if ours != nil && prim == ours {
		switch ours.RolloutState {
		case ecstypes.DeploymentRolloutStateCompleted:
			st.Phase, st.Reason = Completed, aws.ToString(ours.RolloutStateReason)
		case ecstypes.DeploymentRolloutStateFailed:
			st.Phase = NotRecovered
			st.Reason = failReason(ours, o.ID) + "; ECS did not roll the service back: it still runs the failed revision " + ecsread.ShortARN(o.TaskDefinition)
		case "":
			st.Phase, st.Reason = InProgress, aws.ToString(ours.RolloutStateReason)
			active := 0
			for _, d := range o.Svc.Deployments {
				if aws.ToString(d.Status) != statusInactive {
					active++
				}
			}
			if active == 1 && ours.RunningCount == ours.DesiredCount && ours.PendingCount == 0 {
				st.Phase = Completed
				st.Reason = fmt.Sprintf("deployment %s runs %d of %d tasks and is the only one left", o.ID, ours.RunningCount, ours.DesiredCount)
			}
		default:
			st.Phase, st.Reason = InProgress, aws.ToString(ours.RolloutStateReason)
		}
		return st
	}
	// Ours is gone or no longer PRIMARY.
	if prim == nil {
		st.Phase = NotRecovered
		st.Reason = fmt.Sprintf("deployment %s %s and the service has no PRIMARY deployment", o.ID, where(ours))
		return st
	}
	st.Replacer = prim
	after := prim.CreatedAt == nil || o.UpdatedAt.IsZero() || !prim.CreatedAt.Before(o.UpdatedAt.Add(-2*time.Second))
	failed := ours != nil && ours.RolloutState == ecstypes.DeploymentRolloutStateFailed
	primTD := aws.ToString(prim.TaskDefinition)
	// ECS's own rollbacks (circuit breaker, alarms) mark ours FAILED; a
	// listed deployment of ours that did not fail was replaced by someone
	// (CTJ's terraform apply points the service at its own revision, often
	// the one live before). Only when ours is no longer listed does the
	// source revision tell a rollback.
	if after && primTD != o.TaskDefinition && (failed || ours == nil && primTD == o.Source) {
		st.RollingBack = true
		why := ""
		if failed {
			why = failReason(ours, o.ID) + "; "
		}
		switch prim.RolloutState {
		case ecstypes.DeploymentRolloutStateCompleted:
			st.Phase = RolledBack
			st.Reason = fmt.Sprintf("%sECS rolled the service back to %s (deployment %s) and the rollback completed", why, ecsread.ShortARN(primTD), aws.ToString(prim.Id))
		case ecstypes.DeploymentRolloutStateFailed:
			st.Phase = NotRecovered
			st.Reason = fmt.Sprintf("%sECS's rollback to %s (deployment %s) failed too: %s", why, ecsread.ShortARN(primTD), aws.ToString(prim.Id), aws.ToString(prim.RolloutStateReason))
		default:
			st.Phase = InProgress
			st.Reason = fmt.Sprintf("%sECS is rolling the service back to %s (deployment %s, %d/%d running)", why, ecsread.ShortARN(primTD), aws.ToString(prim.Id), prim.RunningCount, prim.DesiredCount)
		}
		return st
	}
	st.Phase = Replaced
	if primTD == o.TaskDefinition {
		st.Reason = fmt.Sprintf("deployment %s %s: deployment %s of the same revision %s, which this run did not start, replaced it", o.ID, where(ours), aws.ToString(prim.Id), ecsread.ShortARN(primTD))
	} else {
		st.Reason = fmt.Sprintf("deployment %s %s: deployment %s of %s, which this run did not start, replaced it (another deploy or a terraform apply?)", o.ID, where(ours), aws.ToString(prim.Id), ecsread.ShortARN(primTD))
	}
	return st
}

func where(d *ecstypes.Deployment) string {
	if d == nil {
		return "is no longer listed"
	}
	return "is no longer PRIMARY (" + aws.ToString(d.Status) + ")"
}

func failReason(d *ecstypes.Deployment, id string) string {
	r := strings.TrimSuffix(aws.ToString(d.RolloutStateReason), ".")
	if r == "" {
		r = "ECS marked it FAILED"
	}
	return fmt.Sprintf("deployment %s failed: %s", id, r)
}
