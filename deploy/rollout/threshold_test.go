package rollout

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func TestDecideThreshold(t *testing.T) {
	t.Parallel()
	none := &ecstypes.DeploymentConfiguration{DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: false, Rollback: false}}
	breaker := &ecstypes.DeploymentConfiguration{DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: true}}
	breakerNoRollback := &ecstypes.DeploymentConfiguration{DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true}}
	alarms := &ecstypes.DeploymentConfiguration{Alarms: &ecstypes.DeploymentAlarms{Enable: true, AlarmNames: []string{"5xx"}}}
	alarmsNoNames := &ecstypes.DeploymentConfiguration{Alarms: &ecstypes.DeploymentAlarms{Enable: true}}
	bare := &ecstypes.DeploymentConfiguration{} // ECS lists no breaker at all
	base := ThresholdObs{Threshold: 3, Failed: 3, Config: none, Phase: InProgress, CanStop: true, Source: tdOld}
	with := func(f func(*ThresholdObs)) ThresholdObs { o := base; f(&o); return o }
	tests := []struct {
		name string
		obs  ThresholdObs
		want ThresholdAction
		why  string // substring of the reason
	}{
		{"threshold reached on this poll: stop now", base, ThresholdStop, "3 tasks of the deployment failed (failure_threshold 3)"},
		{"above the threshold (several failed between two polls): stop", with(func(o *ThresholdObs) { o.Failed = 7 }), ThresholdStop, "7 tasks"},
		{"below the threshold: keep following", with(func(o *ThresholdObs) { o.Failed = 2 }), ThresholdNone, ""},
		{"no failure yet", with(func(o *ThresholdObs) { o.Failed = 0 }), ThresholdNone, ""},
		{"breaker present: never stop", with(func(o *ThresholdObs) { o.Config = breaker; o.Failed = 50 }), ThresholdNone, ""},
		{"breaker without rollback still watches: ECS fails it, never stop", with(func(o *ThresholdObs) { o.Config = breakerNoRollback }), ThresholdNone, ""},
		{"alarms watch: never stop", with(func(o *ThresholdObs) { o.Config = alarms }), ThresholdNone, ""},
		{"alarms enabled without names watch nothing: stop", with(func(o *ThresholdObs) { o.Config = alarmsNoNames }), ThresholdStop, ""},
		{"no breaker listed at all: stop", with(func(o *ThresholdObs) { o.Config = bare }), ThresholdStop, ""},
		{"configuration unknown: do not act", with(func(o *ThresholdObs) { o.Config = nil }), ThresholdNone, ""},
		{"already stopped: never twice", with(func(o *ThresholdObs) { o.Acted = true; o.Failed = 9 }), ThresholdNone, ""},
		{"ECS already rolling back: do not act", with(func(o *ThresholdObs) { o.RollingBack = true }), ThresholdNone, ""},
		{"deployment ended (NotRecovered): do not act", with(func(o *ThresholdObs) { o.Phase = NotRecovered }), ThresholdNone, ""},
		{"deployment completed: do not act", with(func(o *ThresholdObs) { o.Phase = Completed }), ThresholdNone, ""},
		{"threshold 0: off", with(func(o *ThresholdObs) { o.Threshold = 0 }), ThresholdNone, ""},
		{"threshold 1: the first failed task", with(func(o *ThresholdObs) { o.Threshold, o.Failed = 1, 1 }), ThresholdStop, ""},
		{"no service deployment API: UpdateService back", with(func(o *ThresholdObs) { o.CanStop = false }), ThresholdUpdate, ""},
		{"no API and no revision before: cannot act, says why", with(func(o *ThresholdObs) { o.CanStop, o.Source = false, "" }), ThresholdNone, "knows no revision to go back to"},
		{"API but no revision before: the stop still works (ECS knows the source)", with(func(o *ThresholdObs) { o.Source = "" }), ThresholdStop, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := DecideThreshold(tt.obs)
			if v.Action != tt.want {
				t.Fatalf("action %q, want %q (reason %q)", v.Action, tt.want, v.Reason)
			}
			if tt.want != ThresholdNone && v.Reason == "" || !strings.Contains(v.Reason, tt.why) {
				t.Errorf("reason %q lacks %q", v.Reason, tt.why)
			}
		})
	}
}

