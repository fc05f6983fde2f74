// Package ecssim is an ECS simulator for tests and the demo, in front of moto
// (which accepts UpdateService but never starts a task, never advances a
// rollout and has no service deployment API). It is a loopback HTTP server
// speaking the AWS JSON 1.1 protocol: point AWS_ENDPOINT_URL at it and every
// ECS, ECR and STS call goes to moto, except the ones it answers itself from
// its model: UpdateService, DescribeServices, ListTasks, DescribeTasks,
// ListServiceDeployments, DescribeServiceDeployments, StopServiceDeployment
// and DescribeServiceRevisions.
//
// What is modelled, and from which page (Amazon ECS API Reference and
// Developer Guide titles):
//
//   - Service deployments ("ServiceDeployment", "ServiceDeploymentBrief",
//     "ListServiceDeployments", "DescribeServiceDeployments", "View service
//     history using Amazon ECS service deployments"): every deployment has a
//     record PENDING → IN_PROGRESS → SUCCESSFUL, with source and target
//     service revisions and their task counts, the circuit breaker's
//     status/failureCount/threshold, alarms, deploymentConfiguration and
//     lifecycleStage; a rollback belongs to the record of the deployment it
//     rolls back (ROLLBACK_IN_PROGRESS → ROLLBACK_SUCCESSFUL or
//     ROLLBACK_FAILED) while DescribeServices shows a new PRIMARY deployment
//     of the old revision. Service revisions ("ServiceRevision",
//     "DescribeServiceRevisions") map to task definitions and images with
//     digests. "Service": currentServiceDeployment, deploymentController,
//     deploymentConfiguration.
//   - A clock (Options.Step) instead of poll counting: each step a
//     deployment starts its tasks, finds them healthy (or exited) and
//     completes: the older deployments' tasks stop, events "(service X) has
//     started 1 tasks: (task ID).", "(deployment ecs-svc/…) deployment
//     completed.", "has reached a steady state.". With
//     Options.ManualClock the clock does not run by itself: a test steps
//     the model (Advance), so that what it asserts does not depend on the
//     machine's speed.
//   - The circuit breaker ("API_DeploymentCircuitBreaker",
//     "ServiceDeploymentCircuitBreaker"): failed tasks ("Essential container
//     in task exited", stopCode EssentialContainerExited, exit 1) count
//     against max(3, min(200, ⌈0.5 × desired⌉)); at the threshold, with
//     rollback: a rollback deployment of the last completed revision; without
//     it: rolloutState FAILED, still PRIMARY, the record STOPPED
//     ("ServiceDeployment" stoppedAt) and ECS keeps starting tasks; breaker
//     off: tasks fail forever, IN_PROGRESS. Moto's service is put back on the
//     revision ECS runs after a rollback.
//   - StopServiceDeployment ("Stopping Amazon ECS service deployments"):
//     ROLLBACK on PENDING/IN_PROGRESS → ROLLBACK_REQUESTED, then a rollback to
//     the source revision; ConflictException on a finished deployment,
//     ServiceDeploymentNotFoundException on an unknown ARN.
//   - Tasks that cannot be placed raise no failedTasks (event "was unable to
//     place a task ..."; aws/copilot-cli#1879): only a timeout ends them.
//   - BLUE_GREEN ("ServiceDeployment" lifecycleStage; "DeploymentConfiguration"
//     bakeTimeInMinutes): one stage per step from PRE_SCALE_UP to CLEAN_UP,
//     both revisions running through SCALE_UP … BAKE_TIME, the bake time
//     counted in Options.MinuteIs units. LINEAR and CANARY ("Amazon ECS
//     canary deployments", "CanaryConfiguration", "LinearConfiguration")
//     shift production traffic in steps during PRODUCTION_TRAFFIC_SHIFT
//     (requestedProductionTrafficWeight). Lifecycle hooks are not modelled.
//   - CODE_DEPLOY and EXTERNAL controllers refuse a task definition update
//     ("UpdateService").
//   - Faults (SetFaults): reads lagging behind an update (eventual
//     consistency), ThrottlingException "Rate exceeded" ("Request throttling
//     for the Amazon ECS API"), an update applied but answered 500
//     ServerException; OutsideUpdate is someone else's UpdateService, which
//     replaces ours (our record STOPPED, naming the newer one). An account
//     without the service deployment permissions (ServiceConfig.NoDeploymentAPI)
//     gets AccessDeniedException.
//
// IAM (iam.go, docs/iam-on-the-stack.md): with a policy (Options.Policy,
// SetPolicy) every call is first evaluated against it, on the resource ARN
// the Service Authorization Reference names for its action, and a denied
// call gets the service's AccessDenied answer; iam:SimulatePrincipalPolicy
// is answered from the same policy.
//
// A task's fate is the scenario's (every task EMULATED, no container runs),
// unless Options.Engine is set: then tasks run on Docker (engine.go) and
// their real exits decide. Rolling deployments are paced by
// maximumPercent/minimumHealthyPercent ("Deploy Amazon ECS services by
// replacing tasks"): at 100/0 the old task stops before the new one starts.
// Deployment alarms fire only when a test says so (TriggerAlarm;
// "API_DeploymentAlarms"). Not modelled: lifecycle hooks and
// ContinueServiceDeployment, load balancers and
// health checks, task placement beyond "cannot place", desiredCount changes
// without a new deployment, crashes after a deployment completed.
package ecssim

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hackforla/ctjdeploy/internal/taskrun"
)

