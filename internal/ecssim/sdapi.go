package ecssim

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// record is one service deployment ("ServiceDeployment" in the Amazon ECS
// API Reference; "View service history using Amazon ECS service
// deployments"). A circuit-breaker or requested rollback belongs to the
// record of the deployment it rolls back.
type record struct {
	Arn                                          string
	st                                           *service
	Status, Reason, Stage                        string
	Created, Started, Finished, Stopped, Updated time.Time
	source                                       []*revision
	target                                       *revision
	rbReason                                     string
	rbRev                                        *revision
	rbAt                                         time.Time
	cbStatus                                     string
	failures, threshold                          int
	alarmStatus                                  string
	alarms, triggered                            []string
	cfg                                          map[string]any // deploymentConfiguration when it started
	dep, rb                                      *deployment    // the target deployment, its rollback
	stopAsked                                    bool           // StopServiceDeployment: the clock starts the rollback
	// failAt: when each failed task of the target deployment was counted;
	// stopAt: when StopServiceDeployment was accepted (StopTiming).
	failAt []time.Time
	stopAt time.Time
}

// failed counts n failed tasks of d at now: its failedTasks ("Deployment":
// a task the scheduler cannot launch, that does not reach RUNNING, or that
// fails a health check and is stopped), timed on its record.
func (s *Sim) failed(d *deployment, n int, now time.Time) {
	d.Fail += n
	if r := d.rec; r != nil && !d.rollback {
		for i := 0; i < n; i++ {
			r.failAt = append(r.failAt, now)
		}
	}
}

// StopTiming says, for the newest service deployment of cluster/service
// that counted at least n failed tasks and was then ended by a caller
// (StopServiceDeployment, or an UpdateService that replaced it), when its
// n-th failed task was counted and when the call that ended it came. Zero
// times when there is none. The benchmark of failure_threshold reads it.
func (s *Sim) StopTiming(cluster, service string, n int) (reached, stopped time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *record
	for _, r := range s.records {
		if r.st.cluster != cluster || r.st.name != service || len(r.failAt) < n || n < 1 || r.stopAt.IsZero() && r.Stopped.IsZero() {
			continue
		}
		if best == nil || r.Created.After(best.Created) {
			best = r
		}
	}
	if best == nil {
		return time.Time{}, time.Time{}
	}
	stopped = best.stopAt
	if stopped.IsZero() {
		stopped = best.Stopped
	}
	return best.failAt[n-1], stopped
}

// revision is a service revision ("ServiceRevision"): what one deployment
// runs.
type revision struct {
	Arn, TD    string
	Created    time.Time
	st         *service
	Containers []container
}

func (c ServiceConfig) controller() string {
	if c.Controller == "" {
		return "ECS"
	}
	return strings.ToUpper(c.Controller)
}

// effective is the service's deployment settings: Configure's, overlaid by
// what UpdateService sent, the breaker from the scenario unless configured,
// percentages from moto's when unset.
func (s *Sim) effective(st *service) ServiceConfig {
	key := st.cluster + "/" + st.name
	c := s.cfg[key]
	if !s.configured[key] {
		c.CircuitBreaker, c.Rollback = true, st.scenario != Fail
	}
	if c.Strategy == "" {
		c.Strategy = "ROLLING"
	}
	c.Strategy = strings.ToUpper(c.Strategy)
	if c.CanaryPercent <= 0 {
		c.CanaryPercent = 5
	}
	if c.StepPercent <= 0 {
		c.StepPercent = 10
	}
	num := func(k string) (int32, bool) {
		v, ok := st.motoCfg[k].(float64)
		return int32(v), ok
	}
	if c.MaximumPercent == 0 {
		c.MaximumPercent = 200
		if v, ok := num("maximumPercent"); ok {
			c.MaximumPercent = v
		}
	}
	if c.MinimumHealthyPercent == 0 {
		c.MinimumHealthyPercent = 100
		if v, ok := num("minimumHealthyPercent"); ok {
			c.MinimumHealthyPercent = v
		}
	}
	return c
}