// afterAct: what a poll means once ctjdeploy has stopped the deployment or
// updated the service back.
func TestAfterAct(t *testing.T) {
	t.Parallel()
	const (
		inProg = ecstypes.DeploymentRolloutStateInProgress
		done   = ecstypes.DeploymentRolloutStateCompleted
		failed = ecstypes.DeploymentRolloutStateFailed
	)
	upd := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	actAt := upd.Add(10 * time.Second)
	at := func(d ecstypes.Deployment, t time.Time) ecstypes.Deployment { d.CreatedAt = aws.Time(t); return d }
	const rb = "ecs-svc/3333"
	why := "3 tasks of the deployment failed (failure_threshold 3) and neither a circuit breaker nor deployment alarms watch the service"
	stop := thresholdAct{how: ThresholdStop, why: why, target: tdOld, at: actAt}
	update := thresholdAct{how: ThresholdUpdate, why: why, target: tdOld, id: rb, at: actAt, seen: true}
	sd := func(s ecstypes.ServiceDeploymentStatus) *ecstypes.ServiceDeployment {
		return &ecstypes.ServiceDeployment{Status: s, Rollback: &ecstypes.Rollback{Reason: aws.String("StopServiceDeployment (ROLLBACK) was requested")}}
	}
	tests := []struct {
		name   string
		act    thresholdAct
		sd     *ecstypes.ServiceDeployment // nil: the service's deployments decide
		deps   []ecstypes.Deployment
		want   Phase
		reason string
	}{
		{"stop: ROLLBACK_IN_PROGRESS keeps following", stop, sd(ecstypes.ServiceDeploymentStatusRollbackInProgress), []ecstypes.Deployment{
			at(dep(rb, "PRIMARY", tdOld, inProg, "", 1, 1, 0, 0), actAt),
			at(dep(ours, "ACTIVE", tdNew, failed, "", 1, 0, 0, 3), upd),
		}, InProgress, "after ctjdeploy's stop"},
		{"stop: ROLLBACK_SUCCESSFUL is exit 3 naming what ctjdeploy did", stop, sd(ecstypes.ServiceDeploymentStatusRollbackSuccessful), []ecstypes.Deployment{
			at(dep(rb, "PRIMARY", tdOld, done, "", 1, 0, 1, 0), actAt),
		}, RolledBack, "ctjdeploy stopped it (StopServiceDeployment, stopType ROLLBACK)"},
		{"stop: ROLLBACK_FAILED is exit 6", stop, sd(ecstypes.ServiceDeploymentStatusRollbackFailed), []ecstypes.Deployment{
			at(dep(rb, "PRIMARY", tdOld, failed, "", 1, 0, 0, 3), actAt),
		}, NotRecovered, "ECS's rollback failed too"},
		{"stop: the rollback's own tasks reach the threshold: exit 6, no second stop", stop, sd(ecstypes.ServiceDeploymentStatusRollbackInProgress), []ecstypes.Deployment{
			at(dep(rb, "PRIMARY", tdOld, inProg, "", 1, 1, 0, 3), actAt),
			at(dep(ours, "ACTIVE", tdNew, failed, "", 1, 0, 0, 4), upd),
		}, NotRecovered, "fails too: 3 of its tasks failed"},
		{"stop, service view only: ECS's rollback deployment on the source revision is not a replacement", stop, nil, []ecstypes.Deployment{
			at(dep(rb, "PRIMARY", tdOld, "", "", 1, 0, 1, 0), actAt),
		}, RolledBack, "the rollback to stage:7 (deployment ecs-svc/3333) completed"},
		{"update: the rollback deployment running: keep following", update, nil, []ecstypes.Deployment{
			at(dep(rb, "PRIMARY", tdOld, "", "", 1, 1, 0, 0), actAt),
			at(dep(ours, "ACTIVE", tdNew, "", "", 1, 0, 0, 3), upd),
		}, InProgress, "rolling back to stage:7"},
		{"update: the rollback completed: exit 3", update, nil, []ecstypes.Deployment{
			at(dep(rb, "PRIMARY", tdOld, "", "", 1, 0, 1, 0), actAt),
		}, RolledBack, "ctjdeploy updated the service back to stage:7 (UpdateService; no service deployment API) and the rollback to stage:7 (deployment ecs-svc/3333) completed"},
		{"update: the rollback's tasks fail at the threshold: exit 6", update, nil, []ecstypes.Deployment{
			at(dep(rb, "PRIMARY", tdOld, "", "", 1, 1, 0, 3), actAt),
			at(dep(ours, "ACTIVE", tdNew, "", "", 1, 0, 0, 3), upd),
		}, NotRecovered, "fails too: 3 of its tasks failed"},
		{"update: someone else's deployment replaced the rollback: exit 1", update, nil, []ecstypes.Deployment{
			at(dep(other, "PRIMARY", "arn:aws:ecs:us-west-2:123456789012:task-definition/stage:9", "", "", 1, 1, 0, 0), actAt.Add(5*time.Second)),
			at(dep(rb, "ACTIVE", tdOld, "", "", 1, 0, 1, 0), actAt),
		}, Replaced, "the rollback was replaced"},
		{"too late: the stop was refused, ECS's verdict stands", thresholdAct{how: ThresholdNone}, sd(ecstypes.ServiceDeploymentStatusSuccessful), []ecstypes.Deployment{
			at(dep(ours, "PRIMARY", tdNew, "", "", 1, 0, 1, 3), upd),
		}, Completed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := Observation{ID: ours, TaskDefinition: tdNew, Source: tdOld, UpdatedAt: upd, Now: actAt.Add(20 * time.Second), Seen: true,
				Svc: ecstypes.Service{Deployments: tt.deps}}
			var st State
			if tt.sd != nil {
				st = DecideServiceDeployment(tt.sd, nil, obs)
			} else {
				st = evaluate(obs)
			}
			got := afterAct(st, obs, tt.act, 3, tt.sd != nil)
			if got.Phase != tt.want || !strings.Contains(got.Reason, tt.reason) {
				t.Fatalf("phase %s reason %q, want %s with %q", got.Phase, got.Reason, tt.want, tt.reason)
			}
			if got.Phase == RolledBack || got.Phase == NotRecovered {
				if !strings.Contains(got.Reason, why) || !strings.Contains(got.Reason, "ctjdeploy") {
					t.Errorf("a terminal reason must say why ctjdeploy acted: %q", got.Reason)
				}
			}
		})
	}
}
