package ecssim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"
)

// updateService forwards the update to moto (which records the service's new
// revision) and starts an emulated deployment when the revision changes or
// forceNewDeployment is set, as ECS does.
func (s *Sim) updateService(body []byte, hdr http.Header) (int, []byte, error) {
	var in struct {
		ForceNewDeployment bool `json:"forceNewDeployment"`
	}
	_ = json.Unmarshal(body, &in)
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
	td, _ := m["taskDefinition"].(string)
	if d, ok := m["desiredCount"].(float64); ok {
		st.desired = int(d)
	}
	prim := st.primary()
	if prim == nil || prim.TD != td || in.ForceNewDeployment {
		now := time.Now()
		for _, d := range st.deps {
			if d.Status == "PRIMARY" {
				d.Status = "ACTIVE"
			}
		}
		if prim != nil {
			st.prevTD = prim.TD
		}
		d := &deployment{ID: newID(), Status: "PRIMARY", TD: td, Rollout: "IN_PROGRESS", Desired: st.desired, Pending: st.desired, Created: now, Updated: now}
		d.Reason = "ECS deployment " + d.ID + " in progress."
		st.deps = append([]*deployment{d}, st.deps...)
		st.active, st.polls, st.failedAt, st.done = d, 0, time.Time{}, false
		st.event(now, fmt.Sprintf("ecssim: this rollout of %s is EMULATED (scenario %s); no container runs.", lastPart(td), st.scenario))
		s.logf("ecssim: %s/%s: deployment %s of %s started (scenario %s, emulated)", st.cluster, st.name, d.ID, lastPart(td), st.scenario)
	}
	resp["service"] = s.render(st, m)
	b, err := json.Marshal(resp)
	return code, b, err
}

func withTarget(hdr http.Header, op string) http.Header {
	h := hdr.Clone()
	h.Set("X-Amz-Target", ecsPrefix+op)
	return h
}

// describeServices forwards to moto and lays the emulated deployments, events
// and counts over each service it knows, advancing the scenario one step per
// call while a deployment is being played.
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
	poll := false
	for i, x := range svcs {
		m, _ := x.(map[string]any)
		if m == nil || m["status"] != "ACTIVE" {
			continue
		}
		st := s.state(m, hdr)
		if st.active != nil && !st.done {
			poll = true
			st.polls++
			s.advance(st, hdr)
		}
		svcs[i] = s.render(st, m)
	}
	if poll {
		s.polls["ecs:DescribeServices"]++
	} else {
		s.calls["ecs:DescribeServices"]++
	}
	b, err := json.Marshal(resp)
	return code, b, err
}

// advance plays one step of the service's scenario.
func (s *Sim) advance(st *service, hdr http.Header) {
	d, now := st.active, time.Now()
	d.Updated = now
	end := st.polls >= s.opts.Polls
	switch st.scenario {
	case Stuck:
		if st.polls == 1 {
			st.event(now, "was unable to place a task because no container instance met all of its requirements. Reason: No Container Instances were found in your cluster.")
		}
		return
	case Rollback, Fail:
		if !end {
			if st.polls == 1 {
				s.startTasks(st, d, d.Desired, hdr, false)
				d.Pending, d.Running = d.Desired, 0
				st.event(now, fmt.Sprintf("has started %d tasks: (emulated).", d.Desired))
			}
			return
		}
		exit := 1
		stopped := s.stopTasks(st, d.ID, "Essential container in task exited", "EssentialContainerExited", &exit, "")
		d.Pending, d.Running, d.Fail = 0, 0, len(stopped)+2
		d.Rollout, d.Reason = "FAILED", "ECS deployment circuit breaker: tasks failed to start."
		st.event(now, fmt.Sprintf("has stopped %d running tasks: (emulated).", len(stopped)))
		st.event(now, fmt.Sprintf("(deployment %s) deployment failed: tasks failed to start.", d.ID))
		st.failedAt, st.done = now, true
		if st.scenario == Rollback && st.prevTD != "" {
			d.Status = "ACTIVE"
			r := &deployment{ID: newID(), Status: "PRIMARY", TD: st.prevTD, Rollout: "IN_PROGRESS", Desired: d.Desired, Running: d.Desired, Created: now, Updated: now}
			r.Reason = "ECS deployment " + r.ID + " in progress."
			st.deps = append([]*deployment{r}, st.deps...)
			st.event(now, fmt.Sprintf("rolling back to deployment %s.", r.ID))
			// As ECS does, the service itself goes back to the previous
			// revision: put moto's service there too, so that what comes
			// after this simulator (status, the next deploy) sees it.
			if code, out, err := s.ecsCall("UpdateService", map[string]any{"cluster": st.cluster, "service": st.name, "taskDefinition": st.prevTD}, hdr); err != nil || code != 200 {
				s.logf("ecssim: %s/%s: putting moto's service back on %s: %v %s", st.cluster, st.name, st.prevTD, err, out)
			}
		}
		s.logf("ecssim: %s/%s: deployment %s FAILED (%s, emulated)", st.cluster, st.name, d.ID, st.scenario)
		return
	}
	// Success, InProgress (after our update), WrongDigest.
	if !end {
		if st.polls == 1 {
			s.startTasks(st, d, d.Desired, hdr, st.scenario == WrongDigest)
			d.Pending = d.Desired
			st.event(now, fmt.Sprintf("has started %d tasks: (emulated).", d.Desired))
		}
		return
	}
	if st.polls == 1 {
		s.startTasks(st, d, d.Desired, hdr, st.scenario == WrongDigest)
	}
	d.Pending, d.Running = 0, d.Desired
	d.Rollout, d.Reason = "COMPLETED", "ECS deployment "+d.ID+" completed."
	var keep []*deployment
	for _, o := range st.deps {
		if o == d {
			keep = append(keep, o)
			continue
		}
		s.stopTasks(st, o.ID, "Scaling activity initiated by (deployment "+d.ID+")", "ServiceSchedulerInitiated", nil, "")
	}
	st.deps = keep
	st.event(now, fmt.Sprintf("(deployment %s) deployment completed.", d.ID))
	st.event(now, "has reached a steady state.")
	st.done = true
	s.logf("ecssim: %s/%s: deployment %s COMPLETED (emulated)", st.cluster, st.name, d.ID)
}

// render lays the emulated state over moto's service shape m.
func (s *Sim) render(st *service, m map[string]any) map[string]any {
	var deps []any
	running, pending := 0, 0
	for _, d := range st.deps {
		deps = append(deps, map[string]any{
			"id": d.ID, "status": d.Status, "taskDefinition": d.TD,
			"desiredCount": d.Desired, "pendingCount": d.Pending, "runningCount": d.Running, "failedTasks": d.Fail,
			"createdAt": epoch(d.Created), "updatedAt": epoch(d.Updated),
			"launchType": m["launchType"], "rolloutState": d.Rollout, "rolloutStateReason": d.Reason,
		})
		running += d.Running
		pending += d.Pending
	}
	var evs []any
	for _, e := range st.events {
		evs = append(evs, map[string]any{"id": e.ID, "createdAt": epoch(e.At), "message": e.Message})
	}
	if evs == nil {
		evs = []any{}
	}
	m["deployments"] = deps
	m["events"] = evs
	m["runningCount"] = running
	m["pendingCount"] = pending
	if p := st.primary(); p != nil {
		m["taskDefinition"] = p.TD
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
		if t.ClusterArn == st.clusterArn && t.Desired == want && s.ownedBy(st, t) {
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

func (s *Sim) ownedBy(st *service, t *task) bool { return t.Svc == st.cluster+"/"+st.name }

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