// Scenario is what the simulator makes of a deployment.
type Scenario string

const (
	// Success: the deployment completes after Polls DescribeServices.
	Success Scenario = "success"
	// Rollback: after Polls, the circuit breaker fails the deployment (tasks
	// stopped: essential container exited) and rolls back to the previous
	// deployment's revision.
	Rollback Scenario = "rollback"
	// Fail: after Polls the deployment is FAILED and stays PRIMARY (circuit
	// breaker without rollback).
	Fail Scenario = "fail"
	// Stuck: the deployment never leaves IN_PROGRESS (no task can be placed).
	Stuck Scenario = "stuck"
	// InProgress: the service already has a deployment in progress when
	// first seen (started by someone else); a new update then succeeds.
	InProgress Scenario = "in-progress"
	// WrongDigest: success, but the running tasks report another image digest
	// than the one pinned in the task definition.
	WrongDigest Scenario = "wrong-digest"
)

// Scenarios lists every scenario.
var Scenarios = []Scenario{Success, Rollback, Fail, Stuck, InProgress, WrongDigest, RollbackFails}

const ecsPrefix = "AmazonEC2ContainerServiceV20141113."

// Options configure a simulator.
type Options struct {
	Upstream string   // moto's URL, e.g. http://127.0.0.1:5056
	Scenario Scenario // default Success
	// Polls is how many clock steps a rollout takes (default 2: the first
	// step starts the tasks, the second finds them healthy and completes).
	// A failing task exits max(1, Polls-1) steps after it started.
	Polls int
	// Step is the model's clock period (default 150ms): every Step, each
	// deployment in progress advances one step.
	Step time.Duration
	// ManualClock stops the clock from running by itself: the model moves
	// only when Advance is called, one step at a time, synchronously, and
	// its time is a logical one (manualClock). For tests of the model,
	// which then step it instead of sleeping. Default (false): a
	// wall-clock ticker every Step (the CLI, the demo, the stack tests).
	ManualClock bool
	// MinuteIs is how long one of ECS's minutes lasts (bakeTimeInMinutes):
	// default 1s, so a bake time of 5 minutes takes 5s.
	MinuteIs time.Duration
	// Engine, if set, runs each task's containers for real on Docker
	// (engine.go): a task's fate is then its containers' real exits, not
	// the scenario's (the Stuck and WrongDigest scenarios still apply). nil:
	// every task is EMULATED.
	Engine *taskrun.Engine
	// Logf, if set, receives one line per emulated step.
	Logf func(format string, args ...any)
	// Policy, if set, is an IAM identity-based policy (JSON) every call is
	// evaluated against (iam.go; SetPolicy changes it later); Principal
	// is the identity its AccessDenied messages name (DefaultPrincipal).
	Policy    []byte
	Principal string
}

