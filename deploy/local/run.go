package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hackforla/ctjdeploy/build"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/gitinfo"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/internal/taskrun"
	"github.com/hackforla/ctjdeploy/tfvars"
)

// Options are a `local` run's flags.
type Options struct {
	Env                                      *config.Environment
	Tag                                      string // the image tag (the commit): the local image ctjdeploy/NAME:TAG, or what --no-build pulls
	GitDir                                   string // the config's git repository ("" if none)
	NoBuild, Detach, Down, ResetData, DryRun bool
	Port                                     int // 0: local.port
	Verbose                                  bool
	Color                                    bool // color the container name prefixes
	// Out gets the containers' output (foreground) and the summary; Err
	// the progress and warnings. Both are masked by the caller.
	Out, Err io.Writer
	Reporter report.Reporter
}

// Deps are what a local run uses.
type Deps struct {
	Builder  build.Builder // nil with NoBuild, Down, DryRun
	Registry string        // the environment's registry (host[:port])
	// RegistryUser and RegistryPassword authenticate the pulls of
	// --no-build (the ECR token, as the push uses).
	RegistryUser, RegistryPassword string
	// Outputs reads the Terraform outputs (nil: tfvars.Read when
	// terraform: is set).
	Outputs func(ctx context.Context) (tfvars.Outputs, error)
	Getenv  func(string) (string, bool)
	// Helper starts the detached load balancer: the command that runs
	// ServeHelper (the tool's own binary; see StartHelper).
	Helper []string
	// StateDir holds the detached load balancer's state file (default:
	// the user cache folder's ctjdeploy/local).
	StateDir string
}

// Result is what a run did, for the caller's output.
type Result struct {
	URL  string
	Task *Task
}

// Run is `ctjdeploy ENV local`: render the task (a missing value is exit 2
// before anything is built), build the images, stop an earlier run of ENV,
// start the task's containers, wait until they are ready, and serve the
// load balancer in the foreground (or hand it to a detached helper).
func Run(ctx context.Context, o Options, d Deps) (*Result, error) {
	env := o.Env
	if o.Port == 0 {
		o.Port = env.Local.Port
	}
	if o.Port < 0 || o.Port > 65535 {
		return nil, exitcode.Invalidf("--port %d: want 1-65535", o.Port)
	}
	if o.Reporter == nil {
		o.Reporter = report.Discard
	}
	say := func(format string, args ...any) { fmt.Fprintf(o.Err, "ctjdeploy local: "+format+"\n", args...) }
	if o.DryRun {
		return dryRun(ctx, o, d, say)
	}
	eng, err := taskrun.NewEngine(taskrun.EngineOptions{Label: EnvLabel + "=" + env.Name, Prefix: NamePrefix,
		RegistryUser: d.RegistryUser, RegistryPassword: d.RegistryPassword, RegistryHost: d.Registry,
		Logf: func(f string, a ...any) {
			if o.Verbose {
				say(f, a...)
			}
		}})
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	lr := &localRun{o: o, d: d, eng: eng, say: say}
	if o.Down {
		if err := down(ctx, eng, env.Name, d, say); err != nil {
			return nil, err
		}
		if o.ResetData {
			return nil, resetData(ctx, eng, env.Name, say)
		}
		return &Result{}, nil
	}
	task, err := lr.prepare(ctx)
	if err != nil {
		return nil, err
	}
	ln, err := Listen(o.Port)
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Invalid, err)
	}
	res := &Result{URL: "http://" + ln.Addr().String() + "/", Task: task}
	rt, err := lr.start(ctx, task)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if o.Detach {
		return res, lr.detach(ln, rt, task, res.URL)
	}
	return res, lr.serve(ctx, ln, rt, task, res.URL)
}

// localRun is one `local` run with its engine.
type localRun struct {
	o   Options
	d   Deps
	eng *taskrun.Engine
	say func(format string, args ...any)
}

// prepare renders the task, builds its images and clears the way: an
// earlier run of ENV (detached, or killed) goes first, and with
// --reset-data its volumes.
func (lr *localRun) prepare(ctx context.Context) (*Task, error) {
	o, d, env := lr.o, lr.d, lr.o.Env
	task, err := renderLocal(ctx, o, d, lr.say)
	if err != nil {
		return nil, err
	}
	for _, w := range task.Warnings {
		lr.say("warning: %s", w)
	}
	if !o.NoBuild {
		if err := buildImages(ctx, o, d, o.Reporter); err != nil {
			return nil, err
		}
	}
	if err := down(ctx, lr.eng, env.Name, d, func(string, ...any) {}); err != nil {
		return nil, err
	}
	if o.ResetData {
		if err := resetData(ctx, lr.eng, env.Name, lr.say); err != nil {
			return nil, err
		}
	}
	return task, nil
}

