package ecssim

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hackforla/ctjdeploy/internal/taskrun"
)

// fate is what a deployment's tasks do once started, in the emulated runner.
type fate int

const (
	fateHealthy     fate = iota // the task stays up: healthy
	fateExit1                   // the essential containers exit 1 at start
	fateUnplaceable             // no container instance can take the task
	fateWrongDigest             // healthy, but reports other image digests
)

// taskExit is how a task ended: its stoppedReason and stopCode, and the
// exit code of the essential container that ended it (Container "" and
// NoCode: it never started).
type taskExit struct {
	Container string
	ExitCode  int
	NoCode    bool
	Reason    string // the task's stoppedReason
	StopCode  string
	// ContainerReason is the container's own reason (OutOfMemoryError...).
	ContainerReason string
	// AllApp: every app container ended with ExitCode (the emulated
	// failures); else only Container did.
	AllApp bool
}

// taskRunner is the seam between the rollout model and what runs a task:
// start begins running the task's containers, poll reports (without
// blocking) the exit of an essential container once there is one, stop ends
// the task. The clock calls them under the simulator's lock, once per step.
//
// The emulated runner below decides exits from the deployment's fate; a
// Docker runner (engine.go's Engine, when it is wired behind Options) would
// start real containers and report their real exits.
type taskRunner interface {
	start(t *task) error
	// running: the task's containers are up (a task is healthy once it has
	// been running for a step).
	running(t *task) bool
	poll(t *task) *taskExit
	// logs are the last n lines a container of t wrote (before stop).
	logs(t *task, container string, n int) []string
	stop(t *task)
	// close stops every task still running.
	close()
}

// emulated runs nothing: a task of a failing deployment "exits" one step
// after it started (failAfter steps), every other task stays up.
type emulated struct{ failAfter int }

func (emulated) start(*task) error { return nil }

func (e emulated) poll(t *task) *taskExit {
	if t.fate != fateExit1 || t.age < e.failAfter {
		return nil
	}
	name := ""
	for _, c := range t.Containers {
		if !isDatabase(c) {
			name = c.Name
			break
		}
	}
	return &taskExit{Container: name, ExitCode: 1, Reason: "Essential container in task exited", StopCode: "EssentialContainerExited", AllApp: true}
}

// logs: an emulated container wrote nothing; the one the scenario made
// exit says so, so that a reader of its log learns what happened.
func (emulated) logs(t *task, container string, n int) []string {
	for _, c := range t.Containers {
		if c.Name == container && c.ExitCode != nil && *c.ExitCode != 0 {
			return []string{fmt.Sprintf("ecssim: container %s of this EMULATED task exited %d (the simulator's scenario; no real output)", container, *c.ExitCode)}
		}
	}
	return nil
}

func (emulated) running(*task) bool { return true }
func (emulated) stop(*task)         {}
func (emulated) close()             {}

// docker runs tasks on the other helper's Engine (engine.go): Start runs in
// the background (it pulls images), poll reports the real exit of the first
// essential container, or the failure to start.
type docker struct {
	e  *taskrun.Engine
	mu sync.Mutex
	h  map[*task]*dockerTask
	// stopping: per service (cluster/service), the tasks whose containers
	// are still being stopped (closed once removed). A task of the service
	// starts only once they are gone: "Service definition parameters"
	// (maximumPercent) counts the tasks in the RUNNING or PENDING state, and
	// a task being stopped stays RUNNING until its containers exited, so
	// with maximumPercent 100 the old task's postgres is down before the new
	// one's starts on the same volume.
	stopping map[string]map[chan struct{}]bool
}

// dockerStable is how long a task's containers must stay up before the
// model counts it healthy (the task definitions have no health check; a
// container that crashes at start must have the time to).
const dockerStable = time.Second

type dockerTask struct {
	rt        *taskrun.RunningTask
	up        time.Time // when Start returned
	err       error
	started   bool // Start returned
	exit      *taskrun.TaskExit
	stopAsked bool
	stopped   chan struct{} // closed once stopped (after stopAsked)
}

func newDocker(e *taskrun.Engine) *docker {
	return &docker{e: e, h: map[*task]*dockerTask{}, stopping: map[string]map[chan struct{}]bool{}}
}

// dockerStopWait bounds how long a start waits for its service's stopping
// tasks.
const dockerStopWait = 2 * time.Minute