// Sim is the simulator; it is an http.Handler. Close stops its clock.
type Sim struct {
	opts       Options
	client     *http.Client
	runner     taskRunner
	mu         sync.Mutex
	svcs       map[string]*service // cluster/service
	over       map[string]Scenario // per-service scenario
	tasks      map[string]*task    // task ARN → task
	calls      map[string]int      // "ecs:UpdateService" → count
	polls      map[string]int      // calls that are polls (reads while a deployment is followed)
	cfg        map[string]ServiceConfig
	configured map[string]bool // Configure was called: its breaker settings replace the scenario's
	faults     map[string]*Faults
	records    map[string]*record // service deployment ARN → record
	revisions  map[string]*revision
	stop       chan struct{}
	closeOnce  sync.Once
	iam        iamState     // the IAM policy (iam.go)
	manual     *manualClock // Options.ManualClock; nil: the wall clock
}

type deployment struct {
	ID, Status, TD, Rollout, Reason string
	Desired, Pending, Running, Fail int
	Created, Updated                time.Time

	rev      *revision
	rec      *record // the service deployment this deployment belongs to
	fate     fate
	rollback bool // a rollback deployment (of rec)
	started  bool
	done     bool // no longer played (completed, rolled back, replaced)
	frozen   bool // someone else's rollout the simulator does not play (InProgress)
	retry    bool // FAILED without rollback: ECS keeps trying to start tasks
	stage    int  // index in stages (blue/green)
	stageAt  time.Time
	stepAt   time.Time // the last traffic step (linear, canary)
	// weight and testWeight: percent of production and test traffic on
	// this deployment's revision (blue/green, linear, canary).
	weight, testWeight float64
	placeMsg           bool
}

type event struct {
	ID      string
	At      time.Time
	Message string
}

type task struct {
	Arn, ClusterArn, TD, Deployment string
	Svc                             string // cluster/service
	Desired, Last                   string
	StoppedReason, StopCode         string
	Started, Stopped                time.Time
	Containers                      []container

	fate fate
	age  int // clock steps since it started
	dep  *deployment
}

type container struct {
	Name, Image, Digest string
	ExitCode            *int
	Reason              string

	// From the task definition, for a runner that starts it.
	essential           bool
	env                 map[string]string
	entryPoint, command []string
	ports               []int
	// awslogs: where its output goes (logConfiguration options).
	logGroup, logPrefix string
	// mountPoints, and the task definition's volumes they mount.
	mounts  []taskrun.MountSpec
	volumes []taskrun.VolumeSpec
}

type service struct {
	cluster, name, arn string
	clusterArn         string
	desired            int
	deps               []*deployment // newest first
	events             []event       // newest first
	scenario           Scenario
	failedAt           time.Time
	failedModel        bool // the model failed the latest deployment; failedAt is set by the read that shows it
	following          bool // a deployment is in progress: reads are polls
	hdr                http.Header
	lastGood           *revision // the revision of the last COMPLETED deployment
	current            *record   // currentServiceDeployment
	revSeq             int
	motoCfg            map[string]any // moto's deploymentConfiguration
	modeSaid           bool           // the event saying how rollouts are played was written
	launchType         any
	// LagReads: reads still answered from before the last update.
	endedAt time.Time // when the read that showed the followed deployment's end came
	lag     int
	lagDeps []deployment
	lagRec  *record
	lagPrev *record
}

// New returns a simulator forwarding to opts.Upstream, its clock running.
func New(opts Options) (*Sim, error) {
	if _, err := url.Parse(opts.Upstream); err != nil || opts.Upstream == "" {
		return nil, fmt.Errorf("ecssim: upstream %q is not a URL", opts.Upstream)
	}
	if opts.Scenario == "" {
		opts.Scenario = Success
	}
	if !valid(opts.Scenario) {
		return nil, fmt.Errorf("ecssim: unknown scenario %q (one of %v)", opts.Scenario, Scenarios)
	}
	if opts.Polls <= 0 {
		opts.Polls = 2
	}
	if opts.Step <= 0 {
		opts.Step = 150 * time.Millisecond
	}
	if opts.MinuteIs <= 0 {
		opts.MinuteIs = time.Second
	}
	s := &Sim{opts: opts, client: &http.Client{Timeout: 30 * time.Second},
		runner: emulated{failAfter: max(1, opts.Polls-1)},
		svcs:   map[string]*service{}, over: map[string]Scenario{}, tasks: map[string]*task{},
		calls: map[string]int{}, polls: map[string]int{}, cfg: map[string]ServiceConfig{}, configured: map[string]bool{},
		faults: map[string]*Faults{}, records: map[string]*record{}, revisions: map[string]*revision{},
		stop: make(chan struct{})}
	if opts.Engine != nil {
		s.runner = newDocker(opts.Engine)
	}
	if err := s.SetPolicy(opts.Policy); err != nil {
		return nil, err
	}
	if opts.ManualClock {
		s.manual = &manualClock{at: time.Now()}
	} else {
		go s.clock()
	}
	return s, nil
}

