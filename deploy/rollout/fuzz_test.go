package rollout

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// FuzzDecide plays random answers (a service deployment status, the
// service's deployments in random states and order) through both decisions:
// neither may ever answer success unless ECS said so (SUCCESSFUL, or our
// deployment COMPLETED as PRIMARY), and neither may call ECS's rollback done
// while our deployment is PRIMARY.
func FuzzDecide(f *testing.F) {
	f.Add(uint8(0), uint8(1), uint8(2), uint8(0), uint8(3), false, int64(10))
	f.Add(uint8(5), uint8(2), uint8(1), uint8(1), uint8(0), true, int64(40))
	f.Fuzz(func(t *testing.T, sdStatus, oursRS, primRS, primWho, primTD uint8, seen bool, since int64) {
		statuses := ecstypes.ServiceDeploymentStatus("").Values()
		rss := []ecstypes.DeploymentRolloutState{"", ecstypes.DeploymentRolloutStateInProgress, ecstypes.DeploymentRolloutStateCompleted, ecstypes.DeploymentRolloutStateFailed}
		tds := []string{tdNew, tdOld, "arn:aws:ecs:us-west-2:123456789012:task-definition/stage:9"}
		upd := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
		var deps []ecstypes.Deployment
		oursStatus := "PRIMARY"
		if primWho%3 != 0 {
			oursStatus = "ACTIVE"
		}
		if primWho%3 != 2 { // 2: ours is not listed at all
			d := dep(ours, oursStatus, tdNew, rss[int(oursRS)%len(rss)], "", 1, 0, 1, 0)
			d.CreatedAt = aws.Time(upd)
			deps = append(deps, d)
		}
		if oursStatus != "PRIMARY" {
			d := dep(other, "PRIMARY", tds[int(primTD)%len(tds)], rss[int(primRS)%len(rss)], "", 1, 0, 1, 0)
			d.CreatedAt = aws.Time(upd.Add(time.Duration(int64(primTD)-1) * time.Second))
			deps = append(deps, d)
		}
		obs := Observation{ID: ours, TaskDefinition: tdNew, Source: tdOld, UpdatedAt: upd, Now: upd.Add(time.Duration(since%120) * time.Second),
			Seen: seen, Svc: ecstypes.Service{Deployments: deps}}
		st := evaluate(obs)
		if st.Phase == Completed && (st.Ours == nil || st.Primary != st.Ours || (st.Ours.RolloutState != ecstypes.DeploymentRolloutStateCompleted && st.Ours.RolloutState != "")) {
			t.Fatalf("evaluate answered success without our deployment COMPLETED as PRIMARY: %+v", st)
		}
		if st.Phase == RolledBack && st.Primary != nil && aws.ToString(st.Primary.Id) == ours {
			t.Fatalf("evaluate called a rollback done while ours is PRIMARY: %+v", st)
		}
		sd := &ecstypes.ServiceDeployment{Status: statuses[int(sdStatus)%len(statuses)]}
		v := DecideServiceDeployment(sd, nil, obs)
		if v.Phase == Completed && sd.Status != ecstypes.ServiceDeploymentStatusSuccessful {
			t.Fatalf("DecideServiceDeployment answered success for %s", sd.Status)
		}
		if v.Phase == RolledBack && (sd.Status != ecstypes.ServiceDeploymentStatusRollbackSuccessful || (v.Primary != nil && aws.ToString(v.Primary.TaskDefinition) == tdNew)) {
			t.Fatalf("DecideServiceDeployment answered rolled back for %s with PRIMARY %+v", sd.Status, v.Primary)
		}
	})
}