// start starts the task's containers and waits until every essential one
// runs and every health check passes; on failure they are stopped.
func (lr *localRun) start(ctx context.Context, task *Task) (*taskrun.RunningTask, error) {
	o, env := lr.o, lr.o.Env
	if !o.Detach {
		task.Spec.Output = newPrefixer(o.Out, task, o.Color).line
	}
	t0 := time.Now()
	lr.say("starting %d containers of %s (%s)", len(task.Spec.Containers), env.Name, strings.Join(containerNames(task), ", "))
	rt, err := lr.eng.Start(ctx, task.Spec)
	if err != nil {
		if ctx.Err() != nil {
			return nil, exitcode.Wrap(exitcode.Interrupted, fmt.Errorf("interrupted while starting: %w", err))
		}
		return nil, fmt.Errorf("starting the local task: %w", err)
	}
	if err := waitReady(ctx, rt, task); err != nil {
		_ = stopTask(rt)
		if ctx.Err() != nil {
			return nil, exitcode.Wrap(exitcode.Interrupted, fmt.Errorf("interrupted before the task was ready; its containers are stopped and removed"))
		}
		return nil, err
	}
	lr.say("every essential container runs and every health check passes (%s)", time.Since(t0).Round(100*time.Millisecond))
	return rt, nil
}

// stopTask stops and removes the task's containers (within two minutes,
// whatever the run's context).
func stopTask(rt *taskrun.RunningTask) error {
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return rt.Stop(sctx)
}

// detach hands the listener to the detached load balancer and returns.
func (lr *localRun) detach(ln net.Listener, rt *taskrun.RunningTask, task *Task, url string) error {
	env := lr.o.Env
	spec := HelperSpec{Env: env.Name, Routes: task.Routes, Verbose: lr.o.Verbose}
	pid, err := StartHelper(lr.d.Helper, ln, spec, stateDir(lr.d), env.Name)
	ln.Close()
	if err != nil {
		_ = stopTask(rt)
		return fmt.Errorf("starting the detached local load balancer: %w (the containers are stopped)", err)
	}
	lr.say("load balancer: pid %d", pid)
	fmt.Fprintf(lr.o.Out, "%s runs locally at %s\nstop it with: ctjdeploy %s local --down\n", env.Name, url, env.Name)
	return nil
}

