// Package taskrun runs an ECS task's containers for real on a Docker
// engine (the local stack's dockerd): the simulator's tasks (ecssim) and
// `ctjdeploy ENV local` (deploy/local) both start tasks through it.
package taskrun

// engine.go runs a task's containers for real on a Docker engine (the
// stack's dockerd), so the simulator can start actual tasks instead of only
// emulating them.
//
// Network model — ECS developer guide, "Amazon ECS task networking options
// for EC2" (awsvpc network mode): every task gets its own network namespace
// (elastic network interface) that all of the task's containers share, so
// they reach each other on localhost. Docker models that with a sandbox
// ("pause") container owning the namespace and the task's containers joining
// it with NetworkMode "container:<sandbox id>"; the port mappings are
// published on the sandbox, on 127.0.0.1 only, each on a free host port.
//
// Essential containers — ECS developer guide, "Amazon ECS task definition
// parameters" (essential): "If the essential parameter of a container is
// marked as true, and that container fails or stops for any reason, all other
// containers that are part of the task are stopped." The stopped task then
// reads "Essential container in task exited". All tasks must have at least
// one essential container.
//
// Volumes — ECS developer guide, "Specify a Docker volume in an Amazon ECS
// task definition" and "Use bind mounts with Amazon ECS": a volume with a
// dockerVolumeConfiguration is a Docker volume. "Docker volumes that are
// scoped to a task are provisioned automatically when the task starts and
// destroyed when the task stops. Docker volumes that are shared persist
// after the task stops." With autoprovision (used only when the scope is
// shared), "the Docker volume is created if it doesn't already exist";
// without it, a shared volume that does not exist fails the task. A volume
// with a host sourcePath is a bind mount of that host path; a volume with
// neither is a Docker-managed path that does not outlive the task (a
// task-scoped volume here). Each container mounts them at its mountPoints.
// Here a shared volume is the Docker volume ecssim-<cluster>-<service>-<name>
// (TaskSpec.Group is "<cluster>/<service>"), so a service's next task finds
// the data of its previous one, as on one container instance.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	dref "github.com/distribution/reference"
	dauth "github.com/moby/moby/api/pkg/authconfig"
	dstdcopy "github.com/moby/moby/api/pkg/stdcopy"
	dctr "github.com/moby/moby/api/types/container"
	dmount "github.com/moby/moby/api/types/mount"
	dnet "github.com/moby/moby/api/types/network"
	dreg "github.com/moby/moby/api/types/registry"
	dcli "github.com/moby/moby/client"

	"github.com/hackforla/ctjdeploy/internal/config"
)

// EngineOptions configure an Engine.
type EngineOptions struct {
	Host string // DOCKER_HOST (default: from the environment)
	// RegistryUser and RegistryPassword authenticate pulls from a loopback
	// registry (sent as X-Registry-Auth, only to 127.0.0.1/localhost/::1
	// registries; never logged).
	RegistryUser, RegistryPassword string
	// RegistryHost, when set, is the one registry (host[:port]) the
	// credentials go to, loopback or not (e.g. the environment's ECR
	// registry); unset, they go to loopback registries only.
	RegistryHost string
	// Label is put on every container ("key=value" or "key"; default
	// "org.ctjdeploy.ecssim=1") so that Cleanup finds them.
	Label string
	// Prefix starts the Docker name of every container
	// (<prefix>-<task>-<container>; default "ecssim").
	Prefix string
	Logf   func(format string, args ...any)
}

// DefaultEngineLabel marks every container an Engine creates unless
// EngineOptions.Label says otherwise.
const DefaultEngineLabel = "org.ctjdeploy.ecssim=1"

// engTaskLabel carries the task ID on each of its containers.
const engTaskLabel = "org.ctjdeploy.ecssim.task"

// engGroupLabel carries TaskSpec.Group on the shared volumes.
const engGroupLabel = "org.ctjdeploy.ecssim.volume-group"

// engStopTimeout is how long a container that mounts a volume gets to stop
// on its stop signal (postgres: SIGINT, a fast shutdown) before it is
// killed. ECS's stopTimeout defaults to 30 s ("Amazon ECS task definition
// parameters"); the containers without volumes are killed at once, since
// nothing of theirs outlives the task.
const engStopTimeout = 10

// engLogLines is how many lines of output are kept per container.
const engLogLines = 2000

// Engine starts tasks on a Docker engine.
type Engine struct {
	cli      *dcli.Client
	host     string
	auth     string // encoded X-Registry-Auth, "" when no user is set
	authHost string // RegistryHost
	labelKey string
	labelVal string
	prefix   string
	logf     func(format string, args ...any)

	pullMu sync.Mutex
	pulls  map[string]*engPull // image reference -> pull in flight or done

	tasksMu sync.Mutex
	tasks   map[*RunningTask]bool // started and not yet stopped
}

type engPull struct {
	done chan struct{}
	err  error
}

// NewEngine connects to the Docker engine (and checks it answers).
func NewEngine(o EngineOptions) (*Engine, error) {
	host := o.Host
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	opts := []dcli.Opt{dcli.FromEnv}
	if o.Host != "" {
		opts = append(opts, dcli.WithHost(o.Host))
	}
	shown := host
	if shown == "" {
		shown = dcli.DefaultDockerHost + " (DOCKER_HOST is unset)"
	}
	cli, err := dcli.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("taskrun: connecting to the Docker engine at %s: %w (start the stack: scripts/stack up, then source /tmp/ctjdeploy-stack/env)", shown, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, dcli.PingOptions{NegotiateAPIVersion: true}); err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("taskrun: the Docker engine at %s does not answer: %w (start the stack: scripts/stack up, then source /tmp/ctjdeploy-stack/env)", shown, err)
	}
	e := &Engine{cli: cli, host: shown, logf: o.Logf, prefix: o.Prefix, authHost: o.RegistryHost, pulls: map[string]*engPull{}, tasks: map[*RunningTask]bool{}}
	if e.prefix == "" {
		e.prefix = "ecssim"
	}
	label := o.Label
	if label == "" {
		label = DefaultEngineLabel
	}
	e.labelKey, e.labelVal, _ = strings.Cut(label, "=")
	if e.labelKey == "" {
		_ = cli.Close()
		return nil, fmt.Errorf("taskrun: label %q has no key (want key=value)", label)
	}
	if o.RegistryUser != "" {
		a, err := dauth.Encode(dreg.AuthConfig{Username: o.RegistryUser, Password: o.RegistryPassword})
		if err != nil {
			_ = cli.Close()
			return nil, fmt.Errorf("taskrun: encoding the registry credentials of user %s: %w", o.RegistryUser, err)
		}
		e.auth = a
	}
	return e, nil
}

// Close releases the engine client (running tasks keep running).
func (e *Engine) Close() error { return e.cli.Close() }

// Logf writes to EngineOptions.Logf (nothing when unset).
func (e *Engine) Logf(format string, args ...any) { e.log(format, args...) }

func (e *Engine) log(format string, args ...any) {
	if e.logf != nil {
		e.logf(format, args...)
	}
}

