package rollout

import (
	"fmt"
	"strings"

	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// ServiceCheck is what the plan says about how a service deploys, before
// any build, push or register.
type ServiceCheck struct {
	// Refusal is the exit-2 error for a service ctjdeploy cannot deploy
	// truthfully (nil if it can).
	Refusal error
	// Warnings name settings that make a failing rollout end badly.
	Warnings []string
}

// CheckService judges the service's deployment controller and
// deploymentConfiguration (DescribeServices). Pure.
//
//   - deploymentController CODE_DEPLOY or EXTERNAL: refused. ECS rejects
//     UpdateService with a new task definition there ("UpdateService" in the
//     ECS API reference: "Unable to update task definition on services with a
//     CODE_DEPLOY deployment controller"; EXTERNAL deploys through task sets),
//     so images would be pushed and a revision registered for nothing.
//   - strategy BLUE_GREEN, LINEAR or CANARY (developer guide "Amazon ECS
//     blue/green deployments", "linear deployments", "canary deployments"):
//     refused. The new revision scales up beside the old one and both run
//     through the bake time: with a task-local postgres that is two servers
//     over one data directory, which the data guard exists to prevent, and
//     lifecycle hooks may wait for actions ctjdeploy does not take.
//     ROLLING (or none: the default) is followed.
//   - neither the circuit breaker nor alarms on ("How the Amazon ECS
//     deployment circuit breaker detects failures", "Deployment alarms"): ECS
//     never ends a failing rollout; Follow does at failure_threshold
//     (threshold.go), but only while it follows. Warned.
//   - failure detection on but rollback off: a failed deployment stays
//     PRIMARY, stage is left on the failed revision (exit 6). Warned.
func CheckService(env, service string, svc *ecstypes.Service) ServiceCheck {
	var c ServiceCheck
	if svc == nil {
		return c
	}
	if dc := svc.DeploymentController; dc != nil && dc.Type != "" && dc.Type != ecstypes.DeploymentControllerTypeEcs {
		how := "deploy it through CodeDeploy, or move the service to the ECS deployment controller (Terraform: deployment_controller { type = \"ECS\" })"
		if dc.Type == ecstypes.DeploymentControllerTypeExternal {
			how = "EXTERNAL services deploy through task sets (CreateTaskSet); move the service to the ECS deployment controller (Terraform: deployment_controller { type = \"ECS\" })"
		}
		c.Refusal = exitcode.Invalidf("service %s uses the %s deployment controller: ECS refuses a new task definition through UpdateService there, so ctjdeploy would push and register for nothing; %s. Nothing was built, pushed or registered.", service, dc.Type, how)
		return c
	}
	cfg := svc.DeploymentConfiguration
	if cfg == nil {
		cfg = &ecstypes.DeploymentConfiguration{}
	}
	switch cfg.Strategy {
	case "", ecstypes.DeploymentStrategyRolling:
	default:
		bake := ""
		if cfg.BakeTimeInMinutes != nil {
			bake = fmt.Sprintf(" (bake time %d min)", *cfg.BakeTimeInMinutes)
		}
		c.Refusal = exitcode.Invalidf("service %s deploys with the %s strategy%s: the new revision runs beside the old one until the bake time ends, two copies of every container (two postgres servers over one data directory for a task-local database), and lifecycle hooks may wait for an action; ctjdeploy follows ROLLING deployments only. Set deploymentConfiguration.strategy to ROLLING on the service (Terraform: deployment_configuration { strategy = \"ROLLING\" }). Nothing was built, pushed or registered.",
			service, cfg.Strategy, bake)
		return c
	}
	cb := cfg.DeploymentCircuitBreaker
	al := cfg.Alarms
	breaker := cb != nil && cb.Enable
	alarms := al != nil && al.Enable && len(al.AlarmNames) > 0
	switch {
	case !breaker && !alarms:
		c.Warnings = append(c.Warnings, fmt.Sprintf("service %s has neither the deployment circuit breaker nor deployment alarms on: ECS restarts failing tasks for as long as nobody stops the rollout; ctjdeploy stops it itself at failure_threshold failed tasks while it follows it (not with --no-wait, nor after an interrupt). Turn the circuit breaker on with rollback (Terraform: deployment_circuit_breaker { enable = true, rollback = true })", service))
	default:
		var off []string
		if breaker && !cb.Rollback {
			off = append(off, "the circuit breaker")
		}
		if alarms && !al.Rollback {
			off = append(off, "deployment alarms ("+strings.Join(al.AlarmNames, ", ")+")")
		}
		if len(off) > 0 {
			c.Warnings = append(c.Warnings, fmt.Sprintf("service %s: %s detect failures but do not roll back: a failed deployment leaves %s on the failed revision (exit 6). Set rollback = true", service, strings.Join(off, " and "), env))
		}
	}
	return c
}

// Strategy names the service's deployment strategy (ROLLING when unset).
func Strategy(svc *ecstypes.Service) string {
	if svc != nil && svc.DeploymentConfiguration != nil && svc.DeploymentConfiguration.Strategy != "" {
		return string(svc.DeploymentConfiguration.Strategy)
	}
	return string(ecstypes.DeploymentStrategyRolling)
}
