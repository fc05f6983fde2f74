package ecssim

import (
	"encoding/json"
	"fmt"
	"strings"
)

// RollbackFails: the circuit breaker rolls back and the rollback deployment
// fails too (API_DeploymentCircuitBreaker: the rollback is itself a
// deployment, "to the last deployment that completed successfully").
const RollbackFails Scenario = "rollback-fails"

// ServiceConfig is a service's deployment settings as the simulator honours
// them (Configure). Controller: CODE_DEPLOY and EXTERNAL refuse a task
// definition update. Strategy: ROLLING, or BLUE_GREEN with its lifecycle
// stages and BakeTimeMinutes, LINEAR and CANARY with their production
// traffic steps in PRODUCTION_TRAFFIC_SHIFT (the revisions'
// requestedProductionTrafficWeight). CircuitBreaker and Rollback: once
// Configure is called they replace the scenario's (every scenario has the
// breaker on; rollback is on except for Fail). Alarms are listed in the
// records (status MONITORING) and fire on TriggerAlarm; AlarmRollback says
// whether ECS then rolls back. Minimum/MaximumPercent are
// reported only (0: moto's, else 100/200). NoDeploymentAPI: the service
// deployment calls answer AccessDeniedException.
type ServiceConfig struct {
	Controller                            string // "ECS" (default), "CODE_DEPLOY", "EXTERNAL"
	Strategy                              string // "ROLLING" (default), "BLUE_GREEN", "LINEAR", "CANARY"
	BakeTimeMinutes                       int32
	CircuitBreaker, Rollback              bool
	Alarms                                []string
	AlarmRollback                         bool
	MinimumHealthyPercent, MaximumPercent int32
	NoDeploymentAPI                       bool
	// CANARY: CanaryPercent of production traffic (0: ECS's default 5.0)
	// for CanaryBakeMinutes, then the rest ("CanaryConfiguration"). LINEAR:
	// StepPercent more (0: the default 10.0) every StepBakeMinutes until
	// 100 ("LinearConfiguration"). Bake minutes of 0 are 0; ECS's defaults
	// (10 and 6) apply when UpdateService sends the configuration without
	// them.
	CanaryPercent, StepPercent         float64
	CanaryBakeMinutes, StepBakeMinutes int32
}

// Faults are injected failures of one service's calls.
type Faults struct {
	// LagReads: the first LagReads reads (DescribeServices,
	// ListServiceDeployments, DescribeServiceDeployments) after the next
	// UpdateService that starts a deployment answer from before it: the old
	// deployments, taskDefinition and currentServiceDeployment, no new
	// record listed, its ARN MISSING. Used up by that update.
	LagReads int
	// Throttle: the next Throttle calls (of ThrottleOps, if set: names such
	// as "DescribeServices") answer 400 ThrottlingException "Rate exceeded".
	Throttle    int
	ThrottleOps []string
	// UpdateApplied500: the next UpdateService is applied but answered 500
	// ServerException.
	UpdateApplied500 bool
	// Sparse: every DescribeServices and DescribeServiceDeployments answer
	// leaves out the fields the API reference does not promise on every
	// answer (every member of Deployment, Service and ServiceDeployment is
	// optional in the ECS API Reference's data types): a deployment's
	// rolloutState, rolloutStateReason, failedTasks, createdAt, updatedAt;
	// the service's currentServiceDeployment and events (not its
	// deploymentConfiguration: without it the data guard assumes ECS's
	// default maximumPercent of 200 and refuses, as it should); a record's circuit breaker, alarms,
	// lifecycleStage, statusReason and source revisions.
	Sparse bool
}

// sparseDeployment, sparseService and sparseRecord are the fields Sparse
// leaves out.
var (
	sparseDeployment = []string{"rolloutState", "rolloutStateReason", "failedTasks", "createdAt", "updatedAt"}
	sparseService    = []string{"currentServiceDeployment", "events"}
	sparseRecord     = []string{"deploymentCircuitBreaker", "alarms", "lifecycleStage", "statusReason", "sourceServiceRevisions", "deploymentConfiguration"}
)