// TaskSpec is a task to run: its ID (unique among running tasks) and its
// containers, in the order they are started.
type TaskSpec struct {
	ID string
	// Group is "<cluster>/<service>": it names the task's shared volumes
	// (ecssim-<cluster>-<service>-<volume>), which its service's other
	// tasks then share.
	Group      string
	Containers []ContainerSpec
	Volumes    []VolumeSpec
	// VolumePrefix, when set, names the shared volumes
	// <VolumePrefix>-<volume> instead of SharedVolume(Group, volume).
	VolumePrefix string
	// Labels go on every container, the sandbox and the volumes created.
	Labels map[string]string
	// Output, when set, gets each line a container writes (stdout and
	// stderr), as it arrives; it must not block.
	Output func(container, line string)
}

// VolumeSpec is one of a task definition's volumes.
type VolumeSpec struct {
	Name string
	// Docker is the dockerVolumeConfiguration (nil: none).
	Docker *DockerVolumeSpec
	// HostPath is host.sourcePath: a bind mount of that host path ("" with
	// Docker nil: a volume that lives as long as the task).
	HostPath string
}

// DockerVolumeSpec is a dockerVolumeConfiguration.
type DockerVolumeSpec struct {
	Scope         string // "task" (the default) or "shared"
	Autoprovision bool
	Driver        string // "" is "local"
	DriverOpts    map[string]string
	Labels        map[string]string
}

// MountSpec is one of a container's mountPoints.
type MountSpec struct {
	SourceVolume, ContainerPath string
	ReadOnly                    bool
}

// ContainerSpec is one container of a task definition.
type ContainerSpec struct {
	Name, Image string
	Essential   bool
	Environment map[string]string
	// EntryPoint and Command override the image's ENTRYPOINT and CMD when
	// set (as in ECS, an EntryPoint without Command drops the image's CMD).
	EntryPoint, Command []string
	PortMappings        []int // container ports (tcp); published on 127.0.0.1 on a free host port
	Mounts              []MountSpec
	// DependsOn: the container starts once each dependency's condition
	// holds ("Amazon ECS task definition parameters", dependsOn: START,
	// COMPLETE, SUCCESS, HEALTHY).
	DependsOn []Dependency
	// HealthCheck is the container's healthCheck (nil: none). It is
	// Docker's own HEALTHCHECK, set on the container: ECS's healthCheck
	// maps onto it field by field (command CMD / CMD-SHELL, interval,
	// timeout, retries, startPeriod).
	HealthCheck *HealthCheck
	WorkingDir  string // workingDirectory
	User        string // user
	Ulimits     []Ulimit
	// Memory is the hard limit and MemoryReservation the soft one, in MiB;
	// CPU is cpu units (1024 per vCPU), a relative weight as Docker's cpu
	// shares (0: none).
	Memory, MemoryReservation, CPU int
	// StopTimeout (seconds) is how long the container gets to exit on its
	// stop signal before it is killed; 0: 10 s for a container that mounts
	// a volume, killed at once otherwise (the simulator's choice).
	StopTimeout int
	// Init runs an init process as PID 1 (linuxParameters.initProcessEnabled),
	// which forwards the stop signal to the container's process.
	Init bool
}

// Dependency is one of a container's dependsOn.
type Dependency struct {
	Container string
	Condition string // START, COMPLETE, SUCCESS or HEALTHY
}

// HealthCheck is a container's healthCheck ("Amazon ECS task definition
// parameters", Health check: defaults interval 30 s, timeout 5 s, retries
// 3, startPeriod off).
type HealthCheck struct {
	Command                        []string // ["CMD", ...] or ["CMD-SHELL", "..."]
	Interval, Timeout, StartPeriod time.Duration
	Retries                        int
}

// Ulimit is one of a container's ulimits.
type Ulimit struct {
	Name       string
	Soft, Hard int64
}

// TaskExit is the exit of a task's first essential container.
type TaskExit struct {
	Container string
	ExitCode  int
	Reason    string // "" for a process exit; "OutOfMemoryError: ..." when OOM-killed
}

// RunningTask is a started task.
type RunningTask struct {
	e       *Engine
	id      string
	sandbox string            // sandbox container ID
	ids     map[string]string // container name -> container ID
	order   []string          // container names in start order
	ports   map[int]int       // container port -> host port
	exited  chan TaskExit
	over    chan struct{} // closed when the task ended (essential exit) or was stopped
	overOne sync.Once
	tSbx    time.Duration // how long the sandbox took to start (for the log)
	// vols: volume name -> Docker volume name, or host path (hostVols);
	// taskVols are the Docker volumes removed with the task.
	vols     map[string]string
	hostVols map[string]bool
	taskVols []string
	graceful map[string]bool // container IDs stopped with their stop signal before removal
	ctx      context.Context // watchers and log followers
	cancel   context.CancelFunc

	mu      sync.Mutex
	stopped bool // Stop was called: exits are no longer reported
	ended   bool // an essential container exited (TaskExit sent)
	removed map[string]bool
	logs    map[string]*engLog
	states  map[string]*ctrState
	specs   map[string]ContainerSpec
	level   map[string]int    // dependency depth: 0 depends on nothing
	extra   map[string]string // TaskSpec.Labels
}

// ctrState is what the containers that depend on one wait for.
type ctrState struct {
	started chan struct{} // closed once started
	exited  chan struct{} // closed once exited (code set before)
	healthy chan struct{} // closed once its health check passed
	code    int
	health  string // "", "starting", "healthy", "unhealthy"
}

var engNameRE = regexp.MustCompile(`[^a-zA-Z0-9_.-]`)

// engName is the Docker name of a task's container: ecssim-<task>-<container>.
func engName(task, ctr string) string { return prefixedName("ecssim", task, ctr) }

func prefixedName(prefix, task, ctr string) string {
	return engNameRE.ReplaceAllString(prefix+"-"+task+"-"+ctr, "-")
}

// ContainerName is the Docker name of container ctr of task id.
func (e *Engine) ContainerName(id, ctr string) string { return prefixedName(e.prefix, id, ctr) }

// SharedVolume is the Docker volume that holds the shared-scope volume
// named volume of the tasks of group ("<cluster>/<service>"):
// ecssim-<cluster>-<service>-<volume>.
func SharedVolume(group, volume string) string {
	if group == "" {
		group = "shared"
	}
	return engNameRE.ReplaceAllString("ecssim-"+strings.ReplaceAll(group, "/", "-")+"-"+volume, "-")
}