// overlay honours a deploymentConfiguration sent with UpdateService.
func (s *Sim) overlay(st *service, dc map[string]any) {
	key := st.cluster + "/" + st.name
	c := s.cfg[key]
	if v, ok := dc["maximumPercent"].(float64); ok {
		c.MaximumPercent = int32(v)
	}
	if v, ok := dc["minimumHealthyPercent"].(float64); ok {
		c.MinimumHealthyPercent = int32(v)
	}
	if v, ok := dc["strategy"].(string); ok {
		c.Strategy = v
	}
	if v, ok := dc["bakeTimeInMinutes"].(float64); ok {
		c.BakeTimeMinutes = int32(v)
	}
	if cc, ok := dc["canaryConfiguration"].(map[string]any); ok {
		c.CanaryPercent, _ = cc["canaryPercent"].(float64)
		c.CanaryBakeMinutes = 10
		if v, ok := cc["canaryBakeTimeInMinutes"].(float64); ok {
			c.CanaryBakeMinutes = int32(v)
		}
	}
	if lc, ok := dc["linearConfiguration"].(map[string]any); ok {
		c.StepPercent, _ = lc["stepPercent"].(float64)
		c.StepBakeMinutes = 6
		if v, ok := lc["stepBakeTimeInMinutes"].(float64); ok {
			c.StepBakeMinutes = int32(v)
		}
	}
	if cb, ok := dc["deploymentCircuitBreaker"].(map[string]any); ok {
		if !s.configured[key] {
			c.CircuitBreaker, c.Rollback = true, st.scenario != Fail
		}
		c.CircuitBreaker, _ = cb["enable"].(bool)
		c.Rollback, _ = cb["rollback"].(bool)
		s.configured[key] = true
	}
	if al, ok := dc["alarms"].(map[string]any); ok {
		c.Alarms = nil
		if names, ok := al["alarmNames"].([]any); ok {
			for _, n := range names {
				if n, ok := n.(string); ok {
					c.Alarms = append(c.Alarms, n)
				}
			}
		}
		if en, _ := al["enable"].(bool); !en {
			c.Alarms = nil
		}
		c.AlarmRollback, _ = al["rollback"].(bool)
	}
	s.cfg[key] = c
}

// configJSON is the service's deploymentConfiguration ("DeploymentConfiguration").
func (s *Sim) configJSON(st *service, c ServiceConfig) map[string]any {
	alarms := c.Alarms
	if alarms == nil {
		alarms = []string{}
	}
	m := map[string]any{
		"deploymentCircuitBreaker": map[string]any{"enable": c.CircuitBreaker, "rollback": c.Rollback},
		"maximumPercent":           c.MaximumPercent, "minimumHealthyPercent": c.MinimumHealthyPercent,
		"alarms":   map[string]any{"alarmNames": alarms, "enable": len(c.Alarms) > 0, "rollback": c.AlarmRollback},
		"strategy": c.Strategy, "bakeTimeInMinutes": c.BakeTimeMinutes,
	}
	switch c.Strategy {
	case "CANARY":
		m["canaryConfiguration"] = map[string]any{"canaryPercent": c.CanaryPercent, "canaryBakeTimeInMinutes": c.CanaryBakeMinutes}
	case "LINEAR":
		m["linearConfiguration"] = map[string]any{"stepPercent": c.StepPercent, "stepBakeTimeInMinutes": c.StepBakeMinutes}
	}
	return m
}

// sdID is a service deployment id as ECS prints them (e.g. NCWGC2ZR-taawPAYrIaU5).
func sdID() string {
	const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
	b := make([]byte, 21)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = abc[int(b[i])%len(abc)]
	}
	return string(b)
}

func apiError(code int, typ, msg string) (int, []byte, error) {
	b, err := json.Marshal(map[string]string{"__type": typ, "message": msg})
	return code, b, err
}

