// Package ecssim is an ECS rollout simulator for tests and the demo. moto
// accepts UpdateService but never starts a task nor advances a rollout; the
// simulator is a loopback HTTP server speaking the AWS JSON 1.1 protocol that
// forwards every call to moto (ECS, ECR, STS: point AWS_ENDPOINT_URL at it)
// except the rollout calls — UpdateService, DescribeServices, ListTasks,
// DescribeTasks — for which it keeps its own deployments, events and tasks and
// plays a scenario: success after N polls, a circuit-breaker rollback with
// stopped-task reasons, a failure without rollback, a stuck deployment,
// another deployment already in progress, or success with tasks running
// another digest than the one pinned.
//
// The shapes it returns are those of the ECS API reference: deployments with
// id, status PRIMARY/ACTIVE/INACTIVE, rolloutState IN_PROGRESS/COMPLETED/
// FAILED and rolloutStateReason, counts, events newest first with the
// "(service NAME) ..." messages ECS writes, tasks with containers'
// imageDigest, stopped tasks with stoppedReason, stopCode and exit codes.
// Every rollout it plays is EMULATED: no container runs.
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
	"strings"
	"sync"
	"time"
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
var Scenarios = []Scenario{Success, Rollback, Fail, Stuck, InProgress, WrongDigest}

const ecsPrefix = "AmazonEC2ContainerServiceV20141113."

// Options configure a simulator.
type Options struct {
	Upstream string   // moto's URL, e.g. http://127.0.0.1:5056
	Scenario Scenario // default Success
	// Polls is how many DescribeServices after an update the outcome takes
	// (default 2: one poll sees the rollout in progress, the second its end).
	Polls int
	// Logf, if set, receives one line per emulated step.
	Logf func(format string, args ...any)
}

// Sim is the simulator; it is an http.Handler.
type Sim struct {
	opts   Options
	client *http.Client
	mu     sync.Mutex
	svcs   map[string]*service // cluster/service
	over   map[string]Scenario // per-service scenario
	tasks  map[string]*task    // task ARN → task
	calls  map[string]int      // "ecs:UpdateService" → count
	polls  map[string]int      // calls that are polls (DescribeServices after the update)
}

type deployment struct {
	ID, Status, TD, Rollout, Reason string
	Desired, Pending, Running, Fail int
	Created, Updated                time.Time
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
}

type container struct {
	Name, Image, Digest string
	ExitCode            *int
	Reason              string
}

type service struct {
	cluster, name, arn string
	clusterArn         string
	desired            int
	deps               []*deployment // newest first
	events             []event       // newest first
	polls              int           // DescribeServices since the last update
	active             *deployment   // the deployment the scenario plays on
	prevTD             string        // the revision before the update
	scenario           Scenario
	failedAt           time.Time
	done               bool
}

// New returns a simulator forwarding to opts.Upstream.
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
	return &Sim{opts: opts, client: &http.Client{Timeout: 30 * time.Second},
		svcs: map[string]*service{}, over: map[string]Scenario{}, tasks: map[string]*task{},
		calls: map[string]int{}, polls: map[string]int{}}, nil
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
// received, excluding polls (DescribeServices made while a deployment it
// emulates is being followed).
func (s *Sim) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// Polls returns how many DescribeServices calls were polls.
func (s *Sim) Polls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polls["ecs:DescribeServices"]
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