// Start pulls the images, starts the sandbox and then each container, and
// returns once every container is started (not once it is ready: a process
// listening on a port is a matter for the caller to probe, see HostPort).
// On error, whatever was created is removed.
func (e *Engine) Start(ctx context.Context, t TaskSpec) (*RunningTask, error) {
	if err := engValidate(t); err != nil {
		return nil, err
	}
	t0 := time.Now()
	for _, c := range t.Containers {
		if err := e.ensureImage(ctx, c.Image); err != nil {
			return nil, fmt.Errorf("taskrun: task %s container %s: %w", t.ID, c.Name, err)
		}
	}
	tctx, cancel := context.WithCancel(context.Background())
	rt := &RunningTask{
		e: e, id: t.ID, ids: map[string]string{}, ports: map[int]int{},
		exited: make(chan TaskExit, 1), over: make(chan struct{}), ctx: tctx, cancel: cancel,
		removed: map[string]bool{}, logs: map[string]*engLog{}, states: map[string]*ctrState{},
		specs: map[string]ContainerSpec{}, level: map[string]int{}, extra: t.Labels,
		vols: map[string]string{}, hostVols: map[string]bool{}, graceful: map[string]bool{},
	}
	// Tracked from now on, so that Cleanup stops it even while it starts.
	e.tasksMu.Lock()
	e.tasks[rt] = true
	e.tasksMu.Unlock()
	err := rt.start(ctx, t)
	if err == nil {
		rt.mu.Lock()
		if rt.stopped {
			err = fmt.Errorf("taskrun: task %s was stopped (Stop or Cleanup) while it started", t.ID)
		}
		rt.mu.Unlock()
	}
	if err != nil {
		// Remove what was created, even if ctx is done.
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		if serr := rt.Stop(sctx); serr != nil {
			e.log("taskrun: task %s: cleaning up after a failed start: %v", t.ID, serr)
		}
		return nil, err
	}
	e.log("taskrun: task %s started (%d containers, ports %v) in %s (sandbox %s)", t.ID, len(t.Containers), rt.ports, time.Since(t0).Round(time.Millisecond), rt.tSbx.Round(time.Millisecond))
	return rt, nil
}

func engValidate(t TaskSpec) error {
	if t.ID == "" {
		return errors.New("taskrun: task has no ID")
	}
	if len(t.Containers) == 0 {
		return fmt.Errorf("taskrun: task %s has no container", t.ID)
	}
	seen := map[string]bool{}
	essential := false
	ports := map[int]string{}
	for i, c := range t.Containers {
		if c.Name == "" {
			return fmt.Errorf("taskrun: task %s: container %d has no name", t.ID, i)
		}
		if seen[c.Name] {
			return fmt.Errorf("taskrun: task %s: two containers are named %s", t.ID, c.Name)
		}
		seen[c.Name] = true
		if c.Image == "" {
			return fmt.Errorf("taskrun: task %s: container %s has no image", t.ID, c.Name)
		}
		essential = essential || c.Essential
		for _, p := range c.PortMappings {
			if p <= 0 || p > 65535 {
				return fmt.Errorf("taskrun: task %s: container %s maps port %d (want 1-65535)", t.ID, c.Name, p)
			}
			// awsvpc: one namespace, so two containers cannot map one port.
			if o, dup := ports[p]; dup && o != c.Name {
				return fmt.Errorf("taskrun: task %s: containers %s and %s both map port %d (awsvpc: the task's containers share one network namespace)", t.ID, o, c.Name, p)
			}
			ports[p] = c.Name
		}
	}
	vols := map[string]bool{}
	for _, v := range t.Volumes {
		if v.Name == "" {
			return fmt.Errorf("taskrun: task %s has a volume without a name", t.ID)
		}
		if vols[v.Name] {
			return fmt.Errorf("taskrun: task %s: two volumes are named %s", t.ID, v.Name)
		}
		vols[v.Name] = true
		if v.Docker != nil && v.HostPath != "" {
			return fmt.Errorf("taskrun: task %s: volume %s has both a dockerVolumeConfiguration and a host sourcePath (ECS takes one)", t.ID, v.Name)
		}
		if v.HostPath != "" && !strings.HasPrefix(v.HostPath, "/") {
			return fmt.Errorf("taskrun: task %s: volume %s: host sourcePath %q is not absolute", t.ID, v.Name, v.HostPath)
		}
		if d := v.Docker; d != nil && d.Scope != "" && d.Scope != "task" && d.Scope != "shared" {
			return fmt.Errorf("taskrun: task %s: volume %s has scope %q (want task or shared)", t.ID, v.Name, d.Scope)
		}
	}
	for _, c := range t.Containers {
		for _, m := range c.Mounts {
			if !vols[m.SourceVolume] {
				return fmt.Errorf("taskrun: task %s: container %s mounts volume %q, which the task definition does not declare in volumes", t.ID, c.Name, m.SourceVolume)
			}
			if !strings.HasPrefix(m.ContainerPath, "/") {
				return fmt.Errorf("taskrun: task %s: container %s mounts volume %s at %q, not an absolute path", t.ID, c.Name, m.SourceVolume, m.ContainerPath)
			}
		}
	}
	if !essential {
		// "Amazon ECS task definition parameters": all tasks must have at
		// least one essential container.
		return fmt.Errorf("taskrun: task %s has no essential container (ECS requires at least one)", t.ID)
	}
	_, err := DependencyLevels(t.Containers)
	if err != nil {
		return fmt.Errorf("taskrun: task %s: %w", t.ID, err)
	}
	return nil
}

// DependencyLevels checks the containers' dependsOn and returns each
// container's depth: 0 for one that depends on nothing, else one more than
// its deepest dependency. Containers start in increasing and stop in
// decreasing depth. From the ECS API reference, ContainerDependency
// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDependency.html):
// the conditions are START, COMPLETE, SUCCESS and HEALTHY; COMPLETE and
// SUCCESS "can't be set on an essential container"; HEALTHY "requires that
// the dependent container has health checks configured"; "when a
// dependency is defined for container startup, for container shutdown it
// is reversed".
func DependencyLevels(cs []ContainerSpec) (map[string]int, error) {
	by := map[string]ContainerSpec{}
	for _, c := range cs {
		by[c.Name] = c
	}
	for _, c := range cs {
		for _, d := range c.DependsOn {
			dep, ok := by[d.Container]
			switch {
			case !ok:
				return nil, fmt.Errorf("container %s depends on %q, which the task definition does not have", c.Name, d.Container)
			case d.Container == c.Name:
				return nil, fmt.Errorf("container %s depends on itself", c.Name)
			}
			switch d.Condition {
			case "START":
			case "COMPLETE", "SUCCESS":
				if dep.Essential {
					return nil, fmt.Errorf("container %s depends on %s %s, but %s is essential (ECS allows COMPLETE and SUCCESS only on a container that is not essential)", c.Name, d.Container, d.Condition, d.Container)
				}
			case "HEALTHY":
				if dep.HealthCheck == nil {
					return nil, fmt.Errorf("container %s depends on %s HEALTHY, but %s has no healthCheck", c.Name, d.Container, d.Container)
				}
			default:
				return nil, fmt.Errorf("container %s depends on %s with condition %q (want START, COMPLETE, SUCCESS or HEALTHY)", c.Name, d.Container, d.Condition)
			}
		}
	}
	level := map[string]int{}
	visiting := map[string]bool{}
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		if _, done := level[name]; done {
			return nil
		}
		if visiting[name] {
			return fmt.Errorf("dependsOn has a cycle: %s", strings.Join(append(path, name), " -> "))
		}
		visiting[name] = true
		l := 0
		for _, d := range by[name].DependsOn {
			if err := visit(d.Container, append(path, name)); err != nil {
				return err
			}
			l = max(l, level[d.Container]+1)
		}
		level[name] = l
		return nil
	}
	for _, c := range cs {
		if err := visit(c.Name, nil); err != nil {
			return nil, err
		}
	}
	return level, nil
}