func drop(m map[string]any, keys []string) {
	for _, k := range keys {
		delete(m, k)
	}
}

// sparse says whether st's answers leave optional fields out.
func (s *Sim) sparse(st *service) bool {
	f := s.faults[st.cluster+"/"+st.name]
	return f != nil && f.Sparse
}

// Configure sets a service's deployment settings.
func (s *Sim) Configure(cluster, service string, c ServiceConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg[cluster+"/"+service] = c
	s.configured[cluster+"/"+service] = true
}

// SetFaults sets the faults of one service's calls.
func (s *Sim) SetFaults(cluster, service string, f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[cluster+"/"+service] = &f
}

// Current returns the task definition ARN the service's PRIMARY deployment
// runs ("" if the simulator has not seen the service).
func (s *Sim) Current(cluster, service string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.svcs[cluster+"/"+service]; st != nil {
		if p := st.primary(); p != nil {
			return p.TD
		}
	}
	return ""
}

// CurrentServiceDeployment returns the ARN of the service's current service
// deployment as the model has it (ignoring lagging reads; "" if the
// simulator has not seen the service).
func (s *Sim) CurrentServiceDeployment(cluster, service string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.svcs[cluster+"/"+service]; st != nil && st.current != nil {
		return st.current.Arn
	}
	return ""
}

// TriggerAlarm puts CloudWatch alarm name, one of the service's
// deployment alarms (ServiceConfig.Alarms), into ALARM while its current
// deployment is in progress ("API_DeploymentAlarms": ECS sets the
// deployment to failed and, with rollback, rolls back to the last completed
// deployment; without it the service deployment is STOPPED). It fails when
// the alarm is not one of the service's or no deployment is in progress.
func (s *Sim) TriggerAlarm(cluster, service, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.svcs[cluster+"/"+service]
	if st == nil || st.current == nil || terminal(st.current.Status) || st.current.dep.Rollout != "IN_PROGRESS" {
		return fmt.Errorf("ecssim: alarm %s on %s/%s: no deployment in progress", name, cluster, service)
	}
	cfg := s.effective(st)
	found := false
	for _, a := range cfg.Alarms {
		found = found || a == name
	}
	if !found {
		return fmt.Errorf("ecssim: alarm %s is not one of %s/%s's deployment alarms %v (ServiceConfig.Alarms)", name, cluster, service, cfg.Alarms)
	}
	rec, d, now := st.current, st.current.dep, s.now()
	rec.alarmStatus, rec.triggered = "TRIGGERED", append(rec.triggered, name)
	d.Rollout, d.Reason = "FAILED", "ECS deployment alarms: "+name+" is in ALARM."
	st.event(now, fmt.Sprintf("(deployment %s) deployment failed: alarm detected.", d.ID))
	st.failedModel = true
	if cfg.AlarmRollback && st.lastGood != nil && st.lastGood != d.rev {
		s.rollbackTo(st, d, st.lastGood, "alarm "+name+" is in ALARM", now)
		return nil
	}
	rec.Status, rec.Stopped, rec.Updated = sdStopped, now, now
	rec.Reason = "deployment alarm " + name + " is in ALARM (rollback is off; the deployment stays PRIMARY)"
	return nil
}