// denied answers as ECS does to an account without the permission
// ("Permissions required for viewing Amazon ECS service deployments").
func (s *Sim) denied(key, op string) (int, []byte, error, bool) {
	if !s.cfg[key].NoDeploymentAPI {
		return 0, nil, nil, false
	}
	s.calls["ecs:"+op]++
	code, b, err := apiError(http.StatusBadRequest, "AccessDeniedException",
		fmt.Sprintf("User: arn:aws:sts::123456789012:assumed-role/deployer/ctjdeploy is not authorized to perform: ecs:%s on resource: %s because no identity-based policy allows the ecs:%s action", op, key, op))
	return code, b, err, true
}

// lookup returns the state of cluster/service, asking moto about a service
// the simulator has not seen (nil if moto has no such ACTIVE service).
func (s *Sim) lookup(cluster, service string, hdr http.Header) *service {
	if st := s.svcs[clusterName(cluster)+"/"+lastPart(service)]; st != nil {
		return st
	}
	code, out, err := s.ecsCall("DescribeServices", map[string]any{"cluster": cluster, "services": []string{service}}, hdr)
	if err != nil || code != 200 {
		return nil
	}
	var resp struct {
		Services []map[string]any `json:"services"`
	}
	if json.Unmarshal(out, &resp) != nil {
		return nil
	}
	for _, m := range resp.Services {
		if m["status"] == "ACTIVE" {
			return s.state(m, hdr)
		}
	}
	return nil
}

// hidden: a lagging read does not see rec yet.
func hidden(rec *record) bool { return rec.st.lag > 0 && rec == rec.st.lagRec }

func (s *Sim) revisionSummary(st *service, rev *revision) map[string]any {
	req, run, pend := 0, 0, 0
	for _, d := range st.deps {
		if d.rev == rev && d.Status != "INACTIVE" {
			run += d.Running
			pend += d.Pending
			if !d.done || d.Status == "PRIMARY" {
				req += d.Desired
			}
		}
	}
	return map[string]any{"arn": rev.Arn, "requestedTaskCount": req, "runningTaskCount": run, "pendingTaskCount": pend}
}

func (s *Sim) recordJSON(r *record) map[string]any {
	st := r.st
	m := map[string]any{"serviceDeploymentArn": r.Arn, "serviceArn": st.arn, "clusterArn": st.clusterArn,
		"createdAt": epoch(r.Created), "updatedAt": epoch(r.Updated), "status": r.Status, "deploymentConfiguration": r.cfg,
		"targetServiceRevision":    s.revisionSummary(st, r.target),
		"deploymentCircuitBreaker": map[string]any{"status": r.cbStatus, "failureCount": r.failures, "threshold": r.threshold},
	}
	alarms := r.alarms
	if alarms == nil {
		alarms = []string{}
	}
	trig := r.triggered
	if trig == nil {
		trig = []string{}
	}
	m["alarms"] = map[string]any{"status": r.alarmStatus, "alarmNames": alarms, "triggeredAlarmNames": trig}
	src := []any{}
	for _, rev := range r.source {
		src = append(src, s.revisionSummary(st, rev))
	}
	m["sourceServiceRevisions"] = src
	if strategy, _ := r.cfg["strategy"].(string); strategy != "ROLLING" && r.dep != nil {
		// Traffic weights of a blue/green, linear or canary deployment.
		w, tw := r.dep.weight, r.dep.testWeight
		tgt := m["targetServiceRevision"].(map[string]any)
		tgt["requestedProductionTrafficWeight"], tgt["requestedTestTrafficWeight"] = w, tw
		for _, x := range src {
			x.(map[string]any)["requestedProductionTrafficWeight"] = 100 - w
			x.(map[string]any)["requestedTestTrafficWeight"] = 100 - tw
		}
	}
	for k, t := range map[string]time.Time{"startedAt": r.Started, "finishedAt": r.Finished, "stoppedAt": r.Stopped} {
		if !t.IsZero() {
			m[k] = epoch(t)
		}
	}
	if r.Reason != "" {
		m["statusReason"] = r.Reason
	}
	if r.Stage != "" {
		m["lifecycleStage"] = r.Stage
	}
	if r.rbRev != nil {
		m["rollback"] = map[string]any{"reason": r.rbReason, "serviceRevisionArn": r.rbRev.Arn, "startedAt": epoch(r.rbAt)}
	}
	return m
}