// Close stops the simulator's clock (deployments stop advancing) and, with
// an Engine, the tasks it started.
func (s *Sim) Close() {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.runner.close()
	})
}

func (s *Sim) clock() {
	t := time.NewTicker(s.opts.Step)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			// A tick delayed by a long call under the lock is followed by a
			// buffered one at once: skip it, so that every step lasts about
			// Step and each state is there to be read.
			if now.Sub(last) < s.opts.Step/2 {
				continue
			}
			s.mu.Lock()
			last = time.Now()
			s.tick(last)
			s.mu.Unlock()
		}
	}
}

// manualClock is the model's time under Options.ManualClock: it starts at
// New's wall time, moves Options.Step per Advance and 1 ms per reading, so
// that no two events share a timestamp (the answers carry milliseconds)
// and their times keep the order they happened in. A test that makes the
// same calls gets the same times, relative to the start, every run.
type manualClock struct {
	mu sync.Mutex
	at time.Time
}

func (c *manualClock) read(plus time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = c.at.Add(plus + time.Millisecond)
	return c.at
}

// now is the model's time: the wall clock's, or the manual clock's.
func (s *Sim) now() time.Time {
	if s.manual == nil {
		return time.Now()
	}
	return s.manual.read(0)
}

// Now reads the model's clock (the wall clock unless Options.ManualClock).
func (s *Sim) Now() time.Time { return s.now() }

// Advance runs n steps of the model now, synchronously, on a simulator
// made with Options.ManualClock: each moves its clock by Options.Step and
// advances every deployment in progress one step, as one tick of the
// wall-clock ticker does. On a simulator with the wall clock it panics
// (the two would race).
func (s *Sim) Advance(n int) {
	if s.manual == nil {
		panic("ecssim: Advance on a simulator without Options.ManualClock")
	}
	for range n {
		s.mu.Lock()
		s.tick(s.manual.read(s.opts.Step))
		s.mu.Unlock()
	}
}

func valid(s Scenario) bool {
	for _, x := range Scenarios {
		if x == s {
			return true
		}
	}
	return false
}

// SetScenario sets the scenario of one service (cluster and service names),
// overriding the default for the deployments it starts from now on.
func (s *Sim) SetScenario(cluster, svc string, sc Scenario) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.over[cluster+"/"+svc] = sc
	if st := s.svcs[cluster+"/"+svc]; st != nil {
		st.scenario = sc
	}
}

// Calls returns how many calls of each operation ("ecs:UpdateService",
// "ecr:GetAuthorizationToken", "sts:GetCallerIdentity") the simulator
// received, excluding polls (DescribeServices, ListServiceDeployments and
// DescribeServiceDeployments of a service while its latest deployment is in
// progress, and the first such read that shows its end).
func (s *Sim) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// Polls returns how many reads were polls (see Calls).
func (s *Sim) Polls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.polls {
		n += v
	}
	return n
}

// ResetCalls zeroes the call counters.
func (s *Sim) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[string]int{}
	s.polls = map[string]int{}
}

// FailedAt is when the simulator first answered that the service's deployment
// failed (zero if it has not).
func (s *Sim) FailedAt(cluster, svc string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.svcs[cluster+"/"+svc]; st != nil {
		return st.failedAt
	}
	return time.Time{}
}