// serve runs the load balancer in the foreground until an essential
// container exits or ctx ends (Ctrl-C); the containers are stopped either
// way, the volumes kept.
func (lr *localRun) serve(ctx context.Context, ln net.Listener, rt *taskrun.RunningTask, task *Task, url string) error {
	env := lr.o.Env
	lb := &LB{Routes: task.Routes, Backend: DockerBackend(lr.eng, env.Name)}
	if lr.o.Verbose {
		lb.Logf = func(f string, a ...any) { lr.say("lb: "+f, a...) }
	}
	srv := &http.Server{Handler: lb, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	fmt.Fprintf(lr.o.Out, "%s runs locally at %s (Ctrl-C stops it)\n", env.Name, url)
	select {
	case x := <-rt.Exited():
		// The engine stopped the task; a container it was still creating
		// then goes now.
		_ = stopTask(rt)
		lines := rt.Logs(x.Container, 10)
		reason := ""
		if x.Reason != "" {
			reason = " (" + x.Reason + ")"
		}
		return fmt.Errorf("essential container %s exited with code %d%s; the task is stopped. Its last lines:\n  %s",
			x.Container, x.ExitCode, reason, strings.Join(lines, "\n  "))
	case <-ctx.Done():
		lr.say("stopping the containers (in reverse dependency order, each within its stopTimeout); the volumes are kept")
		if err := stopTask(rt); err != nil {
			return err
		}
		return exitcode.Wrap(exitcode.Interrupted, errors.New("stopped: the containers are removed, the volumes kept"))
	}
}

// waitReady returns once every essential container runs and every
// container with a health check is healthy; an essential container that
// exits or a health check that fails is an error.
func waitReady(ctx context.Context, rt *taskrun.RunningTask, task *Task) error {
	for {
		ready := true
		for _, c := range task.Spec.Containers {
			if code, exited := rt.ContainerExit(c.Name); exited && c.Essential {
				return fmt.Errorf("essential container %s exited with code %d before the task was ready. Its last lines:\n  %s", c.Name, code, strings.Join(rt.Logs(c.Name, 10), "\n  "))
			}
			if c.HealthCheck == nil {
				continue
			}
			switch rt.Health(c.Name) {
			case "healthy":
			case "unhealthy":
				if c.Essential {
					return fmt.Errorf("essential container %s failed its health check %q. Its last lines:\n  %s", c.Name, strings.Join(c.HealthCheck.Command, " "), strings.Join(rt.Logs(c.Name, 10), "\n  "))
				}
			default:
				ready = false
			}
		}
		if ready {
			return nil
		}
		select {
		case <-rt.Done():
			x := <-rt.Exited()
			return fmt.Errorf("essential container %s exited with code %d before the task was ready. Its last lines:\n  %s", x.Container, x.ExitCode, strings.Join(rt.Logs(x.Container, 10), "\n  "))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func containerNames(t *Task) []string {
	var n []string
	for _, c := range t.Spec.Containers {
		n = append(n, c.Name)
	}
	return n
}

// localRef is what {{ image }} names: the image a deploy builds
// (ctjdeploy/NAME:TAG), or with --no-build the one pushed under --tag.
func localRef(o Options, d Deps, name string) string {
	if o.NoBuild {
		return d.Registry + "/" + o.Env.Images[name].Repository + ":" + o.Tag
	}
	return build.EngineTag(name, o.Tag)
}

func readOutputs(ctx context.Context, env *config.Environment, d Deps, say func(string, ...any)) (tfvars.Outputs, error) {
	read := d.Outputs
	if read == nil {
		if env.Terraform == nil {
			return nil, nil
		}
		read = func(ctx context.Context) (tfvars.Outputs, error) {
			return tfvars.Read(ctx, tfvars.Options{Dir: env.Terraform.Dir, Workspace: env.Terraform.Workspace, Init: env.Terraform.Init})
		}
	}
	outs, err := read(ctx)
	if err != nil {
		// Locally Terraform is optional: local.values may hold it all.
		say("warning: Terraform's outputs could not be read (%v): {{ tf }} uses local.values only", err)
		return nil, nil
	}
	return outs, nil
}

// buildImages builds the images exactly as a deploy does (the same
// builder, labels, tag and registry cache); nothing is pushed.
func buildImages(ctx context.Context, o Options, d Deps, rep report.Reporter) error {
	source := ""
	if o.GitDir != "" {
		source = gitinfo.RemoteURL(ctx, o.GitDir)
	}
	p := report.Begin(rep, "build")
	cacheRegistry := d.Registry
	if d.Registry != "" {
		if err := build.RegistryAnswers(ctx, d.Registry, 5*time.Second); err != nil {
			cacheRegistry = ""
			p.Warnf("the registry %s does not answer (%v): building without its cache", d.Registry, err)
		}
	}
	_, err := build.BuildAll(ctx, d.Builder, build.EnvSpecs(o.Env, o.Tag, source, cacheRegistry), rep)
	return p.End(err)
}

// down stops the detached load balancer of env and removes every
// container labelled ctjdeploy.env=ENV (volumes stay).
func down(ctx context.Context, eng *taskrun.Engine, env string, d Deps, say func(string, ...any)) error {
	if pid := stopHelper(stateDir(d), env); pid != 0 {
		say("stopped the local load balancer (pid %d)", pid)
	}
	names, err := eng.Containers(ctx, EnvLabel+"="+env)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		say("no container of %s runs locally", env)
		return nil
	}
	if err := eng.StopLabelled(ctx); err != nil {
		return err
	}
	say("stopped and removed %d containers of %s (%s); the volumes are kept", len(names), env, strings.Join(names, ", "))
	return nil
}

func resetData(ctx context.Context, eng *taskrun.Engine, env string, say func(string, ...any)) error {
	vols, err := eng.RemoveSharedVolumes(ctx, "local/"+env)
	if err != nil {
		return err
	}
	if len(vols) == 0 {
		say("--reset-data: %s has no local volume", env)
	} else {
		say("--reset-data: removed the volumes %s", strings.Join(vols, ", "))
	}
	return nil
}

// renderLocal renders ENV's task for this machine: the Terraform outputs
// (local.values first), the local images' names, the secrets by name.
func renderLocal(ctx context.Context, o Options, d Deps, say func(string, ...any)) (*Task, error) {
	outs, err := readOutputs(ctx, o.Env, d, say)
	if err != nil {
		return nil, err
	}
	images := map[string]string{}
	for _, n := range o.Env.ImageNames() {
		images[n] = localRef(o, d, n)
	}
	return Render(o.Env, Inputs{Images: images, Outputs: outs, Getenv: d.Getenv})
}

func dryRun(ctx context.Context, o Options, d Deps, say func(string, ...any)) (*Result, error) {
	env := o.Env
	task, err := renderLocal(ctx, o, d, say)
	if err != nil {
		return nil, err
	}
	w := o.Out
	fmt.Fprintf(w, "local task of %s (dry run: nothing built, nothing started)\n", env.Name)
	for _, c := range task.Spec.Containers {
		ess := ""
		if c.Essential {
			ess = ", essential"
		}
		fmt.Fprintf(w, "\ncontainer %s (%s%s)\n  image: %s\n", c.Name, NamePrefix+"-"+env.Name+"-"+c.Name, ess, c.Image)
		if len(c.PortMappings) > 0 {
			fmt.Fprintf(w, "  ports: %v\n", c.PortMappings)
		}
		for _, dep := range c.DependsOn {
			fmt.Fprintf(w, "  dependsOn: %s %s\n", dep.Container, dep.Condition)
		}
		if c.HealthCheck != nil {
			fmt.Fprintf(w, "  healthCheck: %s\n", strings.Join(c.HealthCheck.Command, " "))
		}
		secret := map[string]bool{}
		for _, s := range task.Secrets[c.Name] {
			secret[s] = true
		}
		keys := make([]string, 0, len(c.Environment))
		for k := range c.Environment {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := c.Environment[k]
			if secret[k] {
				v = "*** (secret, from " + task.SecretFrom[k] + ")"
			}
			fmt.Fprintf(w, "  env %s=%s\n", k, v)
		}
		for _, m := range c.Mounts {
			fmt.Fprintf(w, "  volume %s at %s\n", task.Spec.VolumePrefix+"-"+m.SourceVolume, m.ContainerPath)
		}
	}
	fmt.Fprintf(w, "\nload balancer: http://127.0.0.1:%d/\n", cmpOr(o.Port, env.Local.Port))
	for _, r := range task.Routes {
		fmt.Fprintf(w, "  %s -> %s:%d\n", r.Path, r.Container, r.ContainerPort)
	}
	for _, wn := range task.Warnings {
		say("warning: %s", wn)
	}
	return &Result{Task: task}, nil
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// prefixer writes each container's lines prefixed by its name, padded to
// the longest name (colored on a terminal), one line at a time.
type prefixer struct {
	mu    sync.Mutex
	w     io.Writer
	width int
	color map[string]string
}

var palette = []string{"36", "33", "35", "32", "34", "31"}

func newPrefixer(w io.Writer, t *Task, color bool) *prefixer {
	p := &prefixer{w: w, color: map[string]string{}}
	for i, c := range t.Spec.Containers {
		p.width = max(p.width, len(c.Name))
		if color {
			p.color[c.Name] = palette[i%len(palette)]
		}
	}
	return p
}

func (p *prefixer) line(container, line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	name := fmt.Sprintf("%-*s |", p.width, container)
	if c := p.color[container]; c != "" {
		name = "\x1b[" + c + "m" + name + "\x1b[0m"
	}
	fmt.Fprintf(p.w, "%s %s\n", name, line)
}

// The detached load balancer: the tool's own binary, started in its own
// session with the listener inherited (fd 3), so that the port is bound
// before this command returns. Its pid is in a state file
// (STATE_DIR/ENV.lb.json); it also exits by itself once the task's
// sandbox container is gone (`--down`, or a removal by hand).

// HelperEnv is the environment variable that makes the binary serve the
// detached load balancer (ServeHelper) instead of running a command.
const HelperEnv = "CTJDEPLOY_LOCAL_LB"

// HelperSpec is what the detached load balancer gets (JSON in HelperEnv).
type HelperSpec struct {
	Env     string
	Routes  []Route
	Verbose bool
}

type helperState struct {
	PID  int    `json:"pid"`
	Addr string `json:"addr"`
}

func stateDir(d Deps) string {
	if d.StateDir != "" {
		return d.StateDir
	}
	if c, err := os.UserCacheDir(); err == nil {
		return filepath.Join(c, "ctjdeploy", "local")
	}
	return filepath.Join(os.TempDir(), "ctjdeploy-local")
}

// StartHelper starts argv (the tool's binary) as the detached load
// balancer on ln and records its pid; it returns once it answers.
func StartHelper(argv []string, ln net.Listener, spec HelperSpec, dir, env string) (int, error) {
	if len(argv) == 0 {
		return 0, errors.New("no helper command")
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		return 0, err
	}
	defer f.Close()
	js, _ := json.Marshal(spec)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("creating the state folder %s: %w", dir, err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, env+".lb.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), HelperEnv+"="+string(js))
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	st, _ := json.Marshal(helperState{PID: pid, Addr: ln.Addr().String()})
	if err := os.WriteFile(filepath.Join(dir, env+".lb.json"), st, 0o600); err != nil {
		_ = cmd.Process.Kill()
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	c := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case err := <-exited:
			return 0, fmt.Errorf("it exited at once (%v); its log: %s", err, filepath.Join(dir, env+".lb.log"))
		default:
		}
		if resp, err := c.Get("http://" + ln.Addr().String() + "/"); err == nil {
			resp.Body.Close()
			_ = cmd.Process.Release()
			return pid, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return 0, errors.New("it did not answer within 10 s")
}

// stopHelper stops env's detached load balancer, if its state file names
// a live one, and returns its pid (0: none).
func stopHelper(dir, env string) int {
	path := filepath.Join(dir, env+".lb.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	defer os.Remove(path)
	var st helperState
	if json.Unmarshal(b, &st) != nil || st.PID <= 0 {
		return 0
	}
	// Only a process that is the helper: a pid may have been reused.
	env0, err := os.ReadFile("/proc/" + strconv.Itoa(st.PID) + "/environ")
	if err != nil || !strings.Contains(string(env0), HelperEnv+"=") {
		return 0
	}
	p, err := os.FindProcess(st.PID)
	if err != nil {
		return 0
	}
	_ = p.Signal(syscall.SIGTERM)
	for i := 0; i < 50; i++ {
		if p.Signal(syscall.Signal(0)) != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The port is free once the process is gone.
	if st.Addr != "" {
		for i := 0; i < 30; i++ {
			c, err := net.DialTimeout("tcp", st.Addr, 100*time.Millisecond)
			if err != nil {
				break
			}
			c.Close()
			time.Sleep(100 * time.Millisecond)
		}
	}
	return st.PID
}

// ServeHelper is the detached load balancer's process (HelperEnv set):
// it serves on fd 3 until SIGTERM or until the task's sandbox is gone.
func ServeHelper() int {
	var spec HelperSpec
	if err := json.Unmarshal([]byte(os.Getenv(HelperEnv)), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "ctjdeploy local lb: %s: %v\n", HelperEnv, err)
		return 2
	}
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "ctjdeploy local lb: the inherited listener: %v\n", err)
		return 2
	}
	eng, err := taskrun.NewEngine(taskrun.EngineOptions{Label: EnvLabel + "=" + spec.Env, Prefix: NamePrefix})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ctjdeploy local lb: %v\n", err)
		return 1
	}
	lb := &LB{Routes: spec.Routes, Backend: DockerBackend(eng, spec.Env)}
	if spec.Verbose {
		lb.Logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, time.Now().Format(time.RFC3339)+" "+f+"\n", a...) }
	}
	srv := &http.Server{Handler: lb, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		missing := 0
		for {
			time.Sleep(time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			st, err := eng.Inspect(ctx, eng.SandboxName(spec.Env))
			cancel()
			if err == nil && !st.Exists {
				missing++
			} else {
				missing = 0
			}
			if missing >= 2 {
				fmt.Fprintf(os.Stderr, "ctjdeploy local lb: the task of %s is gone: exiting\n", spec.Env)
				_ = srv.Close()
				return
			}
		}
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "ctjdeploy local lb: %v\n", err)
		return 1
	}
	return 0
}