func (rt *RunningTask) labels(role string) map[string]string {
	l := map[string]string{}
	for k, v := range rt.extra {
		l[k] = v
	}
	l[rt.e.labelKey], l[engTaskLabel], l[engTaskLabel+".role"] = rt.e.labelVal, rt.id, role
	return l
}

// start starts the task: its network sandbox, then its containers in
// dependency order.
func (rt *RunningTask) start(ctx context.Context, t TaskSpec) error {
	if err := rt.startSandbox(ctx, t); err != nil {
		return err
	}
	return rt.startContainers(ctx, t)
}

// startSandbox creates and starts the container that owns the task's
// network namespace, and learns the host ports it publishes.
func (rt *RunningTask) startSandbox(ctx context.Context, t TaskSpec) error {
	e := rt.e
	// The sandbox owns the task's network namespace and publishes its port
	// mappings. It runs the first container's image with the entrypoint
	// overridden to sleep: the stack's base images (python:3.13-alpine and
	// node:22-alpine, busybox-based; postgres:18, Debian) all have sleep,
	// so no pause image has to be pulled.
	exposed := dnet.PortSet{}
	bindings := dnet.PortMap{}
	var all []int
	for _, c := range t.Containers {
		all = append(all, c.PortMappings...)
	}
	sort.Ints(all)
	for _, p := range all {
		port, ok := dnet.PortFrom(uint16(p), dnet.TCP)
		if !ok {
			return fmt.Errorf("taskrun: task %s: port %d", t.ID, p)
		}
		exposed[port] = struct{}{}
		bindings[port] = []dnet.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: ""}}
	}
	if err := rt.provisionVolumes(ctx, t); err != nil {
		return err
	}
	sbName := e.ContainerName(t.ID, "sandbox") + ".pause" // a dot: no ECS container name can collide
	t0 := time.Now()
	res, err := e.cli.ContainerCreate(ctx, dcli.ContainerCreateOptions{
		Name: sbName,
		Config: &dctr.Config{
			Image:        t.Containers[0].Image,
			Entrypoint:   []string{"sleep"},
			Cmd:          []string{"2147483647"},
			ExposedPorts: exposed,
			Labels:       rt.labels("sandbox"),
		},
		HostConfig: &dctr.HostConfig{PortBindings: bindings},
	})
	if err != nil {
		return fmt.Errorf("taskrun: task %s: creating the network sandbox %s: %w (a leftover of an earlier run? Engine.Cleanup removes them)", t.ID, sbName, err)
	}
	rt.mu.Lock()
	rt.sandbox = res.ID
	rt.mu.Unlock()
	if _, err := e.cli.ContainerStart(ctx, res.ID, dcli.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("taskrun: task %s: starting the network sandbox %s: %w", t.ID, sbName, err)
	}
	if len(all) > 0 {
		ins, err := e.cli.ContainerInspect(ctx, res.ID, dcli.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("taskrun: task %s: inspecting the network sandbox %s: %w", t.ID, sbName, err)
		}
		for _, p := range all {
			port, _ := dnet.PortFrom(uint16(p), dnet.TCP)
			var bs []dnet.PortBinding
			if ins.Container.NetworkSettings != nil {
				bs = ins.Container.NetworkSettings.Ports[port]
			}
			for _, b := range bs {
				if n, err := strconv.Atoi(b.HostPort); err == nil && n > 0 {
					rt.ports[p] = n
					break
				}
			}
			if rt.ports[p] == 0 {
				return fmt.Errorf("taskrun: task %s: the engine published no host port for container port %d (bindings %v)", t.ID, p, bs)
			}
		}
	}

	rt.tSbx = time.Since(t0)
	return nil
}

