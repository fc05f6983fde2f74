package rollout

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// SDVerdict is the outcome of one service deployment answer
// (DescribeServiceDeployments), per the statuses in "ServiceDeployment" of the
// Amazon ECS API Reference.
type SDVerdict struct {
	Done bool   // a terminal status: stop following
	Code int    // exit code when Done (before the digest check for success)
	Note string // what ECS is doing or did
}

// DecideServiceDeployment decides on our service deployment sd. newer is the
// latest service deployment of the service created after ours (nil if none);
// it tells a STOPPED deployment replaced by another from one that failed
// without rollback. sourceLive says the service runs sd's source revision
// again (checked by the caller after ROLLBACK_SUCCESSFUL). It never answers
// success unless ECS said SUCCESSFUL.
func DecideServiceDeployment(sd *ecstypes.ServiceDeployment, newer *ecstypes.ServiceDeploymentBrief, sourceLive bool) SDVerdict {
	if sd == nil {
		return SDVerdict{Note: "ECS does not list our service deployment yet"}
	}
	reason := aws.ToString(sd.StatusReason)
	switch sd.Status {
	case ecstypes.ServiceDeploymentStatusSuccessful:
		return SDVerdict{Done: true, Code: exitcode.OK, Note: "deployment SUCCESSFUL"}
	case ecstypes.ServiceDeploymentStatusRollbackSuccessful:
		if !sourceLive {
			return SDVerdict{Note: "ECS reports ROLLBACK_SUCCESSFUL; waiting for the service to run the source revision"}
		}
		return SDVerdict{Done: true, Code: exitcode.RolledBack, Note: "ECS rolled the deployment back and the rollback completed: " + reason}
	case ecstypes.ServiceDeploymentStatusRollbackFailed:
		return SDVerdict{Done: true, Code: exitcode.NotRecovered, Note: "the deployment failed and its rollback failed too: " + reason}
	case ecstypes.ServiceDeploymentStatusStopped:
		if newer != nil && aws.ToString(newer.TargetServiceRevisionArn) != targetArn(sd) {
			return SDVerdict{Done: true, Code: exitcode.Failed, Note: "replaced by service deployment " + aws.ToString(newer.ServiceDeploymentArn) + " targeting " + aws.ToString(newer.TargetServiceRevisionArn)}
		}
		return SDVerdict{Done: true, Code: exitcode.NotRecovered, Note: "the deployment failed and no rollback ran: " + reason}
	}
	return SDVerdict{Note: "ECS is still at " + string(sd.Status)}
}

func targetArn(sd *ecstypes.ServiceDeployment) string {
	if sd.TargetServiceRevision == nil {
		return ""
	}
	return aws.ToString(sd.TargetServiceRevision.Arn)
}