// listServiceDeployments answers ListServiceDeployments: the service's
// records, newest first, filtered by status and createdAt.
func (s *Sim) listServiceDeployments(body []byte, hdr http.Header) (int, []byte, error) {
	var in struct {
		Cluster   string   `json:"cluster"`
		Service   string   `json:"service"`
		Status    []string `json:"status"`
		CreatedAt *struct {
			After  *float64 `json:"after"`
			Before *float64 `json:"before"`
		} `json:"createdAt"`
		MaxResults int `json:"maxResults"`
	}
	_ = json.Unmarshal(body, &in)
	s.mu.Lock()
	defer s.mu.Unlock()
	if code, b, err, no := s.denied(clusterName(in.Cluster)+"/"+lastPart(in.Service), "ListServiceDeployments"); no {
		return code, b, err
	}
	st := s.lookup(in.Cluster, in.Service, hdr)
	if st == nil {
		s.calls["ecs:ListServiceDeployments"]++
		return apiError(http.StatusBadRequest, "ServiceNotFoundException", "Service not found.")
	}
	want := map[string]bool{}
	for _, x := range in.Status {
		want[x] = true
	}
	var recs []*record
	for _, r := range s.records {
		if r.st != st || hidden(r) || (len(want) > 0 && !want[r.Status]) {
			continue
		}
		if c := in.CreatedAt; c != nil {
			if c.After != nil && epoch(r.Created) < *c.After || c.Before != nil && epoch(r.Created) > *c.Before {
				continue
			}
		}
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Created.After(recs[j].Created) })
	max := in.MaxResults
	if max <= 0 || max > 100 {
		max = 20
	}
	if len(recs) > max {
		recs = recs[:max]
	}
	out := []any{}
	for _, r := range recs {
		b := map[string]any{"serviceDeploymentArn": r.Arn, "serviceArn": st.arn, "clusterArn": st.clusterArn,
			"createdAt": epoch(r.Created), "status": r.Status, "targetServiceRevisionArn": r.target.Arn}
		if !r.Started.IsZero() {
			b["startedAt"] = epoch(r.Started)
		}
		if !r.Finished.IsZero() {
			b["finishedAt"] = epoch(r.Finished)
		}
		if r.Reason != "" {
			b["statusReason"] = r.Reason
		}
		out = append(out, b)
	}
	s.read("ecs:ListServiceDeployments", st)
	b, err := json.Marshal(map[string]any{"serviceDeployments": out})
	return 200, b, err
}

// describeServiceDeployments answers DescribeServiceDeployments (at most 20
// ARNs; an unknown one is a failure with reason MISSING).
func (s *Sim) describeServiceDeployments(body []byte, hdr http.Header) (int, []byte, error) {
	var in struct {
		Arns []string `json:"serviceDeploymentArns"`
	}
	_ = json.Unmarshal(body, &in)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(in.Arns) > 0 {
		if code, b, err, no := s.denied(arnServiceKey(in.Arns[0]), "DescribeServiceDeployments"); no {
			return code, b, err
		}
	}
	if len(in.Arns) == 0 || len(in.Arns) > 20 {
		s.calls["ecs:DescribeServiceDeployments"]++
		return apiError(http.StatusBadRequest, "InvalidParameterException", "serviceDeploymentArns must hold 1 to 20 ARNs.")
	}
	sds, failures := []any{}, []any{}
	var sts []*service
	seen := map[*service]bool{}
	for _, arn := range in.Arns {
		r := s.records[arn]
		if r != nil && !seen[r.st] {
			seen[r.st] = true
			sts = append(sts, r.st)
		}
		if r == nil || hidden(r) {
			failures = append(failures, map[string]any{"arn": arn, "reason": "MISSING"})
			continue
		}
		rec := s.recordJSON(r)
		if s.sparse(r.st) {
			drop(rec, sparseRecord)
		}
		sds = append(sds, rec)
	}
	s.read("ecs:DescribeServiceDeployments", sts...)
	b, err := json.Marshal(map[string]any{"serviceDeployments": sds, "failures": failures})
	return 200, b, err
}