// startContainers starts the task's containers.
func (rt *RunningTask) startContainers(ctx context.Context, t TaskSpec) error {
	// Each container starts once its dependencies' conditions hold
	// (dependsOn); the others start concurrently, as ECS starts a task's
	// containers. Each one's exit is watched from its start.
	rt.mu.Lock()
	rt.level, _ = DependencyLevels(t.Containers)
	for _, c := range t.Containers {
		lg := &engLog{done: make(chan struct{})}
		if out := t.Output; out != nil {
			name := c.Name
			lg.out = func(line string) { out(name, line) }
		}
		rt.logs[c.Name] = lg
		rt.states[c.Name] = &ctrState{started: make(chan struct{}), exited: make(chan struct{}), healthy: make(chan struct{})}
		rt.specs[c.Name] = c
	}
	rt.mu.Unlock()
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	errs := make([]error, len(t.Containers))
	var wg sync.WaitGroup
	for i, c := range t.Containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rt.waitDeps(sctx, c); err != nil {
				errs[i] = err
				scancel()
				return
			}
			if err := rt.startContainer(sctx, c); err != nil {
				errs[i] = err
				scancel()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitDeps returns once each of c's dependencies meets its condition, or
// with an error when one cannot any more.
func (rt *RunningTask) waitDeps(ctx context.Context, c ContainerSpec) error {
	for _, d := range c.DependsOn {
		st := rt.states[d.Container]
		var ch, fail chan struct{}
		switch d.Condition {
		case "START":
			ch = st.started
		case "COMPLETE", "SUCCESS":
			ch = st.exited
		case "HEALTHY":
			ch, fail = st.healthy, st.exited
		}
		for waiting := true; waiting; {
			select {
			case <-ch:
				waiting = false
			case <-fail:
				// Exited before it was healthy.
				rt.mu.Lock()
				code := st.code
				rt.mu.Unlock()
				return fmt.Errorf("taskrun: task %s: container %s depends on %s HEALTHY, but %s exited with code %d first (its last output: %s)",
					rt.id, c.Name, d.Container, d.Container, code, strings.Join(rt.Logs(d.Container, 5), " | "))
			case <-rt.over:
				return fmt.Errorf("taskrun: task %s: container %s did not start: the task ended while it waited for %s %s", rt.id, c.Name, d.Container, d.Condition)
			case <-ctx.Done():
				return fmt.Errorf("taskrun: task %s: container %s did not start: waiting for %s %s: %w", rt.id, c.Name, d.Container, d.Condition, ctx.Err())
			}
		}
		if d.Condition == "SUCCESS" {
			rt.mu.Lock()
			code := st.code
			rt.mu.Unlock()
			if code != 0 {
				return fmt.Errorf("taskrun: task %s: container %s depends on %s SUCCESS, but %s exited with code %d (its last output: %s)",
					rt.id, c.Name, d.Container, d.Container, code, strings.Join(rt.Logs(d.Container, 5), " | "))
			}
		}
	}
	return nil
}

// provisionVolumes makes the task's Docker volumes: a shared one is used
// if it exists and created if not (with autoprovision; else the task fails
// to start), a task-scoped one is created for this task.
func (rt *RunningTask) provisionVolumes(ctx context.Context, t TaskSpec) error {
	e := rt.e
	for _, v := range t.Volumes {
		if v.HostPath != "" {
			rt.vols[v.Name], rt.hostVols[v.Name] = v.HostPath, true
			continue
		}
		d := v.Docker
		if d == nil {
			d = &DockerVolumeSpec{Scope: "task"}
		}
		labels := map[string]string{}
		for k, val := range t.Labels {
			labels[k] = val
		}
		for k, val := range d.Labels {
			labels[k] = val
		}
		labels[e.labelKey] = e.labelVal
		if d.Scope == "shared" {
			name := SharedVolume(t.Group, v.Name)
			if t.VolumePrefix != "" {
				name = engNameRE.ReplaceAllString(t.VolumePrefix+"-"+v.Name, "-")
			}
			_, err := e.cli.VolumeInspect(ctx, name, dcli.VolumeInspectOptions{})
			switch {
			case err == nil:
			case !cerrdefs.IsNotFound(err):
				return fmt.Errorf("taskrun: task %s: inspecting the shared volume %s (volume %s): %w", t.ID, name, v.Name, err)
			case !d.Autoprovision:
				return fmt.Errorf("taskrun: task %s: the shared Docker volume %s (volume %s) does not exist and autoprovision is false (create it, or set autoprovision: true)", t.ID, name, v.Name)
			default:
				labels[engGroupLabel] = t.Group
				if _, err := e.cli.VolumeCreate(ctx, dcli.VolumeCreateOptions{Name: name, Driver: d.Driver, DriverOpts: d.DriverOpts, Labels: labels}); err != nil {
					return fmt.Errorf("taskrun: task %s: creating the shared volume %s (volume %s, driver %q): %w", t.ID, name, v.Name, d.Driver, err)
				}
				e.log("taskrun: task %s: created the shared volume %s (autoprovision)", t.ID, name)
			}
			rt.vols[v.Name] = name
			continue
		}
		name := engName(t.ID, v.Name) + ".vol"
		labels[engTaskLabel] = t.ID
		labels[engTaskLabel+".role"] = "volume"
		if _, err := e.cli.VolumeCreate(ctx, dcli.VolumeCreateOptions{Name: name, Driver: d.Driver, DriverOpts: d.DriverOpts, Labels: labels}); err != nil {
			return fmt.Errorf("taskrun: task %s: creating the task volume %s (volume %s): %w", t.ID, name, v.Name, err)
		}
		rt.mu.Lock()
		rt.vols[v.Name] = name
		rt.taskVols = append(rt.taskVols, name)
		rt.mu.Unlock()
	}
	return nil
}

func (rt *RunningTask) startContainer(ctx context.Context, c ContainerSpec) error {
	e := rt.e
	lg := rt.logs[c.Name]
	hc := &dctr.HostConfig{NetworkMode: dctr.NetworkMode("container:" + rt.sandbox)}
	for _, m := range c.Mounts {
		src := rt.vols[m.SourceVolume]
		if rt.hostVols[m.SourceVolume] {
			// Binds (not Mounts) so that a missing host path is created,
			// as the ECS agent does for a host sourcePath.
			b := src + ":" + m.ContainerPath
			if m.ReadOnly {
				b += ":ro"
			}
			hc.Binds = append(hc.Binds, b)
			continue
		}
		hc.Mounts = append(hc.Mounts, dmount.Mount{Type: dmount.TypeVolume, Source: src, Target: m.ContainerPath, ReadOnly: m.ReadOnly})
	}
	env := make([]string, 0, len(c.Environment))
	for k, v := range c.Environment {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	cfg := &dctr.Config{Image: c.Image, Env: env, Labels: rt.labels("container"), WorkingDir: c.WorkingDir, User: c.User}
	cfg.Labels[engTaskLabel+".level"] = strconv.Itoa(rt.level[c.Name])
	if len(c.EntryPoint) > 0 {
		cfg.Entrypoint = c.EntryPoint
		if len(c.Command) == 0 {
			// As in ECS: an entryPoint without command drops the image's CMD.
			cfg.Cmd = []string{}
		}
	}
	if len(c.Command) > 0 {
		cfg.Cmd = c.Command
	}
	if h := c.HealthCheck; h != nil {
		cfg.Healthcheck = dockerHealth(h)
	}
	if c.Init {
		hc.Init = &yes
	}
	for _, u := range c.Ulimits {
		hc.Ulimits = append(hc.Ulimits, &dctr.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	hc.Memory = int64(c.Memory) << 20
	hc.MemoryReservation = int64(c.MemoryReservation) << 20
	if c.CPU > 0 {
		// Docker's minimum share is 2 ("Amazon ECS task definition
		// parameters", cpu: the agent passes the units as CpuShares).
		hc.CPUShares = int64(max(c.CPU, 2))
	}
	if c.StopTimeout > 0 {
		cfg.StopTimeout = &c.StopTimeout
	}
	name := e.ContainerName(rt.id, c.Name)
	res, err := e.cli.ContainerCreate(ctx, dcli.ContainerCreateOptions{
		Name:       name,
		Config:     cfg,
		HostConfig: hc,
	})
	if err != nil {
		close(lg.done)
		return fmt.Errorf("taskrun: task %s: creating container %s (%s): %w", rt.id, c.Name, name, err)
	}
	rt.mu.Lock()
	rt.ids[c.Name] = res.ID
	rt.graceful[res.ID] = len(c.Mounts) > 0 || c.StopTimeout > 0
	rt.order = append(rt.order, c.Name)
	rt.mu.Unlock()
	if _, err := e.cli.ContainerStart(ctx, res.ID, dcli.ContainerStartOptions{}); err != nil {
		close(lg.done)
		return fmt.Errorf("taskrun: task %s: starting container %s (%s): %w", rt.id, c.Name, name, err)
	}
	st := rt.states[c.Name]
	close(st.started)
	go rt.follow(c.Name, res.ID, lg)
	go rt.watch(c.Name, res.ID, c.Essential, lg)
	if c.HealthCheck != nil {
		rt.mu.Lock()
		st.health = "starting"
		rt.mu.Unlock()
		go rt.watchHealth(c.Name, res.ID, st)
	}
	return nil
}

var yes = true

// dockerHealth is Docker's HEALTHCHECK for an ECS healthCheck: the same
// command forms (CMD, CMD-SHELL) and fields, with ECS's defaults ("Amazon
// ECS task definition parameters", Health check: interval 30 s, timeout
// 5 s, retries 3). Docker runs the first check one interval after the
// start (the engine's API has no start interval before 1.44).
func dockerHealth(h *HealthCheck) *dctr.HealthConfig {
	c := &dctr.HealthConfig{Test: h.Command, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
	if c.Interval <= 0 {
		c.Interval = 30 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Retries <= 0 {
		c.Retries = 3
	}
	return c
}

// watchHealth follows a container's health status until it exits.
func (rt *RunningTask) watchHealth(name, id string, st *ctrState) {
	closed := false
	for {
		select {
		case <-st.exited:
			return
		case <-rt.ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
		ictx, cancel := context.WithTimeout(rt.ctx, 10*time.Second)
		ins, err := rt.e.cli.ContainerInspect(ictx, id, dcli.ContainerInspectOptions{})
		cancel()
		if err != nil || ins.Container.State == nil || ins.Container.State.Health == nil {
			continue
		}
		h := string(ins.Container.State.Health.Status)
		rt.mu.Lock()
		changed := st.health != h
		st.health = h
		rt.mu.Unlock()
		if changed {
			rt.e.log("taskrun: task %s: container %s is %s", rt.id, name, h)
		}
		if h == "healthy" && !closed {
			close(st.healthy)
			closed = true
		}
	}
}

// Health is a container's health status: "" without a healthCheck (or an
// unknown container), else "starting", "healthy" or "unhealthy".
func (rt *RunningTask) Health(name string) string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if st := rt.states[name]; st != nil {
		return st.health
	}
	return ""
}

// Started tells whether a container has started (and Exited whether it has
// exited since, with its code).
func (rt *RunningTask) Started(name string) bool {
	st := rt.states[name]
	if st == nil {
		return false
	}
	select {
	case <-st.started:
		return true
	default:
		return false
	}
}

// ContainerExit is whether a container exited, and its exit code.
func (rt *RunningTask) ContainerExit(name string) (int, bool) {
	st := rt.states[name]
	if st == nil {
		return 0, false
	}
	select {
	case <-st.exited:
		rt.mu.Lock()
		defer rt.mu.Unlock()
		return st.code, true
	default:
		return 0, false
	}
}

// follow copies a container's output into its log ring until the container
// stops (the stream then ends) or the task is stopped.
func (rt *RunningTask) follow(name, id string, lg *engLog) {
	defer close(lg.done)
	rc, err := rt.e.cli.ContainerLogs(rt.ctx, id, dcli.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		if rt.ctx.Err() == nil {
			rt.e.log("taskrun: task %s: reading the output of container %s: %v", rt.id, name, err)
		}
		return
	}
	defer rc.Close()
	out, errw := &engStream{log: lg}, &engStream{log: lg}
	_, _ = dstdcopy.StdCopy(out, errw, rc)
	out.flush()
	errw.flush()
}

// watch waits for a container to exit; the first essential exit ends the task.
func (rt *RunningTask) watch(name, id string, essential bool, lg *engLog) {
	w := rt.e.cli.ContainerWait(rt.ctx, id, dcli.ContainerWaitOptions{Condition: dctr.WaitConditionNotRunning})
	code := -1
	select {
	case r := <-w.Result:
		code = int(r.StatusCode)
	case err := <-w.Error:
		if rt.ctx.Err() != nil {
			return // Stop was called
		}
		rt.e.log("taskrun: task %s: waiting for container %s: %v", rt.id, name, err)
	}
	reason := ""
	ictx, icancel := context.WithTimeout(context.Background(), 10*time.Second)
	if ins, err := rt.e.cli.ContainerInspect(ictx, id, dcli.ContainerInspectOptions{}); err == nil && ins.Container.State != nil {
		code = ins.Container.State.ExitCode
		if ins.Container.State.OOMKilled {
			reason = "OutOfMemoryError: Container killed due to memory usage"
		}
	}
	icancel()
	// Let the output reach the log ring before reporting the exit.
	select {
	case <-lg.done:
	case <-time.After(5 * time.Second):
	}
	rt.mu.Lock()
	if st := rt.states[name]; st != nil {
		st.code = code
		close(st.exited)
	}
	if rt.stopped || rt.ended {
		rt.mu.Unlock()
		return
	}
	if !essential {
		rt.mu.Unlock()
		rt.e.log("taskrun: task %s: container %s (not essential) exited with code %d", rt.id, name, code)
		return
	}
	rt.ended = true
	rt.overOne.Do(func() { close(rt.over) })
	rt.mu.Unlock()
	rt.e.log("taskrun: task %s: essential container %s exited with code %d; stopping the task (Essential container in task exited)", rt.id, name, code)
	sctx, scancel := context.WithTimeout(context.Background(), 60*time.Second)
	if err := rt.stop(sctx, false); err != nil {
		rt.e.log("taskrun: task %s: %v", rt.id, err)
	}
	scancel()
	rt.cancel()
	rt.e.tasksMu.Lock()
	delete(rt.e.tasks, rt)
	rt.e.tasksMu.Unlock()
	rt.exited <- TaskExit{Container: name, ExitCode: code, Reason: reason}
}

// Exited receives once, when the first essential container exits; the
// task's other containers are then already stopped and removed (their
// output stays readable with Logs). It never receives after Stop.
func (rt *RunningTask) Exited() <-chan TaskExit { return rt.exited }

// Done is closed once the task ended (an essential container exited; it is
// closed before Exited receives) or was stopped.
func (rt *RunningTask) Done() <-chan struct{} { return rt.over }

// ID is the task's ID.
func (rt *RunningTask) ID() string { return rt.id }

// Stop stops and removes every container of the task; it is idempotent and
// can be retried after an error.
func (rt *RunningTask) Stop(ctx context.Context) error { return rt.stop(ctx, true) }

func (rt *RunningTask) stop(ctx context.Context, byUser bool) error {
	rt.mu.Lock()
	if byUser {
		rt.stopped = true
		rt.overOne.Do(func() { close(rt.over) })
	}
	sandbox := rt.sandbox
	// Reverse dependency order: the containers that depend on others stop
	// first, each level once the one above it is gone; one level's
	// containers stop together.
	byLevel := map[int][]string{}
	top := 0
	for _, n := range rt.order {
		if id := rt.ids[n]; id != "" && !rt.removed[id] {
			l := rt.level[n]
			byLevel[l] = append(byLevel[l], id)
			top = max(top, l)
		}
	}
	rt.mu.Unlock()
	var errs []error
	for l := top; l >= 0; l-- {
		ids := byLevel[l]
		lerrs := make([]error, len(ids))
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lerrs[i] = rt.remove(ctx, id)
			}()
		}
		wg.Wait()
		errs = append(errs, lerrs...)
	}
	// The sandbox last: the containers live in its namespace.
	if sandbox != "" {
		errs = append(errs, rt.remove(ctx, sandbox))
	}
	// Task-scoped volumes go with the task (once nothing uses them).
	if errors.Join(errs...) == nil {
		rt.mu.Lock()
		tv := rt.taskVols
		rt.mu.Unlock()
		var left []string
		for _, v := range tv {
			if _, err := rt.e.cli.VolumeRemove(ctx, v, dcli.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("removing the task volume %s: %w", v, err))
				left = append(left, v)
			}
		}
		rt.mu.Lock()
		rt.taskVols = left
		rt.mu.Unlock()
	}
	if byUser {
		// Let the log followers drain what the containers printed.
		rt.mu.Lock()
		var logs []*engLog
		for _, l := range rt.logs {
			logs = append(logs, l)
		}
		rt.mu.Unlock()
		drain := time.After(2 * time.Second)
	wait:
		for _, l := range logs {
			select {
			case <-l.done:
			case <-drain:
				break wait
			}
		}
		rt.cancel()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("taskrun: stopping task %s: %w (Engine.Cleanup removes leftovers)", rt.id, err)
	}
	if byUser {
		rt.e.tasksMu.Lock()
		delete(rt.e.tasks, rt)
		rt.e.tasksMu.Unlock()
		rt.e.log("taskrun: task %s stopped", rt.id)
	}
	return nil
}

func (rt *RunningTask) remove(ctx context.Context, id string) error {
	rt.mu.Lock()
	done := rt.removed[id]
	graceful := rt.graceful[id]
	tmo := engStopTimeout
	for n, cid := range rt.ids {
		if cid == id && rt.specs[n].StopTimeout > 0 {
			tmo = rt.specs[n].StopTimeout
		}
	}
	rt.mu.Unlock()
	if done {
		return nil
	}
	if graceful {
		// Its data outlives the task (or it has a stopTimeout): let it
		// shut down cleanly first.
		if _, err := rt.e.cli.ContainerStop(ctx, id, dcli.ContainerStopOptions{Timeout: &tmo}); err != nil && !cerrdefs.IsNotFound(err) {
			rt.e.log("taskrun: task %s: stopping container %.12s with its stop signal: %v (removing it anyway)", rt.id, id, err)
		}
	}
	if err := rt.e.remove(ctx, id); err != nil {
		return err
	}
	rt.mu.Lock()
	rt.removed[id] = true
	rt.mu.Unlock()
	return nil
}

// HostPort is the loopback port published for a container port of the task
// (0 if the task maps none). The engine's proxy accepts connections on it as
// soon as the task starts, before the container listens: probe readiness
// with a request (e.g. HTTP), not a bare TCP connect.
func (rt *RunningTask) HostPort(containerPort int) int { return rt.ports[containerPort] }

// Addr is "127.0.0.1:<HostPort>" for a container port ("" if none).
func (rt *RunningTask) Addr(containerPort int) string {
	p := rt.ports[containerPort]
	if p == 0 {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

// WaitHTTP returns once an HTTP GET of path on the task's published
// containerPort gets an answer (any status: something listens; the status
// is returned), the task
// ends (an error), or ctx is done. A bare TCP connect proves nothing: the
// engine's proxy accepts on the host port before the container listens.
func (rt *RunningTask) WaitHTTP(ctx context.Context, containerPort int, path string) (int, error) {
	addr := rt.Addr(containerPort)
	if addr == "" {
		return 0, fmt.Errorf("taskrun: task %s publishes no port %d", rt.id, containerPort)
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := "http://" + addr + path
	hc := &http.Client{Timeout: 2 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		last = err
		select {
		case <-rt.over:
			return 0, fmt.Errorf("taskrun: task %s ended before port %d answered (last try: %v)", rt.id, containerPort, last)
		case <-ctx.Done():
			return 0, fmt.Errorf("taskrun: task %s: port %d (%s) did not answer: %w (last try: %v)", rt.id, containerPort, url, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Logs is the last n lines (n <= 0: all kept, at most 2000) of a
// container's output, stdout and stderr interleaved as they arrived.
func (rt *RunningTask) Logs(name string, n int) []string {
	rt.mu.Lock()
	lg := rt.logs[name]
	rt.mu.Unlock()
	if lg == nil {
		return nil
	}
	return lg.last(n)
}

// Cleanup removes every container carrying the engine's label (leftovers of
// tasks not stopped, of an earlier run, ...).
func (e *Engine) Cleanup(ctx context.Context) error {
	label := e.labelKey
	if e.labelVal != "" {
		label += "=" + e.labelVal
	}
	var errs []error
	e.tasksMu.Lock()
	var running []*RunningTask
	for rt := range e.tasks {
		running = append(running, rt)
	}
	e.tasksMu.Unlock()
	for _, rt := range running {
		if err := rt.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	res, err := e.cli.ContainerList(ctx, dcli.ContainerListOptions{All: true, Filters: dcli.Filters{}.Add("label", label)})
	if err != nil {
		return fmt.Errorf("taskrun: listing the containers labelled %s on %s: %w", label, e.host, err)
	}
	// Task containers before sandboxes.
	sort.SliceStable(res.Items, func(i, j int) bool {
		return res.Items[i].Labels[engTaskLabel+".role"] != "sandbox" && res.Items[j].Labels[engTaskLabel+".role"] == "sandbox"
	})
	for _, c := range res.Items {
		if err := e.remove(ctx, c.ID); err != nil {
			errs = append(errs, fmt.Errorf("%v: %w", c.Names, err))
		}
	}
	// Task-scoped volumes left behind (shared ones persist, as in ECS: see
	// RemoveSharedVolumes).
	vres, err := e.cli.VolumeList(ctx, dcli.VolumeListOptions{Filters: dcli.Filters{}.Add("label", label).Add("label", engTaskLabel+".role=volume")})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing the task volumes labelled %s on %s: %w", label, e.host, err))
	}
	for _, v := range vres.Items {
		if _, err := e.cli.VolumeRemove(ctx, v.Name, dcli.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing the task volume %s: %w", v.Name, err))
		}
	}
	if len(res.Items)+len(running) > 0 {
		e.log("taskrun: cleanup stopped %d tasks and removed %d leftover containers labelled %s", len(running), len(res.Items), label)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("taskrun: cleanup: %w", err)
	}
	return nil
}

// RemoveSharedVolumes removes the shared volumes this engine created (with
// its label) for group ("<cluster>/<service>"; "" for every group), and
// returns their names. The tasks using them must be stopped first.
func (e *Engine) RemoveSharedVolumes(ctx context.Context, group string) ([]string, error) {
	label := e.labelKey
	if e.labelVal != "" {
		label += "=" + e.labelVal
	}
	f := dcli.Filters{}.Add("label", label)
	if group != "" {
		f = f.Add("label", engGroupLabel+"="+group)
	} else {
		f = f.Add("label", engGroupLabel)
	}
	res, err := e.cli.VolumeList(ctx, dcli.VolumeListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("taskrun: listing the shared volumes labelled %s on %s: %w", label, e.host, err)
	}
	var names []string
	var errs []error
	for _, v := range res.Items {
		if _, err := e.cli.VolumeRemove(ctx, v.Name, dcli.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing the shared volume %s: %w (is a task still using it?)", v.Name, err))
			continue
		}
		names = append(names, v.Name)
	}
	sort.Strings(names)
	return names, errors.Join(errs...)
}

// ensureImage pulls an image unless the engine has it by that reference;
// concurrent Starts share one pull per reference.
func (e *Engine) ensureImage(ctx context.Context, ref string) error {
	e.pullMu.Lock()
	p, ok := e.pulls[ref]
	if ok {
		e.pullMu.Unlock()
		select {
		case <-p.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if p.err == nil {
			return nil
		}
		// A failed pull is retried by the next Start.
		e.pullMu.Lock()
		if e.pulls[ref] == p {
			delete(e.pulls, ref)
		}
		e.pullMu.Unlock()
		return e.ensureImage(ctx, ref)
	}
	p = &engPull{done: make(chan struct{})}
	e.pulls[ref] = p
	e.pullMu.Unlock()
	p.err = e.pull(ctx, ref)
	close(p.done)
	if p.err != nil {
		e.pullMu.Lock()
		if e.pulls[ref] == p {
			delete(e.pulls, ref)
		}
		e.pullMu.Unlock()
	}
	return p.err
}

func (e *Engine) pull(ctx context.Context, ref string) error {
	if _, err := e.cli.ImageInspect(ctx, ref); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("inspecting image %s on %s: %w", ref, e.host, err)
	}
	named, err := dref.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("image %s is not a valid reference: %w", ref, err)
	}
	opts := dcli.ImagePullOptions{}
	if dom := dref.Domain(named); e.authHost != "" && dom == e.authHost || e.authHost == "" && config.IsLoopbackHost(dom) {
		opts.RegistryAuth = e.auth
	}
	t0 := time.Now()
	e.log("taskrun: pulling %s", ref)
	resp, err := e.cli.ImagePull(ctx, ref, opts)
	if err == nil {
		err = resp.Wait(ctx)
	}
	if err != nil {
		hint := ""
		if cerrdefs.IsUnauthorized(err) || strings.Contains(err.Error(), "unauthorized") {
			hint = " (check EngineOptions.RegistryUser/RegistryPassword)"
		}
		return fmt.Errorf("pulling image %s: %w%s", ref, err, hint)
	}
	e.log("taskrun: pulled %s in %s", ref, time.Since(t0).Round(time.Millisecond))
	return nil
}

// remove force-removes a container (killing it) and returns once it is
// gone, also when someone else's removal of it is in progress.
func (e *Engine) remove(ctx context.Context, id string) error {
	_, err := e.cli.ContainerRemove(ctx, id, dcli.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	if !strings.Contains(err.Error(), "already in progress") {
		return fmt.Errorf("removing container %.12s: %w", id, err)
	}
	for {
		_, err := e.cli.ContainerInspect(ctx, id, dcli.ContainerInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("removing container %.12s: still being removed: %w", id, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// engLog is a ring of a container's last output lines.
type engLog struct {
	mu    sync.Mutex
	lines []string
	done  chan struct{} // closed when the output stream ended
	out   func(line string)
}

func (l *engLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	if len(l.lines) > engLogLines {
		l.lines = append(l.lines[:0:0], l.lines[len(l.lines)-engLogLines:]...)
	}
	if l.out != nil {
		l.out(line)
	}
}

func (l *engLog) last(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n <= 0 || n > len(l.lines) {
		n = len(l.lines)
	}
	return append([]string(nil), l.lines[len(l.lines)-n:]...)
}

// engStream splits one output stream (stdout or stderr) into lines.
type engStream struct {
	log     *engLog
	partial []byte
}

func (s *engStream) Write(p []byte) (int, error) {
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.log.add(strings.TrimSuffix(string(s.partial[:i]), "\r"))
		s.partial = s.partial[i+1:]
	}
	if len(s.partial) > 64<<10 { // an endless line: cut it
		s.log.add(string(s.partial))
		s.partial = nil
	}
	return len(p), nil
}

func (s *engStream) flush() {
	if len(s.partial) > 0 {
		s.log.add(string(s.partial))
		s.partial = nil
	}
}

var _ io.Writer = (*engStream)(nil)

// ContainerStatus is what Inspect reports of a container by its Docker name.
type ContainerStatus struct {
	Exists, Running bool
	ExitCode        int
	Health          string      // "" without a health check
	Ports           map[int]int // published container port -> loopback host port
}

// Inspect reports a container's state by its Docker name (Exists false
// when there is none).
func (e *Engine) Inspect(ctx context.Context, name string) (ContainerStatus, error) {
	var st ContainerStatus
	ins, err := e.cli.ContainerInspect(ctx, name, dcli.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("taskrun: inspecting container %s on %s: %w", name, e.host, err)
	}
	st.Exists = true
	if s := ins.Container.State; s != nil {
		st.Running, st.ExitCode = s.Running, s.ExitCode
		if s.Health != nil {
			st.Health = string(s.Health.Status)
		}
	}
	st.Ports = map[int]int{}
	if ns := ins.Container.NetworkSettings; ns != nil {
		for p, bs := range ns.Ports {
			for _, b := range bs {
				if n, err := strconv.Atoi(b.HostPort); err == nil && n > 0 {
					st.Ports[int(p.Num())] = n
					break
				}
			}
		}
	}
	return st, nil
}

// SandboxName is the Docker name of task id's network sandbox, which
// publishes the task's ports.
func (e *Engine) SandboxName(id string) string { return e.ContainerName(id, "sandbox") + ".pause" }

// Containers lists the Docker names of the containers carrying label
// ("key=value"), running or not.
func (e *Engine) Containers(ctx context.Context, label string) ([]string, error) {
	res, err := e.cli.ContainerList(ctx, dcli.ContainerListOptions{All: true, Filters: dcli.Filters{}.Add("label", label)})
	if err != nil {
		return nil, fmt.Errorf("taskrun: listing the containers labelled %s on %s: %w", label, e.host, err)
	}
	var names []string
	for _, c := range res.Items {
		for _, n := range c.Names {
			names = append(names, strings.TrimPrefix(n, "/"))
		}
	}
	sort.Strings(names)
	return names, nil
}

// StopLabelled stops every container carrying the engine's label, also of
// tasks another process started: in reverse dependency order, each on its
// stop signal within its own stop timeout (the container's StopTimeout),
// then removes them, the sandboxes last. Volumes stay.
func (e *Engine) StopLabelled(ctx context.Context) error {
	label := e.labelKey
	if e.labelVal != "" {
		label += "=" + e.labelVal
	}
	res, err := e.cli.ContainerList(ctx, dcli.ContainerListOptions{All: true, Filters: dcli.Filters{}.Add("label", label)})
	if err != nil {
		return fmt.Errorf("taskrun: listing the containers labelled %s on %s: %w", label, e.host, err)
	}
	byLevel := map[int][]string{}
	top := 0
	var sandboxes []string
	for _, c := range res.Items {
		if c.Labels[engTaskLabel+".role"] == "sandbox" {
			sandboxes = append(sandboxes, c.ID)
			continue
		}
		l, _ := strconv.Atoi(c.Labels[engTaskLabel+".level"])
		byLevel[l] = append(byLevel[l], c.ID)
		top = max(top, l)
	}
	var errs []error
	var mu sync.Mutex
	for l := top; l >= 0; l-- {
		var wg sync.WaitGroup
		for _, id := range byLevel[l] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := e.cli.ContainerStop(ctx, id, dcli.ContainerStopOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
					e.log("taskrun: stopping container %.12s with its stop signal: %v (removing it anyway)", id, err)
				}
				if err := e.remove(ctx, id); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	for _, id := range sandboxes {
		if err := e.remove(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("taskrun: stopping the containers labelled %s: %w", label, err)
	}
	return nil
}
