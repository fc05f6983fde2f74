package rollout

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

func TestCheckService(t *testing.T) {
	t.Parallel()
	cfg := func(strategy ecstypes.DeploymentStrategy, breaker, rollback bool, alarms []string, alarmRollback bool) *ecstypes.DeploymentConfiguration {
		c := &ecstypes.DeploymentConfiguration{Strategy: strategy, MaximumPercent: aws.Int32(100), MinimumHealthyPercent: aws.Int32(0),
			DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: breaker, Rollback: rollback}}
		if alarms != nil {
			c.Alarms = &ecstypes.DeploymentAlarms{Enable: true, AlarmNames: alarms, Rollback: alarmRollback}
		}
		return c
	}
	cases := []struct {
		name    string
		ctl     ecstypes.DeploymentControllerType
		cfg     *ecstypes.DeploymentConfiguration
		refuse  string // substring of the refusal; "" none
		warning string // substring of a warning; "" none
	}{
		{"rolling with breaker and rollback: nothing to say", "ECS", cfg(ecstypes.DeploymentStrategyRolling, true, true, nil, false), "", ""},
		{"no controller, no strategy (defaults): breaker off warned", "", &ecstypes.DeploymentConfiguration{}, "", "ctjdeploy stops it itself at failure_threshold"},
		{"CODE_DEPLOY refused", ecstypes.DeploymentControllerTypeCodeDeploy, cfg("", true, true, nil, false), "CODE_DEPLOY deployment controller", ""},
		{"EXTERNAL refused", ecstypes.DeploymentControllerTypeExternal, nil, "task sets", ""},
		{"BLUE_GREEN refused", "ECS", func() *ecstypes.DeploymentConfiguration {
			c := cfg(ecstypes.DeploymentStrategyBlueGreen, true, true, nil, false)
			c.BakeTimeInMinutes = aws.Int32(15)
			return c
		}(), "BLUE_GREEN strategy (bake time 15 min)", ""},
		{"LINEAR refused", "ECS", cfg(ecstypes.DeploymentStrategyLinear, true, true, nil, false), "LINEAR", ""},
		{"CANARY refused", "ECS", cfg(ecstypes.DeploymentStrategyCanary, true, true, nil, false), "CANARY", ""},
		{"breaker without rollback warned", "ECS", cfg("", true, false, nil, false), "", "exit 6"},
		{"alarms only, with rollback: fine", "ECS", cfg("", false, false, []string{"stage-5xx"}, true), "", ""},
		{"alarms without rollback warned", "ECS", cfg("", false, false, []string{"stage-5xx"}, false), "", "deployment alarms (stage-5xx)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			svc := &ecstypes.Service{DeploymentConfiguration: c.cfg}
			if c.ctl != "" {
				svc.DeploymentController = &ecstypes.DeploymentController{Type: c.ctl}
			}
			got := CheckService("stage", "svc", svc)
			switch {
			case c.refuse == "" && got.Refusal != nil:
				t.Fatalf("refused: %v", got.Refusal)
			case c.refuse != "" && (got.Refusal == nil || !strings.Contains(got.Refusal.Error(), c.refuse) || exitcode.Of(got.Refusal) != exitcode.Invalid):
				t.Fatalf("refusal %v (exit %d), want exit 2 containing %q", got.Refusal, exitcode.Of(got.Refusal), c.refuse)
			}
			w := strings.Join(got.Warnings, "\n")
			if (c.warning == "") != (w == "") || !strings.Contains(w, c.warning) {
				t.Errorf("warnings %q, want %q", w, c.warning)
			}
		})
	}
}