func (r *docker) start(t *task) error {
	spec := taskrun.TaskSpec{ID: lastPart(t.Arn), Group: t.Svc}
	seen := map[string]bool{}
	for _, c := range t.Containers {
		spec.Containers = append(spec.Containers, taskrun.ContainerSpec{Name: c.Name, Image: c.Image, Essential: c.essential,
			Environment: c.env, EntryPoint: c.entryPoint, Command: c.command, PortMappings: c.ports, Mounts: c.mounts})
		for _, v := range c.volumes {
			if !seen[v.Name] {
				seen[v.Name] = true
				spec.Volumes = append(spec.Volumes, v)
			}
		}
	}
	dt := &dockerTask{}
	r.mu.Lock()
	r.h[t] = dt
	var wait []chan struct{}
	for ch := range r.stopping[t.Svc] {
		wait = append(wait, ch)
	}
	r.mu.Unlock()
	go func() {
		limit := time.After(dockerStopWait)
	waiting:
		for _, ch := range wait {
			select {
			case <-ch:
			case <-limit:
				r.e.Logf("ecssim: task %s starts although a task of %s is still being stopped after %s", spec.ID, t.Svc, dockerStopWait)
				break waiting
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		rt, err := r.e.Start(ctx, spec)
		cancel()
		r.mu.Lock()
		dt.rt, dt.err, dt.started, dt.up = rt, err, true, time.Now()
		stop := dt.stopAsked
		r.mu.Unlock()
		if stop {
			if rt != nil {
				stopRunning(rt)
			}
			r.stopDone(t.Svc, dt)
		}
	}()
	return nil
}

func stopRunning(rt *taskrun.RunningTask) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = rt.Stop(ctx)
}

func (r *docker) running(t *task) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	dt := r.h[t]
	if dt == nil || dt.rt == nil || dt.exit != nil || time.Since(dt.up) < dockerStable {
		return false
	}
	select {
	case <-dt.rt.Done(): // an essential container exited (engine.go closes it before reporting)
		return false
	default:
		return true
	}
}

func (r *docker) poll(t *task) *taskExit {
	r.mu.Lock()
	defer r.mu.Unlock()
	dt := r.h[t]
	if dt == nil || !dt.started {
		return nil
	}
	if dt.err != nil {
		return &taskExit{NoCode: true, Reason: "CannotStartContainerError: " + dt.err.Error(), StopCode: "TaskFailedToStart"}
	}
	select {
	case x := <-dt.rt.Exited():
		dt.exit = &x
	default:
		return nil
	}
	return &taskExit{Container: dt.exit.Container, ExitCode: dt.exit.ExitCode, Reason: "Essential container in task exited",
		StopCode: "EssentialContainerExited", ContainerReason: dt.exit.Reason}
}

func (r *docker) logs(t *task, container string, n int) []string {
	r.mu.Lock()
	dt := r.h[t]
	r.mu.Unlock()
	if dt == nil || dt.rt == nil {
		return nil
	}
	return dt.rt.Logs(container, n)
}

func (r *docker) stop(t *task) {
	r.mu.Lock()
	dt := r.h[t]
	delete(r.h, t)
	if dt == nil {
		r.mu.Unlock()
		return
	}
	dt.stopAsked = true
	dt.stopped = make(chan struct{})
	if r.stopping[t.Svc] == nil {
		r.stopping[t.Svc] = map[chan struct{}]bool{}
	}
	r.stopping[t.Svc][dt.stopped] = true
	rt, started := dt.rt, dt.started
	r.mu.Unlock()
	switch {
	case rt != nil:
		go func() {
			stopRunning(rt)
			r.stopDone(t.Svc, dt)
		}()
	case started: // it failed to start: nothing runs
		r.stopDone(t.Svc, dt)
	default: // the start goroutine stops it once started
	}
}

// stopDone: dt's containers are gone; the service's next tasks may start.
func (r *docker) stopDone(svc string, dt *dockerTask) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if dt.stopped == nil {
		return
	}
	delete(r.stopping[svc], dt.stopped)
	if len(r.stopping[svc]) == 0 {
		delete(r.stopping, svc)
	}
	close(dt.stopped)
	dt.stopped = nil
}

func (r *docker) close() {
	r.mu.Lock()
	var rts []*taskrun.RunningTask
	for t, dt := range r.h {
		dt.stopAsked = true
		if dt.rt != nil {
			rts = append(rts, dt.rt)
		}
		delete(r.h, t)
	}
	r.mu.Unlock()
	for _, rt := range rts {
		stopRunning(rt)
	}
}

// isDatabase tells the example's task-local postgres container, which the
// emulated failures leave alone (it exits 0 when ECS stops the task).
func isDatabase(c container) bool {
	return strings.HasPrefix(c.Name, "pg") || strings.Contains(c.Image, "postgres")
}

// RunningTaskPort is, for the service's newest task that runs real
// containers (Options.Engine) and is RUNNING, its ARN and the loopback host
// port the engine published for containerPort (reach it at
// 127.0.0.1:<port>). It returns "", 0 when no such task runs, with the
// emulated runner, or when the task maps no such port.
func (s *Sim) RunningTaskPort(cluster, service string, containerPort int) (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runner.(*docker)
	if !ok {
		return "", 0
	}
	var best *task
	var port int
	for _, t := range s.tasks {
		if t.Svc != cluster+"/"+service || t.Last != "RUNNING" || t.Desired != "RUNNING" {
			continue
		}
		r.mu.Lock()
		dt := r.h[t]
		p := 0
		if dt != nil && dt.rt != nil && dt.exit == nil {
			p = dt.rt.HostPort(containerPort)
		}
		r.mu.Unlock()
		if p != 0 && (best == nil || t.Started.After(best.Started)) {
			best, port = t, p
		}
	}
	if best == nil {
		return "", 0
	}
	return best.Arn, port
}