func (s *Sim) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// ServeHTTP answers one AWS call.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	op := opName(r, target, body)
	if !s.authorize(w, r, target, body) { // IAM (iam.go), before anything else
		return
	}
	if strings.HasPrefix(target, ecsPrefix) && s.throttled(op, body) {
		s.count(op, false)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"ThrottlingException","message":"Rate exceeded"}`))
		return
	}
	if strings.HasPrefix(target, ecsPrefix) {
		var h func([]byte, http.Header) (int, []byte, error)
		switch strings.TrimPrefix(target, ecsPrefix) {
		case "UpdateService":
			h = s.updateService
		case "DescribeServices":
			h = s.describeServices
		case "ListTasks":
			h = s.listTasks
		case "DescribeTasks":
			h = s.describeTasks
		case "ListServiceDeployments":
			h = s.listServiceDeployments
		case "DescribeServiceDeployments":
			h = s.describeServiceDeployments
		case "StopServiceDeployment":
			h = s.stopServiceDeployment
		case "DescribeServiceRevisions":
			h = s.describeServiceRevisions
		}
		if h != nil {
			code, out, err := h(body, r.Header)
			if err != nil {
				http.Error(w, "ecssim: "+err.Error(), http.StatusBadGateway)
				return
			}
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(code)
			_, _ = w.Write(out)
			return
		}
	}
	s.count(op, false)
	code, hdr, out, err := s.forward(r.Method, r.URL.RequestURI(), body, r.Header)
	if err != nil {
		http.Error(w, "ecssim: upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	for k, vs := range hdr {
		if strings.EqualFold(k, "Content-Length") {
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(code)
	_, _ = w.Write(out)
}

func (s *Sim) count(op string, poll bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if poll {
		s.polls[op]++
		return
	}
	s.calls[op]++
}

// opName names a call "service:Operation": JSON protocols by X-Amz-Target,
// query protocols (STS) by their Action parameter.
func opName(r *http.Request, target string, body []byte) string {
	if target != "" {
		svc, op, _ := strings.Cut(target, ".")
		switch {
		case strings.HasPrefix(svc, "AmazonEC2ContainerService"):
			svc = "ecs"
		case strings.HasPrefix(svc, "AmazonEC2ContainerRegistry"):
			svc = "ecr"
		default:
			svc = strings.ToLower(svc)
		}
		return svc + ":" + op
	}
	if v, err := url.ParseQuery(string(body)); err == nil && v.Get("Action") != "" {
		return "sts:" + v.Get("Action")
	}
	if a := r.URL.Query().Get("Action"); a != "" {
		return "sts:" + a
	}
	return r.Method + " " + r.URL.Path
}

func (s *Sim) forward(method, uri string, body []byte, hdr http.Header) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(method, strings.TrimSuffix(s.opts.Upstream, "/")+uri, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	for k, vs := range hdr {
		if strings.EqualFold(k, "Host") || strings.EqualFold(k, "Content-Length") {
			continue
		}
		req.Header[k] = vs
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out, err
}

// ecsCall calls moto's ECS directly (the simulator's own reads).
func (s *Sim) ecsCall(op string, in any, hdr http.Header) (int, []byte, error) {
	body, _ := json.Marshal(in)
	h := http.Header{}
	for _, k := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"} {
		if v := hdr.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	h.Set("X-Amz-Target", ecsPrefix+op)
	h.Set("Content-Type", "application/x-amz-json-1.1")
	code, _, out, err := s.forward(http.MethodPost, "/", body, h)
	return code, out, err
}

func lastPart(s string) string { return s[strings.LastIndex(s, "/")+1:] }

func clusterName(c string) string {
	if c == "" {
		return "default"
	}
	return lastPart(c)
}

func newID() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	return fmt.Sprintf("ecs-svc/%019d", n)
}

func hexID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func (st *service) event(now time.Time, msg string) {
	st.events = append([]event{{ID: hexID()[:8] + "-" + hexID()[:4], At: now, Message: fmt.Sprintf("(service %s) %s", st.name, msg)}}, st.events...)
	if len(st.events) > 100 {
		st.events = st.events[:100]
	}
}

func (st *service) primary() *deployment {
	for _, d := range st.deps {
		if d.Status == "PRIMARY" {
			return d
		}
	}
	return nil
}

// arnPrefix is "arn:aws:ecs:REGION:ACCOUNT:" of the service's ARN.
func (st *service) arnPrefix() string {
	if i := strings.Index(st.arn, ":service/"); i >= 0 {
		return st.arn[:i+1]
	}
	return "arn:aws:ecs:us-west-2:123456789012:"
}

// state returns the simulator's state of a service moto describes,
// creating it (one completed PRIMARY deployment with running tasks and its
// SUCCESSFUL service deployment, or for the InProgress scenario someone
// else's deployment in progress on top) on first sight.
func (s *Sim) state(m map[string]any, hdr http.Header) *service {
	name, _ := m["serviceName"].(string)
	carn, _ := m["clusterArn"].(string)
	key := clusterName(carn) + "/" + name
	st := s.svcs[key]
	if st != nil {
		if len(hdr) > 0 {
			st.hdr = hdr.Clone()
		}
		if c, ok := m["deploymentConfiguration"].(map[string]any); ok {
			st.motoCfg = c
		}
		return st
	}
	now := s.now()
	td, _ := m["taskDefinition"].(string)
	desired := 1
	if d, ok := m["desiredCount"].(float64); ok {
		desired = int(d)
	}
	arn, _ := m["serviceArn"].(string)
	st = &service{cluster: clusterName(carn), name: name, arn: arn, clusterArn: carn, desired: desired, scenario: s.opts.Scenario,
		hdr: hdr.Clone(), launchType: m["launchType"]}
	if c, ok := m["deploymentConfiguration"].(map[string]any); ok {
		st.motoCfg = c
	}
	if sc, ok := s.over[key]; ok {
		st.scenario = sc
	}
	s.svcs[key] = st
	rev := s.newRevision(st, td, now.Add(-time.Hour))
	d := &deployment{ID: newID(), Status: "PRIMARY", TD: td, Rollout: "COMPLETED", Desired: desired, Running: desired,
		Created: now.Add(-time.Hour), Updated: now.Add(-time.Hour), rev: rev, started: true, done: true}
	d.Reason = "ECS deployment " + d.ID + " completed."
	rec := s.newRecord(st, d, nil, now.Add(-time.Hour))
	rec.Status, rec.Started, rec.Finished, rec.Updated = sdSuccessful, rec.Created, rec.Created.Add(5*time.Minute), rec.Created.Add(5*time.Minute)
	rec.cbStatus = "MONITORING_COMPLETE"
	st.deps = []*deployment{d}
	st.lastGood = rev
	st.current = rec
	for i := 0; i < desired; i++ {
		t := s.newTask(st, d)
		t.Last, t.age = "RUNNING", 1<<20
	}
	if st.scenario == InProgress {
		// Someone else's deployment, started a minute ago, still rolling;
		// the simulator does not play it (it is not ours to finish).
		d.Status = "ACTIVE"
		o := &deployment{ID: newID(), Status: "PRIMARY", TD: td, Rollout: "IN_PROGRESS", Desired: desired, Pending: desired,
			Created: now.Add(-time.Minute), Updated: now, rev: rev, started: true, frozen: true}
		o.Reason = "ECS deployment " + o.ID + " in progress."
		orec := s.newRecord(st, o, []*revision{rev}, o.Created)
		orec.Status, orec.Started = sdInProgress, o.Created
		st.deps = []*deployment{o, d}
		st.current = orec
		st.event(now.Add(-time.Minute), "has started 1 tasks: (emulated by ecssim).")
	}
	return st
}

// newRevision makes the service revision a deployment of td creates
// ("View service history using Amazon ECS service deployments": each
// deployment targets a service revision, arn:aws:ecs:REGION:ACCOUNT:
// service-revision/CLUSTER/SERVICE/NUMBER).
func (s *Sim) newRevision(st *service, td string, at time.Time) *revision {
	st.revSeq++
	r := &revision{Arn: fmt.Sprintf("%sservice-revision/%s/%s/%d", st.arnPrefix(), st.cluster, st.name, 4980306466373577000+st.revSeq),
		TD: td, Created: at, st: st, Containers: s.containersOf(td, st.hdr)}
	s.revisions[r.Arn] = r
	return r
}

// containersOf reads a task definition's containers from moto.
func (s *Sim) containersOf(td string, hdr http.Header) []container {
	code, out, err := s.ecsCall("DescribeTaskDefinition", map[string]any{"taskDefinition": td}, hdr)
	if err != nil || code != 200 {
		return nil
	}
	var resp struct {
		TaskDefinition struct {
			ContainerDefinitions []struct {
				Name, Image         string
				Essential           *bool
				Environment         []struct{ Name, Value string }
				EntryPoint, Command []string
				PortMappings        []struct{ ContainerPort int }
				LogConfiguration    *struct {
					LogDriver string
					Options   map[string]string
				}
				Secrets     []struct{ Name, ValueFrom string }
				MountPoints []struct {
					SourceVolume, ContainerPath string
					ReadOnly                    bool
				}
			}
			Volumes []struct {
				Name string
				Host *struct {
					SourcePath string
				}
				DockerVolumeConfiguration *struct {
					Scope              string
					Autoprovision      bool
					Driver             string
					DriverOpts, Labels map[string]string
				}
			}
		}
	}
	_ = json.Unmarshal(out, &resp)
	vols := map[string]taskrun.VolumeSpec{}
	for _, v := range resp.TaskDefinition.Volumes {
		vs := taskrun.VolumeSpec{Name: v.Name}
		if v.Host != nil {
			vs.HostPath = v.Host.SourcePath
		}
		if d := v.DockerVolumeConfiguration; d != nil {
			vs.Docker = &taskrun.DockerVolumeSpec{Scope: d.Scope, Autoprovision: d.Autoprovision, Driver: d.Driver, DriverOpts: d.DriverOpts, Labels: d.Labels}
		}
		vols[v.Name] = vs
	}
	var cs []container
	for _, c := range resp.TaskDefinition.ContainerDefinitions {
		spec := container{essential: c.Essential == nil || *c.Essential, entryPoint: c.EntryPoint, command: c.Command}
		for _, m := range c.MountPoints {
			spec.mounts = append(spec.mounts, taskrun.MountSpec{SourceVolume: m.SourceVolume, ContainerPath: m.ContainerPath, ReadOnly: m.ReadOnly})
			if v, ok := vols[m.SourceVolume]; ok {
				spec.volumes = append(spec.volumes, v)
			}
		}
		// secrets: the simulator reads no SSM parameter nor Secrets
		// Manager secret; each one's variable gets a fixed test value
		// named after the parameter (ecssim-secret-<last part of its
		// name>), so that two containers given the same parameter (the
		// example's django SQL_PASSWORD and pgdb POSTGRES_PASSWORD) get
		// the same value, as in ECS ("Pass sensitive data to an Amazon
		// ECS container": the agent sets the variable to the value).
		for _, sec := range c.Secrets {
			if spec.env == nil {
				spec.env = map[string]string{}
			}
			spec.env[sec.Name] = simSecretValue(sec.ValueFrom)
		}
		if lc := c.LogConfiguration; lc != nil && lc.LogDriver == "awslogs" {
			spec.logGroup, spec.logPrefix = lc.Options["awslogs-group"], lc.Options["awslogs-stream-prefix"]
		}
		for _, e := range c.Environment {
			if spec.env == nil {
				spec.env = map[string]string{}
			}
			spec.env[e.Name] = e.Value
		}
		for _, p := range c.PortMappings {
			spec.ports = append(spec.ports, p.ContainerPort)
		}
		dg := ""
		if i := strings.LastIndex(c.Image, "@"); i >= 0 {
			dg = c.Image[i+1:]
		} else {
			sum := sha256.Sum256([]byte(c.Image))
			dg = "sha256:" + hex.EncodeToString(sum[:])
		}
		spec.Name, spec.Image, spec.Digest = c.Name, c.Image, dg
		cs = append(cs, spec)
	}
	return cs
}

// simSecretValue is the simulator's stand-in value of a secret whose
// valueFrom is from: "ecssim-secret-" and the parameter's (or secret's)
// last name part.
func simSecretValue(from string) string {
	name := from
	if i := strings.LastIndex(name, ":parameter/"); i >= 0 {
		name = name[i+len(":parameter/"):]
	} else if i := strings.LastIndex(name, ":secret:"); i >= 0 {
		name = name[i+len(":secret:"):]
	}
	name = strings.Trim(name, "/")
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	if name == "" {
		name = "unnamed"
	}
	return "ecssim-secret-" + name
}

// newTask makes one PENDING task of deployment d (the runner is not asked).
func (s *Sim) newTask(st *service, d *deployment) *task {
	t := &task{Arn: fmt.Sprintf("%stask/%s/%s", st.arnPrefix(), st.cluster, hexID()),
		ClusterArn: st.clusterArn, Svc: st.cluster + "/" + st.name, TD: d.TD, Deployment: d.ID, Desired: "RUNNING", Last: "PENDING",
		Started: s.now(), fate: d.fate, dep: d}
	if d.rev != nil {
		for _, c := range d.rev.Containers {
			if d.fate == fateWrongDigest && strings.Contains(c.Image, "@") {
				sum := sha256.Sum256([]byte("not " + c.Digest))
				c.Digest = "sha256:" + hex.EncodeToString(sum[:])
			}
			t.Containers = append(t.Containers, c)
		}
	}
	s.tasks[t.Arn] = t
	return t
}

// stopTask stops t: exit, when set, is how its essential container ended
// (the other app containers end the same way, the database with 0).
func (s *Sim) stopTask(t *task, reason, code string, exit *taskExit) {
	if t.Desired == "STOPPED" {
		return
	}
	t.Desired, t.Last, t.StoppedReason, t.StopCode, t.Stopped = "STOPPED", "STOPPED", reason, code, s.now()
	if exit != nil && !exit.NoCode {
		for i := range t.Containers {
			c := &t.Containers[i]
			e := exit.ExitCode
			switch {
			case c.Name == exit.Container:
				c.Reason = exit.ContainerReason
			case !exit.AllApp:
				continue
			case isDatabase(*c):
				e = 0
			}
			c.ExitCode = &e
		}
		s.writeLogs(t)
	}
	s.runner.stop(t)
}

// writeLogs sends what each container of a task that failed wrote to
// CloudWatch Logs in moto, where the awslogs driver would have sent it
// ("Send Amazon ECS logs to CloudWatch": group awslogs-group, stream
// awslogs-stream-prefix/container-name/ecs-task-id). Best effort.
func (s *Sim) writeLogs(t *task) {
	for _, c := range t.Containers {
		if c.logGroup == "" || c.logPrefix == "" {
			continue
		}
		lines := s.runner.logs(t, c.Name, 200)
		if len(lines) == 0 {
			continue
		}
		stream := c.logPrefix + "/" + c.Name + "/" + lastPart(t.Arn)
		_, _ = s.logsCall("CreateLogGroup", map[string]any{"logGroupName": c.logGroup})
		_, _ = s.logsCall("CreateLogStream", map[string]any{"logGroupName": c.logGroup, "logStreamName": stream})
		now := s.now().UnixMilli()
		var evs []any
		for i, l := range lines {
			evs = append(evs, map[string]any{"timestamp": now - int64(len(lines)-i), "message": l})
		}
		if code, err := s.logsCall("PutLogEvents", map[string]any{"logGroupName": c.logGroup, "logStreamName": stream, "logEvents": evs}); err != nil || code != 200 {
			s.logf("ecssim: writing %d log lines of %s to %s %s: %v (HTTP %d)", len(lines), c.Name, c.logGroup, stream, err, code)
		}
	}
}

// logsCall calls moto's CloudWatch Logs (JSON 1.1, Logs_20140328); moto
// routes by the credential scope's service, and checks no signature.
func (s *Sim) logsCall(op string, in any) (int, error) {
	body, _ := json.Marshal(in)
	h := http.Header{}
	h.Set("X-Amz-Target", "Logs_20140328."+op)
	h.Set("Content-Type", "application/x-amz-json-1.1")
	h.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/us-west-2/logs/aws4_request, SignedHeaders=host, Signature=ecssim")
	code, _, _, err := s.forward(http.MethodPost, "/", body, h)
	return code, err
}

// tasksOf returns deployment d's tasks that are not stopped.
func (s *Sim) tasksOf(d *deployment) []*task {
	var out []*task
	for _, t := range s.tasks {
		if t.dep == d && t.Desired == "RUNNING" {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}