// stopServiceDeployment answers StopServiceDeployment ("Stopping Amazon ECS
// service deployments"; API_StopServiceDeployment: ROLLBACK "rolls back the
// service deployment to the previous service revision. You can use this
// option even if you didn't configure the service deployment for the
// rollback option", so the service's breaker and rollback settings play no
// part here): ROLLBACK on a PENDING or IN_PROGRESS deployment
// moves it to ROLLBACK_REQUESTED and the clock starts the rollback to the
// source revision; on one already stopping or rolling back it goes on; on
// a finished one ECS answers ConflictException; an unknown ARN is
// ServiceDeploymentNotFoundException (the operation's Errors section).
func (s *Sim) stopServiceDeployment(body []byte, hdr http.Header) (int, []byte, error) {
	var in struct {
		Arn      string `json:"serviceDeploymentArn"`
		StopType string `json:"stopType"`
	}
	_ = json.Unmarshal(body, &in)
	s.mu.Lock()
	defer s.mu.Unlock()
	if code, b, err, no := s.denied(arnServiceKey(in.Arn), "StopServiceDeployment"); no {
		return code, b, err
	}
	s.calls["ecs:StopServiceDeployment"]++
	if in.StopType != "" && in.StopType != "ROLLBACK" {
		return apiError(http.StatusBadRequest, "InvalidParameterException", "stopType "+in.StopType+" is not supported: the valid value is ROLLBACK.")
	}
	r := s.records[in.Arn]
	if r == nil {
		return apiError(http.StatusBadRequest, "ServiceDeploymentNotFoundException", "The service deployment "+in.Arn+" does not exist. Use ListServiceDeployments to find the service deployment ARNs.")
	}
	switch r.Status {
	case sdPending, sdInProgress:
		r.Status, r.Updated, r.stopAsked, r.stopAt = sdRollbackRequested, s.now(), true, s.now()
		r.st.following = true
		s.logf("ecssim: %s/%s: StopServiceDeployment(ROLLBACK) on %s", r.st.cluster, r.st.name, r.Arn)
	case sdStopRequested, sdRollbackRequested, sdRollbackInProgress:
	default:
		return apiError(http.StatusBadRequest, "ConflictException", "The service deployment "+in.Arn+" is "+r.Status+" and cannot be stopped.")
	}
	b, err := json.Marshal(map[string]any{"serviceDeploymentArn": r.Arn})
	return 200, b, err
}

// describeServiceRevisions answers DescribeServiceRevisions: each
// revision's task definition and container images with their digests.
func (s *Sim) describeServiceRevisions(body []byte, hdr http.Header) (int, []byte, error) {
	var in struct {
		Arns []string `json:"serviceRevisionArns"`
	}
	_ = json.Unmarshal(body, &in)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(in.Arns) > 0 {
		if code, b, err, no := s.denied(arnServiceKey(in.Arns[0]), "DescribeServiceRevisions"); no {
			return code, b, err
		}
	}
	s.calls["ecs:DescribeServiceRevisions"]++
	if len(in.Arns) == 0 || len(in.Arns) > 20 {
		return apiError(http.StatusBadRequest, "InvalidParameterException", "serviceRevisionArns must hold 1 to 20 ARNs.")
	}
	revs, failures := []any{}, []any{}
	for _, arn := range in.Arns {
		r := s.revisions[arn]
		if r == nil {
			failures = append(failures, map[string]any{"arn": arn, "reason": "MISSING"})
			continue
		}
		imgs := []any{}
		for _, c := range r.Containers {
			imgs = append(imgs, map[string]any{"containerName": c.Name, "image": c.Image, "imageDigest": c.Digest})
		}
		revs = append(revs, map[string]any{"serviceRevisionArn": r.Arn, "serviceArn": r.st.arn, "clusterArn": r.st.clusterArn,
			"taskDefinition": r.TD, "createdAt": epoch(r.Created), "containerImages": imgs, "launchType": r.st.launchType})
	}
	b, err := json.Marshal(map[string]any{"serviceRevisions": revs, "failures": failures})
	return 200, b, err
}
