package rollout

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/ecsread"
)

// DecideServiceDeployment decides where our deployment stands from its
// service deployment record (DescribeServiceDeployments), per the statuses
// of "ServiceDeployment" in the Amazon ECS API Reference and "View service
// history using Amazon ECS service deployments" in the developer guide. Pure.
//
//   - SUCCESSFUL → Completed (the digest check follows).
//   - ROLLBACK_SUCCESSFUL → RolledBack, once DescribeServices (o.Svc) shows a
//     PRIMARY on another revision than ours: the rollback is a deployment of
//     "the last deployment that completed successfully"
//     (API_DeploymentCircuitBreaker), and reads lag.
//   - ROLLBACK_FAILED → NotRecovered.
//   - STOPPED: per ServiceDeployment.stoppedAt a deployment stops when
//     someone stops it, or when the failure detection's rollback option is
//     not in use and the service fails. A newer service deployment (newer,
//     created after ours) with no failure recorded on ours is a replacement
//     (Replaced, exit 1); anything else failed without rollback
//     (NotRecovered).
//   - PENDING, IN_PROGRESS, STOP_REQUESTED, ROLLBACK_REQUESTED,
//     ROLLBACK_IN_PROGRESS → InProgress (RollingBack for the rollback ones).
//
// It never answers success unless ECS said SUCCESSFUL.
func DecideServiceDeployment(sd *ecstypes.ServiceDeployment, newer *ecstypes.ServiceDeploymentBrief, o Observation) State {
	st := o.locate()
	if sd == nil {
		st.Phase, st.Reason = InProgress, "ECS does not list our service deployment yet"
		return st
	}
	reason := aws.ToString(sd.StatusReason)
	detail := SDDetail(sd)
	with := func(s string) string {
		if detail != "" {
			return s + " (" + detail + ")"
		}
		return s
	}
	switch sd.Status {
	case ecstypes.ServiceDeploymentStatusSuccessful:
		st.Phase, st.Reason = Completed, with("service deployment SUCCESSFUL")
	case ecstypes.ServiceDeploymentStatusRollbackSuccessful:
		st.RollingBack = true
		prim := st.Primary
		if prim == nil || aws.ToString(prim.TaskDefinition) == o.TaskDefinition {
			st.Phase = InProgress
			st.Reason = "ECS reports ROLLBACK_SUCCESSFUL; waiting for the service to show the revision it rolled back to"
			return st
		}
		st.Replacer = prim
		st.Phase = RolledBack
		st.Reason = with(fmt.Sprintf("ECS rolled the deployment back to %s (deployment %s) and the rollback completed: %s",
			ecsread.ShortARN(aws.ToString(prim.TaskDefinition)), aws.ToString(prim.Id), rollbackReason(sd)))
	case ecstypes.ServiceDeploymentStatusRollbackFailed:
		st.RollingBack = true
		st.Phase = NotRecovered
		st.Reason = with("the deployment failed and ECS's rollback failed too: " + firstNonEmpty(reason, rollbackReason(sd)))
	case ecstypes.ServiceDeploymentStatusStopped:
		if newer != nil && !failureRecorded(sd) {
			st.Phase = Replaced
			st.Replacer = st.Primary
			what := "service deployment " + ecsread.ID(aws.ToString(newer.ServiceDeploymentArn))
			if p := st.Primary; p != nil && aws.ToString(p.TaskDefinition) != "" {
				what += " of " + ecsread.ShortARN(aws.ToString(p.TaskDefinition)) + " (deployment " + aws.ToString(p.Id) + ")"
			}
			st.Reason = fmt.Sprintf("deployment %s was stopped: %s, which this run did not start, replaced it (another deploy or a terraform apply?)", o.ID, what)
			if reason != "" {
				st.Reason += ": " + reason
			}
			return st
		}
		st.Phase = NotRecovered
		st.Reason = with("the deployment failed and no rollback ran (STOPPED): " + firstNonEmpty(reason, "no reason given") +
			"; the service still runs the failed revision " + ecsread.ShortARN(o.TaskDefinition))
	case ecstypes.ServiceDeploymentStatusRollbackRequested, ecstypes.ServiceDeploymentStatusRollbackInProgress:
		st.RollingBack = true
		st.Phase = InProgress
		st.Reason = with("ECS is rolling the deployment back (" + string(sd.Status) + "): " + firstNonEmpty(rollbackReason(sd), reason))
	default:
		st.Phase = InProgress
		st.Reason = with("ECS is at " + string(sd.Status) + suffix(": ", reason))
	}
	return st
}

// SDDetail is the record's circuit breaker count, triggered alarms and
// lifecycle stage, for messages ("" if none).
func SDDetail(sd *ecstypes.ServiceDeployment) string {
	var parts []string
	// A DISABLED breaker's count is no breaker's verdict: say nothing.
	if cb := sd.DeploymentCircuitBreaker; cb != nil && cb.Status != ecstypes.ServiceDeploymentRollbackMonitorsStatusDisabled && (cb.FailureCount > 0 || cb.Status == ecstypes.ServiceDeploymentRollbackMonitorsStatusTriggered) {
		parts = append(parts, fmt.Sprintf("circuit breaker %s: %s of a threshold of %d", strings.ToLower(string(cb.Status)), plural(int(cb.FailureCount), "failed task"), cb.Threshold))
	}
	if a := sd.Alarms; a != nil && len(a.TriggeredAlarmNames) > 0 {
		parts = append(parts, "alarms in ALARM: "+strings.Join(a.TriggeredAlarmNames, ", "))
	}
	if sd.LifecycleStage != "" {
		parts = append(parts, "lifecycle stage "+string(sd.LifecycleStage))
	}
	return strings.Join(parts, "; ")
}

// failureRecorded says the record holds a failure: the circuit breaker
// triggered or counted failed tasks, or an alarm fired.
func failureRecorded(sd *ecstypes.ServiceDeployment) bool {
	if cb := sd.DeploymentCircuitBreaker; cb != nil && (cb.Status == ecstypes.ServiceDeploymentRollbackMonitorsStatusTriggered || cb.FailureCount > 0) {
		return true
	}
	if a := sd.Alarms; a != nil && (a.Status == ecstypes.ServiceDeploymentRollbackMonitorsStatusTriggered || len(a.TriggeredAlarmNames) > 0) {
		return true
	}
	return false
}

func rollbackReason(sd *ecstypes.ServiceDeployment) string {
	if sd.Rollback != nil {
		return aws.ToString(sd.Rollback.Reason)
	}
	return ""
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func suffix(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
}

// plural is "1 failed task", "3 failed tasks".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// Plural is plural for the packages above (deploy, rollback).
func Plural(n int, noun string) string { return plural(n, noun) }

// Verb is one when n is 1, else many ("runs", "run").
func Verb(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