// state returns the simulator's state of a service moto describes,
// creating it (one completed PRIMARY deployment with running tasks, or for
// the InProgress scenario a deployment in progress) on first sight.
func (s *Sim) state(m map[string]any, hdr http.Header) *service {
	name, _ := m["serviceName"].(string)
	carn, _ := m["clusterArn"].(string)
	key := clusterName(carn) + "/" + name
	if st := s.svcs[key]; st != nil {
		return st
	}
	now := time.Now()
	td, _ := m["taskDefinition"].(string)
	desired := 1
	if d, ok := m["desiredCount"].(float64); ok {
		desired = int(d)
	}
	arn, _ := m["serviceArn"].(string)
	st := &service{cluster: clusterName(carn), name: name, arn: arn, clusterArn: carn, desired: desired, scenario: s.opts.Scenario}
	if sc, ok := s.over[key]; ok {
		st.scenario = sc
	}
	d := &deployment{ID: newID(), Status: "PRIMARY", TD: td, Rollout: "COMPLETED", Desired: desired, Running: desired, Created: now.Add(-time.Hour), Updated: now.Add(-time.Hour)}
	d.Reason = "ECS deployment " + d.ID + " completed."
	st.deps = []*deployment{d}
	s.startTasks(st, d, desired, hdr, false)
	if st.scenario == InProgress {
		// Someone else's deployment, started a minute ago, still rolling.
		d.Status = "ACTIVE"
		o := &deployment{ID: newID(), Status: "PRIMARY", TD: td, Rollout: "IN_PROGRESS", Desired: desired, Pending: desired, Created: now.Add(-time.Minute), Updated: now}
		o.Reason = "ECS deployment " + o.ID + " in progress."
		st.deps = []*deployment{o, d}
		st.event(now.Add(-time.Minute), "has started 1 tasks: (emulated by ecssim).")
	}
	s.svcs[key] = st
	return st
}

// containersOf reads a task definition's containers from moto.
func (s *Sim) containersOf(td string, hdr http.Header) []container {
	code, out, err := s.ecsCall("DescribeTaskDefinition", map[string]any{"taskDefinition": td}, hdr)
	if err != nil || code != 200 {
		return nil
	}
	var resp struct {
		TaskDefinition struct {
			ContainerDefinitions []struct{ Name, Image string }
		}
	}
	_ = json.Unmarshal(out, &resp)
	var cs []container
	for _, c := range resp.TaskDefinition.ContainerDefinitions {
		dg := ""
		if i := strings.LastIndex(c.Image, "@"); i >= 0 {
			dg = c.Image[i+1:]
		} else {
			sum := sha256.Sum256([]byte(c.Image))
			dg = "sha256:" + hex.EncodeToString(sum[:])
		}
		cs = append(cs, container{Name: c.Name, Image: c.Image, Digest: dg})
	}
	return cs
}

func (s *Sim) startTasks(st *service, d *deployment, n int, hdr http.Header, wrongDigest bool) {
	cs := s.containersOf(d.TD, hdr)
	for i := 0; i < n; i++ {
		t := &task{Arn: fmt.Sprintf("arn:aws:ecs:us-west-2:123456789012:task/%s/%s", st.cluster, hexID()),
			ClusterArn: st.clusterArn, Svc: st.cluster + "/" + st.name, TD: d.TD, Deployment: d.ID, Desired: "RUNNING", Last: "RUNNING", Started: time.Now()}
		for _, c := range cs {
			if wrongDigest && strings.Contains(c.Image, "@") {
				sum := sha256.Sum256([]byte("not " + c.Digest))
				c.Digest = "sha256:" + hex.EncodeToString(sum[:])
			}
			t.Containers = append(t.Containers, c)
		}
		s.tasks[t.Arn] = t
	}
}

func (s *Sim) stopTasks(st *service, dep string, reason, code string, exit *int, why string) []*task {
	var out []*task
	for _, t := range s.tasks {
		if t.Deployment == dep && t.Desired == "RUNNING" {
			t.Desired, t.Last, t.StoppedReason, t.StopCode, t.Stopped = "STOPPED", "STOPPED", reason, code, time.Now()
			for i := range t.Containers {
				if exit != nil {
					e := *exit
					if !strings.HasPrefix(t.Containers[i].Name, "pg") {
						t.Containers[i].ExitCode = &e
						t.Containers[i].Reason = why
					} else {
						z := 0
						t.Containers[i].ExitCode = &z
					}
				}
			}
			out = append(out, t)
		}
	}
	return out
}
