package ecssim

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Service deployment statuses ("ServiceDeployment" in the Amazon ECS API
// Reference).
const (
	sdPending            = "PENDING"
	sdInProgress         = "IN_PROGRESS"
	sdSuccessful         = "SUCCESSFUL"
	sdStopRequested      = "STOP_REQUESTED"
	sdStopped            = "STOPPED"
	sdRollbackRequested  = "ROLLBACK_REQUESTED"
	sdRollbackInProgress = "ROLLBACK_IN_PROGRESS"
	sdRollbackSuccessful = "ROLLBACK_SUCCESSFUL"
	sdRollbackFailed     = "ROLLBACK_FAILED"
)

func terminal(status string) bool {
	switch status {
	case sdSuccessful, sdStopped, sdRollbackSuccessful, sdRollbackFailed:
		return true
	}
	return false
}

// blueGreenStages are the lifecycle stages a BLUE_GREEN service deployment
// goes through ("ServiceDeployment" lifecycleStage; RECONCILE_SERVICE only
// happens with more than one ACTIVE revision and is not modelled).
var blueGreenStages = []string{"PRE_SCALE_UP", "SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT",
	"PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"}

// threshold is the circuit breaker's failure threshold: 0.5 × the desired
// count, at least 3 and at most 200 ("ServiceDeploymentCircuitBreaker",
// threshold, which points to "How the Amazon ECS deployment circuit breaker
// detects failures"; "ThresholdConfiguration": the default is
// BOUNDED_PERCENT 50). Rounding the half up is the simulator's choice: the
// pages do not say.
func threshold(desired int) int {
	t := int(math.Ceil(0.5 * float64(desired)))
	return min(200, max(3, t))
}

// fateOf is what a deployment's tasks do under scenario sc (rollback: the
// deployment is a rollback).
func fateOf(sc Scenario, rollback bool) fate {
	if rollback {
		if sc == RollbackFails {
			return fateExit1
		}
		return fateHealthy
	}
	switch sc {
	case Rollback, Fail, RollbackFails:
		return fateExit1
	case Stuck:
		return fateUnplaceable
	case WrongDigest:
		return fateWrongDigest
	}
	return fateHealthy
}

// updateService forwards the update to moto (which records the service's new
// revision) and starts a deployment when the revision changes or
// forceNewDeployment is set, as ECS does.
func (s *Sim) updateService(body []byte, hdr http.Header) (int, []byte, error) {
	var in struct {
		ForceNewDeployment      bool           `json:"forceNewDeployment"`
		DeploymentConfiguration map[string]any `json:"deploymentConfiguration"`
	}
	_ = json.Unmarshal(body, &in)
	if b := s.refusal(body); b != nil {
		s.count("ecs:UpdateService", false)
		return http.StatusBadRequest, b, nil
	}
	code, _, out, err := s.forward(http.MethodPost, "/", body, withTarget(hdr, "UpdateService"))
	if err != nil || code != 200 {
		s.count("ecs:UpdateService", false)
		return code, out, err
	}
	var resp map[string]any
	if err := json.Unmarshal(out, &resp); err != nil {
		return 0, nil, fmt.Errorf("moto's UpdateService answer: %w", err)
	}
	m, _ := resp["service"].(map[string]any)
	if m == nil {
		return code, out, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["ecs:UpdateService"]++
	st := s.state(m, hdr)
	if in.DeploymentConfiguration != nil {
		s.overlay(st, in.DeploymentConfiguration)
	}
	td, _ := m["taskDefinition"].(string)
	if d, ok := m["desiredCount"].(float64); ok {
		st.desired = int(d)
	}
	f := s.faults[st.cluster+"/"+st.name]
	prim := st.primary()
	if prim == nil || prim.TD != td || in.ForceNewDeployment {
		if f != nil && f.LagReads > 0 {
			// Eventual consistency: the next reads still answer from before
			// this update ("Request throttling for the Amazon ECS API" and
			// the API reference's note that reads are eventually consistent).
			st.lag, st.lagPrev, st.lagDeps = f.LagReads, st.current, nil
			for _, d := range st.deps {
				st.lagDeps = append(st.lagDeps, *d)
			}
			f.LagReads = 0
		}
		s.startDeployment(st, td, "")
		if st.lag > 0 {
			st.lagRec = st.current
		}
	}
	// The write's own answer shows the update (the lag is for the reads
	// that follow it).
	lag := st.lag
	st.lag = 0
	resp["service"] = s.render(st, m)
	st.lag = lag
	b, err := json.Marshal(resp)
	if f != nil && f.UpdateApplied500 {
		// The update is applied, the answer lost: ECS's ServerException
		// (HTTP 500, "Common Errors"/the operation's Errors section).
		f.UpdateApplied500 = false
		return http.StatusInternalServerError, []byte(`{"__type":"ServerException","message":"Internal server error (ecssim fault UpdateApplied500: the update was applied)"}`), nil
	}
	return code, b, err
}

// startDeployment starts a deployment of td on st: a new service revision,
// a new PRIMARY deployment and its service deployment record (PENDING until
// the clock's next step). Deployments still in progress are replaced: their
// records end STOPPED, naming the one that replaced them. who names an
// outside actor ("" for the caller's own UpdateService).
func (s *Sim) startDeployment(st *service, td, who string) *deployment {
	now := s.now()
	var source []*revision
	seen := map[*revision]bool{}
	for _, d := range st.deps {
		if d.rev != nil && !seen[d.rev] && (d.Running > 0 || d.Status == "PRIMARY") {
			seen[d.rev] = true
			source = append(source, d.rev)
		}
	}
	rev := s.newRevision(st, td, now)
	d := &deployment{ID: newID(), Status: "PRIMARY", TD: td, Rollout: "IN_PROGRESS", Desired: st.desired, Created: now, Updated: now,
		rev: rev, fate: fateOf(st.scenario, false)}
	d.Reason = "ECS deployment " + d.ID + " in progress."
	rec := s.newRecord(st, d, source, now)
	for _, o := range st.deps {
		if o.Status == "PRIMARY" {
			o.Status = "ACTIVE"
		}
		o.done = true
		if r := o.rec; r != nil && !terminal(r.Status) {
			r.Status, r.Stopped, r.Updated = sdStopped, now, now
			r.Reason = "a newer service deployment " + rec.Arn + " replaced this one (UpdateService" + who + ")"
			if r.cbStatus == "MONITORING" {
				r.cbStatus = "MONITORING_COMPLETE"
			}
		}
	}
	st.deps = append([]*deployment{d}, st.deps...)
	st.current = rec
	st.following, st.failedAt, st.failedModel = true, time.Time{}, false
	mode := fmt.Sprintf("EMULATED (scenario %s); no container runs", st.scenario)
	if s.opts.Engine != nil {
		mode = "run on Docker (ecssim engine): tasks' fates are their containers' real exits"
	}
	if !st.modeSaid { // once per service: every rollout of it is played alike
		st.event(now, fmt.Sprintf("ecssim: this rollout of %s is %s.", lastPart(td), mode))
		st.modeSaid = true
	}
	s.logf("ecssim: %s/%s: deployment %s of %s started%s (%s)", st.cluster, st.name, d.ID, lastPart(td), who, mode)
	return d
}

// newRecord makes the service deployment record of d.
func (s *Sim) newRecord(st *service, d *deployment, source []*revision, at time.Time) *record {
	cfg := s.effective(st)
	r := &record{Arn: fmt.Sprintf("%sservice-deployment/%s/%s/%s", st.arnPrefix(), st.cluster, st.name, sdID()),
		st: st, Status: sdPending, Created: at, Updated: at, source: source, target: d.rev, dep: d,
		threshold: threshold(d.Desired), cfg: s.configJSON(st, cfg), cbStatus: "DISABLED", alarmStatus: "DISABLED", alarms: cfg.Alarms}
	if cfg.CircuitBreaker {
		r.cbStatus = "MONITORING"
	}
	if len(cfg.Alarms) > 0 {
		r.alarmStatus = "MONITORING"
	}
	d.rec = r
	s.records[r.Arn] = r
	return r
}

func withTarget(hdr http.Header, op string) http.Header {
	h := hdr.Clone()
	h.Set("X-Amz-Target", ecsPrefix+op)
	return h
}

// tick advances every deployment in progress one step.
func (s *Sim) tick(now time.Time) {
	keys := make([]string, 0, len(s.svcs))
	for k := range s.svcs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		st := s.svcs[k]
		// A deployment started during this step (a rollback) plays from the
		// next one.
		deps := append([]*deployment(nil), st.deps...)
		if r := st.current; r != nil && r.stopAsked {
			r.stopAsked = false
			s.stopRollback(st, r, now)
		}
		for _, d := range deps {
			if !d.done && !d.frozen {
				s.play(st, d, now)
			}
		}
	}
}

// play advances deployment d one step. ROLLING ("Deploy Amazon ECS services
// by replacing tasks"): start the desired tasks; a task that stays up one
// step (Polls-1) is healthy; when all are healthy the older deployments'
// tasks stop and the deployment is COMPLETED. BLUE_GREEN (and, in this
// model, LINEAR and CANARY): one lifecycle stage per step, SCALE_UP until
// the new revision's tasks are healthy beside the old ones, BAKE_TIME for
// bakeTimeInMinutes (× Options.MinuteIs), CLEAN_UP stops the old tasks.
func (s *Sim) play(st *service, d *deployment, now time.Time) {
	cfg := s.effective(st)
	rec := d.rec
	d.Updated = now
	if rec != nil {
		rec.Updated = now
	}
	staged := cfg.Strategy != "" && cfg.Strategy != "ROLLING" && !d.rollback
	if !d.started {
		d.started = true
		if rec != nil && rec.Status == sdPending {
			rec.Status, rec.Started = sdInProgress, now
		}
		if staged {
			d.stage, d.stageAt = 0, now
			rec.Stage = blueGreenStages[0]
			return
		}
		s.launch(st, d, d.Desired, now)
		if s.opts.Polls > 1 {
			return
		}
	}
	if !staged {
		if s.reap(st, d, now, cfg) && d.Rollout == "IN_PROGRESS" {
			s.complete(st, d, now)
		}
		return
	}
	next := func() {
		d.stage++
		d.stageAt = now
		rec.Stage = blueGreenStages[d.stage]
	}
	switch blueGreenStages[d.stage] {
	case "PRE_SCALE_UP":
		next()
		s.launch(st, d, d.Desired, now)
	case "SCALE_UP":
		if s.reap(st, d, now, cfg) && d.Rollout == "IN_PROGRESS" {
			next()
		}
	case "TEST_TRAFFIC_SHIFT":
		s.reap(st, d, now, cfg)
		d.testWeight = 100
		next()
	case "PRODUCTION_TRAFFIC_SHIFT":
		s.reap(st, d, now, cfg)
		if s.shift(d, cfg, now) {
			next()
		}
	case "BAKE_TIME":
		s.reap(st, d, now, cfg)
		if now.Sub(d.stageAt) >= time.Duration(cfg.BakeTimeMinutes)*s.opts.MinuteIs {
			next()
		}
	case "CLEAN_UP":
		s.complete(st, d, now)
	default:
		s.reap(st, d, now, cfg)
		next()
	}
}

// shift moves production traffic to d's revision, one step per call as the
// strategy says, and reports when all of it is there. BLUE_GREEN: all at
// once. CANARY: CanaryPercent, then after CanaryBakeMinutes the rest.
// LINEAR: StepPercent more every StepBakeMinutes; no bake after 100%.
func (s *Sim) shift(d *deployment, cfg ServiceConfig, now time.Time) bool {
	minutes := func(m int32) time.Duration { return time.Duration(m) * s.opts.MinuteIs }
	switch cfg.Strategy {
	case "CANARY":
		if d.weight == 0 {
			d.weight, d.stepAt = min(100, cfg.CanaryPercent), now
		} else if now.Sub(d.stepAt) >= minutes(cfg.CanaryBakeMinutes) {
			d.weight = 100
		}
	case "LINEAR":
		if d.weight == 0 || now.Sub(d.stepAt) >= minutes(cfg.StepBakeMinutes) {
			d.weight, d.stepAt = min(100, d.weight+cfg.StepPercent), now
		}
	default:
		d.weight = 100
	}
	return d.weight >= 100
}

// launch starts up to n tasks of d through the runner, as many as the
// deployment's minimum and maximum percent let it (room), and returns how
// many it started.
func (s *Sim) launch(st *service, d *deployment, n int, now time.Time) int {
	n = s.room(st, d, n, now)
	if n <= 0 {
		return 0
	}
	if d.fate == fateUnplaceable {
		if !d.placeMsg {
			d.placeMsg = true
			st.event(now, "was unable to place a task because no container instance met all of its requirements. Reason: No Container Instances were found in your cluster.")
		}
		return 0
	}
	var ids []string
	for i := 0; i < n; i++ {
		t := s.newTask(st, d)
		if err := s.runner.start(t); err != nil {
			s.stopTask(t, "CannotStartContainerError: "+err.Error(), "TaskFailedToStart", nil)
			s.failed(d, 1, now)
			continue
		}
		ids = append(ids, "(task "+lastPart(t.Arn)+")")
	}
	if len(ids) > 0 {
		st.event(now, fmt.Sprintf("has started %d tasks: %s.", len(ids), strings.Join(ids, " ")))
	}
	return len(ids)
}

// room is how many of n new tasks of a rolling deployment d may start now
// ("Deploy Amazon ECS services by replacing tasks": maximumPercent caps the
// tasks RUNNING or PENDING during the deployment, minimumHealthyPercent is
// the floor of RUNNING tasks below which ECS does not stop old tasks). When
// the cap leaves no room, old tasks are stopped first, down to that floor:
// with 100/0 and one task, ECS stops the old task before it starts the new
// one, so two copies never run together. Blue/green deployments (not
// their rollbacks) run both revisions in full and are not paced.
func (s *Sim) room(st *service, d *deployment, n int, now time.Time) int {
	cfg := s.effective(st)
	if (cfg.Strategy != "ROLLING" && !d.rollback) || n <= 0 {
		return n
	}
	maxTotal := d.Desired * int(cfg.MaximumPercent) / 100
	minHealthy := int(math.Ceil(float64(d.Desired) * float64(cfg.MinimumHealthyPercent) / 100))
	var old []*task
	for _, o := range st.deps {
		if o != d {
			old = append(old, s.tasksOf(o)...)
		}
	}
	mine := s.tasksOf(d)
	healthy := 0
	for _, t := range mine {
		if t.Last == "RUNNING" {
			healthy++
		}
	}
	allowed := maxTotal - len(old) - len(mine)
	if allowed >= n {
		return n
	}
	stop := min(n-max(allowed, 0), len(old), len(old)+healthy-minHealthy)
	if stop > 0 {
		var ids []string
		for _, t := range old[:stop] {
			s.stopTask(t, "Scaling activity initiated by (deployment "+d.ID+")", "ServiceSchedulerInitiated", nil)
			ids = append(ids, "(task "+lastPart(t.Arn)+")")
		}
		for _, o := range st.deps {
			if o != d {
				s.recount(o)
			}
		}
		st.event(now, fmt.Sprintf("has stopped %d running tasks: %s.", len(ids), strings.Join(ids, " ")))
		allowed += stop
	}
	return max(0, min(n, allowed))
}

// recount sets d's pending and running counts from its tasks.
func (s *Sim) recount(d *deployment) {
	d.Pending, d.Running = 0, 0
	for _, t := range s.tasksOf(d) {
		if t.Last == "RUNNING" {
			d.Running++
		} else {
			d.Pending++
		}
	}
}

// reap looks at d's tasks: an essential container's exit stops the task and
// counts a failed task; a task up long enough is RUNNING. The circuit breaker
// trips at its threshold; otherwise ECS replaces stopped tasks. It reports
// whether all desired tasks are running.
func (s *Sim) reap(st *service, d *deployment, now time.Time, cfg ServiceConfig) bool {
	healthyAfter := max(0, s.opts.Polls-1)
	var stopped []string
	for _, t := range s.tasksOf(d) {
		t.age++
		if ex := s.runner.poll(t); ex != nil {
			s.stopTask(t, ex.Reason, ex.StopCode, ex)
			stopped = append(stopped, "(task "+lastPart(t.Arn)+")")
			continue
		}
		if t.age >= healthyAfter && s.runner.running(t) {
			t.Last = "RUNNING"
		}
	}
	if len(stopped) > 0 {
		s.failed(d, len(stopped), now)
		st.event(now, fmt.Sprintf("has stopped %d running tasks: %s.", len(stopped), strings.Join(stopped, " ")))
	}
	s.recount(d)
	live := s.tasksOf(d)
	if rec := d.rec; rec != nil {
		rec.failures = rec.dep.Fail
		if rec.rb != nil {
			rec.failures += rec.rb.Fail
		}
	}
	if cfg.CircuitBreaker && d.Rollout == "IN_PROGRESS" && d.Fail >= threshold(d.Desired) {
		s.trip(st, d, now, cfg)
		return false
	}
	if (d.Rollout == "IN_PROGRESS" || d.retry) && len(live) < d.Desired {
		d.Pending += s.launch(st, d, d.Desired-len(live), now)
	}
	return d.Running == d.Desired && d.Pending == 0
}

// complete ends d successfully: the older deployments' tasks stop and they
// leave the list; the record is SUCCESSFUL (ROLLBACK_SUCCESSFUL for a
// rollback deployment).
func (s *Sim) complete(st *service, d *deployment, now time.Time) {
	d.Rollout, d.Reason, d.done = "COMPLETED", "ECS deployment "+d.ID+" completed.", true
	var stopped []string
	for _, o := range st.deps {
		if o == d {
			continue
		}
		for _, t := range s.tasksOf(o) {
			s.stopTask(t, "Scaling activity initiated by (deployment "+d.ID+")", "ServiceSchedulerInitiated", nil)
			stopped = append(stopped, "(task "+lastPart(t.Arn)+")")
		}
	}
	if len(stopped) > 0 {
		st.event(now, fmt.Sprintf("has stopped %d running tasks: %s.", len(stopped), strings.Join(stopped, " ")))
	}
	st.deps = []*deployment{d}
	st.lastGood = d.rev
	if rec := d.rec; rec != nil {
		rec.Finished, rec.Updated = now, now
		if d == rec.rb {
			rec.Status = sdRollbackSuccessful
			rec.Reason = "rolled back to " + rec.rbRev.Arn + " (" + lastPart(rec.rbRev.TD) + "): " + rec.rbReason
		} else {
			rec.Status = sdSuccessful
		}
		if rec.cbStatus == "MONITORING" {
			rec.cbStatus = "MONITORING_COMPLETE"
		}
		if rec.alarmStatus == "MONITORING" {
			rec.alarmStatus = "MONITORING_COMPLETE"
		}
	}
	st.event(now, fmt.Sprintf("(deployment %s) deployment completed.", d.ID))
	st.event(now, "has reached a steady state.")
	s.logf("ecssim: %s/%s: deployment %s COMPLETED", st.cluster, st.name, d.ID)
}

// trip is the circuit breaker reaching its threshold on d
// ("API_DeploymentCircuitBreaker"): with rollback on, ECS rolls back to the
// last deployment that completed; with it off the deployment is FAILED,
// stays PRIMARY and ECS keeps trying to start tasks, and the service
// deployment is STOPPED ("ServiceDeployment", stoppedAt). A rollback
// deployment that trips ends the record ROLLBACK_FAILED.
func (s *Sim) trip(st *service, d *deployment, now time.Time, cfg ServiceConfig) {
	d.Rollout, d.Reason = "FAILED", "ECS deployment circuit breaker: tasks failed to start."
	st.event(now, fmt.Sprintf("(deployment %s) deployment failed: tasks failed to start.", d.ID))
	st.failedModel = true
	rec := d.rec
	if rec != nil {
		rec.cbStatus = "TRIGGERED"
	}
	s.logf("ecssim: %s/%s: deployment %s FAILED (circuit breaker, %d failed tasks)", st.cluster, st.name, d.ID, d.Fail)
	switch {
	case rec == nil:
		d.retry = true
	case d.rollback:
		rec.Status, rec.Finished = sdRollbackFailed, now
		rec.Reason = "the rollback deployment " + d.ID + " to " + lastPart(d.TD) + " failed: tasks failed to start"
		d.retry = true
	case cfg.Rollback && st.lastGood != nil && st.lastGood != d.rev:
		s.rollbackTo(st, d, st.lastGood, "circuit breaker: tasks failed to start", now)
	default:
		rec.Status, rec.Stopped = sdStopped, now
		rec.Reason = "ECS deployment circuit breaker: tasks failed to start (rollback is off; the deployment stays PRIMARY and ECS keeps trying)"
		d.retry = true
	}
}

// rollbackTo starts the rollback deployment of rec's failed (or stopped)
// deployment d to revision rev: a new PRIMARY deployment that plays as any
// other; the record is ROLLBACK_IN_PROGRESS meanwhile. moto's service is put
// on rev's task definition too, as ECS's is.
func (s *Sim) rollbackTo(st *service, d *deployment, rev *revision, reason string, now time.Time) {
	rec := d.rec
	r := &deployment{ID: newID(), Status: "PRIMARY", TD: rev.TD, Rollout: "IN_PROGRESS", Desired: d.Desired, Created: now, Updated: now,
		rev: rev, rec: rec, fate: fateOf(st.scenario, true), rollback: true}
	r.Reason = "ECS deployment " + r.ID + " in progress."
	for _, t := range s.tasksOf(d) {
		s.stopTask(t, "Scaling activity initiated by (deployment "+r.ID+")", "ServiceSchedulerInitiated", nil)
	}
	d.Status, d.done, d.Pending, d.Running = "ACTIVE", true, 0, 0
	rec.Status, rec.rbReason, rec.rbRev, rec.rbAt, rec.rb, rec.Updated = sdRollbackInProgress, reason, rev, now, r, now
	st.deps = append([]*deployment{r}, st.deps...)
	st.event(now, fmt.Sprintf("rolling back to deployment %s.", r.ID))
	if code, out, err := s.ecsCall("UpdateService", map[string]any{"cluster": st.cluster, "service": st.name, "taskDefinition": rev.TD}, st.hdr); err != nil || code != 200 {
		s.logf("ecssim: %s/%s: putting moto's service back on %s: %v %s", st.cluster, st.name, rev.TD, err, out)
	}
}

// stopRollback carries out StopServiceDeployment(ROLLBACK) on rec
// ("Stopping Amazon ECS service deployments": ROLLBACK_REQUESTED, then the
// rollback to the previous service revision starts), whether or not the
// service's circuit breaker or its rollback option is on
// (API_StopServiceDeployment). The rollback deployment plays as any other:
// on a service without a breaker, if its tasks fail too ECS keeps trying
// and the record stays ROLLBACK_IN_PROGRESS (a caller's own threshold ends
// that); with a breaker it trips and the record is ROLLBACK_FAILED.
func (s *Sim) stopRollback(st *service, rec *record, now time.Time) {
	d := rec.dep
	if len(rec.source) == 0 {
		rec.Status, rec.Stopped, rec.Reason = sdStopped, now, "no previous service revision to roll back to"
		d.done = true
		return
	}
	d.Rollout, d.Reason = "FAILED", "ECS deployment "+d.ID+" rolled back: StopServiceDeployment (ROLLBACK) was requested."
	d.frozen = false
	st.failedModel = true
	s.rollbackTo(st, d, rec.source[0], "StopServiceDeployment (ROLLBACK) was requested", now)
}

// describeServices forwards to moto and lays the simulator's deployments,
// events, counts and deployment settings over each service it knows.
func (s *Sim) describeServices(body []byte, hdr http.Header) (int, []byte, error) {
	code, _, out, err := s.forward(http.MethodPost, "/", body, withTarget(hdr, "DescribeServices"))
	if err != nil || code != 200 {
		s.count("ecs:DescribeServices", false)
		return code, out, err
	}
	var resp map[string]any
	if err := json.Unmarshal(out, &resp); err != nil {
		return 0, nil, fmt.Errorf("moto's DescribeServices answer: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	svcs, _ := resp["services"].([]any)
	var seen []*service
	for i, x := range svcs {
		m, _ := x.(map[string]any)
		if m == nil || m["status"] != "ACTIVE" {
			continue
		}
		st := s.state(m, hdr)
		svcs[i] = s.render(st, m)
		seen = append(seen, st)
	}
	s.read("ecs:DescribeServices", seen...)
	b, err := json.Marshal(resp)
	return code, b, err
}

// pollRound is how close together the reads of one poll come.
const pollRound = 50 * time.Millisecond

// read counts one read of services sts (a poll while one of them is being
// followed; the read that shows the end is the last poll), marks a failure
// shown, and uses up one lagging read of each.
func (s *Sim) read(op string, sts ...*service) {
	poll := false
	for _, st := range sts {
		if st.lag > 0 {
			st.lag--
			if st.following {
				poll = true
			}
			continue
		}
		if st.failedModel && st.failedAt.IsZero() {
			st.failedAt = s.now()
		}
		switch {
		case st.following:
			poll = true
			if st.current == nil || terminal(st.current.Status) {
				st.following, st.endedAt = false, time.Now()
			}
		case time.Since(st.endedAt) < pollRound:
			// The other reads of the poll that saw the end (a follower reads
			// the service deployment and the service back to back).
			poll = true
		}
	}
	if poll {
		s.polls[op]++
	} else {
		s.calls[op]++
	}
}

// render lays the simulator's state over moto's service shape m.
func (s *Sim) render(st *service, m map[string]any) map[string]any {
	deps, cur := st.deps, st.current
	if st.lag > 0 {
		deps, cur = nil, st.lagPrev
		for i := range st.lagDeps {
			deps = append(deps, &st.lagDeps[i])
		}
	}
	var out []any
	running, pending := 0, 0
	for _, d := range deps {
		out = append(out, map[string]any{
			"id": d.ID, "status": d.Status, "taskDefinition": d.TD,
			"desiredCount": d.Desired, "pendingCount": d.Pending, "runningCount": d.Running, "failedTasks": d.Fail,
			"createdAt": epoch(d.Created), "updatedAt": epoch(d.Updated),
			"launchType": m["launchType"], "rolloutState": d.Rollout, "rolloutStateReason": d.Reason,
		})
		running += d.Running
		pending += d.Pending
		if d.Status == "PRIMARY" {
			m["taskDefinition"] = d.TD
		}
	}
	var evs []any
	for _, e := range st.events {
		if st.lag > 0 && st.lagRec != nil && e.At.After(st.lagRec.Created.Add(-time.Millisecond)) {
			continue
		}
		evs = append(evs, map[string]any{"id": e.ID, "createdAt": epoch(e.At), "message": e.Message})
	}
	if evs == nil {
		evs = []any{}
	}
	m["deployments"] = out
	m["events"] = evs
	m["runningCount"] = running
	m["pendingCount"] = pending
	cfg := s.effective(st)
	m["deploymentController"] = map[string]any{"type": cfg.controller()}
	m["deploymentConfiguration"] = s.configJSON(st, cfg)
	if cur != nil {
		m["currentServiceDeployment"] = cur.Arn
	}
	if s.sparse(st) {
		drop(m, sparseService)
		for _, d := range out {
			drop(d.(map[string]any), sparseDeployment)
		}
	}
	return m
}

// listTasks answers for the services the simulator plays; others go to moto.
func (s *Sim) listTasks(body []byte, hdr http.Header) (int, []byte, error) {
	var in struct {
		Cluster       string `json:"cluster"`
		ServiceName   string `json:"serviceName"`
		DesiredStatus string `json:"desiredStatus"`
	}
	_ = json.Unmarshal(body, &in)
	s.mu.Lock()
	st := s.svcs[clusterName(in.Cluster)+"/"+lastPart(in.ServiceName)]
	s.calls["ecs:ListTasks"]++
	if st == nil {
		s.mu.Unlock()
		code, _, out, err := s.forward(http.MethodPost, "/", body, withTarget(hdr, "ListTasks"))
		return code, out, err
	}
	defer s.mu.Unlock()
	want := in.DesiredStatus
	if want == "" {
		want = "RUNNING"
	}
	var ts []*task
	for _, t := range s.tasks {
		if t.ClusterArn == st.clusterArn && t.Desired == want && t.Svc == st.cluster+"/"+st.name {
			ts = append(ts, t)
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Started.After(ts[j].Started) })
	arns := []string{}
	for _, t := range ts {
		arns = append(arns, t.Arn)
	}
	b, err := json.Marshal(map[string]any{"taskArns": arns})
	return 200, b, err
}

// describeTasks answers for the simulator's tasks; others go to moto.
func (s *Sim) describeTasks(body []byte, hdr http.Header) (int, []byte, error) {
	var in struct {
		Tasks []string `json:"tasks"`
	}
	_ = json.Unmarshal(body, &in)
	s.mu.Lock()
	s.calls["ecs:DescribeTasks"]++
	var out []any
	for _, arn := range in.Tasks {
		t := s.tasks[arn]
		if t == nil {
			s.mu.Unlock()
			code, _, b, err := s.forward(http.MethodPost, "/", body, withTarget(hdr, "DescribeTasks"))
			return code, b, err
		}
		var cs []any
		for _, c := range t.Containers {
			cm := map[string]any{"name": c.Name, "image": c.Image, "imageDigest": c.Digest, "lastStatus": t.Last, "taskArn": t.Arn}
			if c.ExitCode != nil {
				cm["exitCode"] = *c.ExitCode
			}
			if c.Reason != "" {
				cm["reason"] = c.Reason
			}
			cs = append(cs, cm)
		}
		tm := map[string]any{"taskArn": t.Arn, "clusterArn": t.ClusterArn, "taskDefinitionArn": t.TD, "startedBy": t.Deployment,
			"desiredStatus": t.Desired, "lastStatus": t.Last, "containers": cs, "startedAt": epoch(t.Started), "launchType": "EC2"}
		if t.Last == "STOPPED" {
			tm["stoppedReason"] = t.StoppedReason
			tm["stopCode"] = t.StopCode
			tm["stoppedAt"] = epoch(t.Stopped)
		}
		out = append(out, tm)
	}
	s.mu.Unlock()
	if out == nil {
		out = []any{}
	}
	b, err := json.Marshal(map[string]any{"tasks": out, "failures": []any{}})
	return 200, b, err
}