// OutsideUpdate is another actor's UpdateService (terraform apply, say)
// pointing the service at taskDefinitionARN: moto's service moves there and
// a new PRIMARY deployment starts with its own service deployment record, as
// with any UpdateService; a deployment still in progress is replaced (its
// record STOPPED, naming the new one).
func (s *Sim) OutsideUpdate(cluster, service, taskDefinitionARN string) error {
	s.mu.Lock()
	st := s.svcs[cluster+"/"+service]
	s.mu.Unlock()
	if st == nil {
		return fmt.Errorf("ecssim: outside update of %s/%s: the simulator has not seen the service yet (describe it first)", cluster, service)
	}
	code, out, err := s.ecsCall("UpdateService", map[string]any{"cluster": cluster, "service": service, "taskDefinition": taskDefinitionARN}, st.hdr)
	if err != nil {
		return fmt.Errorf("ecssim: outside update of %s/%s: %w", cluster, service, err)
	}
	if code != 200 {
		return fmt.Errorf("ecssim: outside update of %s/%s: moto answered %d: %s", cluster, service, code, out)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startDeployment(st, taskDefinitionARN, " by another actor")
	return nil
}

// throttled reports whether this call is to be answered with a throttle
// ("Request throttling for the Amazon ECS API": 400 ThrottlingException,
// "Rate exceeded"), consuming one from the service's Throttle fault.
func (s *Sim) throttled(op string, body []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults[serviceKey(body)]
	if f == nil || f.Throttle <= 0 {
		return false
	}
	if len(f.ThrottleOps) > 0 {
		hit := false
		for _, o := range f.ThrottleOps {
			if o == op || "ecs:"+o == op {
				hit = true
			}
		}
		if !hit {
			return false
		}
	}
	f.Throttle--
	return true
}

// refusal answers UpdateService with a new task definition on a service
// whose deployment controller is not ECS, as ECS does
// ("API_UpdateService": CODE_DEPLOY services deploy through CodeDeploy,
// EXTERNAL ones through task sets).
func (s *Sim) refusal(body []byte) []byte {
	var in struct {
		Cluster        string `json:"cluster"`
		Service        string `json:"service"`
		TaskDefinition string `json:"taskDefinition"`
	}
	_ = json.Unmarshal(body, &in)
	if in.TaskDefinition == "" {
		return nil
	}
	s.mu.Lock()
	c := s.cfg[clusterName(in.Cluster)+"/"+lastPart(in.Service)]
	s.mu.Unlock()
	msg := ""
	switch strings.ToUpper(c.Controller) {
	case "CODE_DEPLOY":
		msg = "Unable to update task definition on services with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment."
	case "EXTERNAL":
		msg = "Unable to update task definition on services with a EXTERNAL deployment controller. Use CreateTaskSet to create a new task set."
	default:
		return nil
	}
	b, _ := json.Marshal(map[string]string{"__type": "InvalidParameterException", "message": msg})
	return b
}

// serviceKey is the cluster/service a call is about: its cluster and
// service(s) parameters, or the first service deployment or revision ARN.
func serviceKey(body []byte) string {
	var in struct {
		Cluster               string   `json:"cluster"`
		Service               string   `json:"service"`
		Services              []string `json:"services"`
		ServiceDeploymentArn  string   `json:"serviceDeploymentArn"`
		ServiceDeploymentArns []string `json:"serviceDeploymentArns"`
		ServiceRevisionArns   []string `json:"serviceRevisionArns"`
	}
	_ = json.Unmarshal(body, &in)
	svc := in.Service
	if svc == "" && len(in.Services) > 0 {
		svc = in.Services[0]
	}
	if svc != "" {
		return clusterName(in.Cluster) + "/" + lastPart(svc)
	}
	arn := in.ServiceDeploymentArn
	if arn == "" && len(in.ServiceDeploymentArns) > 0 {
		arn = in.ServiceDeploymentArns[0]
	}
	if arn == "" && len(in.ServiceRevisionArns) > 0 {
		arn = in.ServiceRevisionArns[0]
	}
	return arnServiceKey(arn)
}

// arnServiceKey is CLUSTER/SERVICE of
// arn:aws:ecs:R:A:service-deployment/CLUSTER/SERVICE/ID (or service-revision).
func arnServiceKey(arn string) string {
	_, res, ok := strings.Cut(arn, ":service-deployment/")
	if !ok {
		_, res, ok = strings.Cut(arn, ":service-revision/")
	}
	if !ok {
		return ""
	}
	parts := strings.Split(res, "/")
	if len(parts) < 3 {
		return ""
	}
	return parts[0] + "/" + parts[1]
}
