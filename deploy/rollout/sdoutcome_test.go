package rollout

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

func TestDecideServiceDeployment(t *testing.T) {
	ours := func(st ecstypes.ServiceDeploymentStatus) *ecstypes.ServiceDeployment {
		return &ecstypes.ServiceDeployment{Status: st, StatusReason: aws.String("reason"),
			TargetServiceRevision: &ecstypes.ServiceRevisionSummary{Arn: aws.String("rev-ours")}}
	}
	other := &ecstypes.ServiceDeploymentBrief{ServiceDeploymentArn: aws.String("sd-2"), TargetServiceRevisionArn: aws.String("rev-other")}
	cases := []struct {
		name   string
		sd     *ecstypes.ServiceDeployment
		newer  *ecstypes.ServiceDeploymentBrief
		source bool
		done   bool
		code   int
	}{
		{"not listed yet", nil, nil, false, false, 0},
		{"pending", ours(ecstypes.ServiceDeploymentStatusPending), nil, false, false, 0},
		{"in progress", ours(ecstypes.ServiceDeploymentStatusInProgress), nil, false, false, 0},
		{"rollback requested", ours(ecstypes.ServiceDeploymentStatusRollbackRequested), nil, false, false, 0},
		{"rollback in progress", ours(ecstypes.ServiceDeploymentStatusRollbackInProgress), nil, false, false, 0},
		{"stop requested", ours(ecstypes.ServiceDeploymentStatusStopRequested), nil, false, false, 0},
		{"unknown enum", ours("SOMETHING_NEW"), nil, true, false, 0},
		{"successful", ours(ecstypes.ServiceDeploymentStatusSuccessful), nil, false, true, exitcode.OK},
		{"rollback successful, source not live yet", ours(ecstypes.ServiceDeploymentStatusRollbackSuccessful), nil, false, false, 0},
		{"rollback successful", ours(ecstypes.ServiceDeploymentStatusRollbackSuccessful), nil, true, true, exitcode.RolledBack},
		{"rollback failed", ours(ecstypes.ServiceDeploymentStatusRollbackFailed), nil, true, true, exitcode.NotRecovered},
		{"stopped, no rollback", ours(ecstypes.ServiceDeploymentStatusStopped), nil, false, true, exitcode.NotRecovered},
		{"stopped, replaced", ours(ecstypes.ServiceDeploymentStatusStopped), other, false, true, exitcode.Failed},
	}
	for _, c := range cases {
		v := DecideServiceDeployment(c.sd, c.newer, c.source)
		if v.Done != c.done || (c.done && v.Code != c.code) {
			t.Errorf("%s: got done=%v code=%d (%s), want done=%v code=%d", c.name, v.Done, v.Code, v.Note, c.done, c.code)
		}
		if v.Done && v.Code == exitcode.OK && (c.sd == nil || c.sd.Status != ecstypes.ServiceDeploymentStatusSuccessful) {
			t.Errorf("%s: success without SUCCESSFUL", c.name)
		}
	}
}
