package local

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hackforla/ctjdeploy/build"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// The detached load balancer is this test binary re-executed (as the tool
// re-executes itself).
func TestMain(m *testing.M) {
	if os.Getenv(HelperEnv) != "" {
		os.Exit(ServeHelper())
	}
	os.Exit(m.Run())
}

// syncBuf is a goroutine-safe buffer (the containers' output arrives on
// several goroutines).
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	st       *teststack.Stack
	env      *config.Environment
	port     int
	out, err *syncBuf
	deps     Deps
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// newFixture is the example's stage environment under a name of this
// test's own (its containers ctjdeploy-NAME-*, its volume
// ctjdeploy-NAME-pgdata), on a free port; everything is removed at the end.
func newFixture(t *testing.T) *fixture {
	st := teststack.Start(t)
	for k, v := range st.Env {
		t.Setenv(k, v)
	}
	t.Setenv("CHECKPOINT_DISABLE", "1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cf, err := config.Load(filepath.Join(st.RepoRoot, "example", "ctjdeploy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := cf.Env("stage")
	if err != nil {
		t.Fatal(err)
	}
	n := teststack.NewNames(t)
	env.Name = strings.TrimSuffix(n.Prefix, "-")
	b, err := build.NewDocker()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, env: env, port: freePort(t), out: &syncBuf{}, err: &syncBuf{},
		deps: Deps{Builder: b, Helper: []string{os.Args[0]}, StateDir: t.TempDir()}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, err := Run(ctx, Options{Env: env, Down: true, ResetData: true, Out: io.Discard, Err: io.Discard}, f.deps); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return f
}

func (f *fixture) run(ctx context.Context, o Options) (*Result, error) {
	o.Env, o.Out, o.Err = f.env, report.MaskWriter(f.out), report.MaskWriter(f.err)
	if o.Port == 0 {
		o.Port = f.port
	}
	if o.Tag == "" {
		o.Tag = "localtest"
	}
	res, err := Run(ctx, o, f.deps)
	_ = report.Flush(o.Out)
	_ = report.Flush(o.Err)
	return res, err
}

func (f *fixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d%s", f.port, path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (f *fixture) containers(t *testing.T) string {
	return strings.TrimSpace(docker(t, "ps", "-a", "--filter", "label="+EnvLabel+"="+f.env.Name, "--format", "{{.Names}}"))
}

func (f *fixture) psql(t *testing.T, sql string) string {
	t.Helper()
	return docker(t, "exec", NamePrefix+"-"+f.env.Name+"-pgdb", "psql", "-U", "civictechjobs_owner", "-d", "civictechjobs", "-tAc", sql)
}

// The example's real containers, detached: through the local load balancer
// / reaches next and /api/healthcheck reaches django, which reaches postgres
// on localhost; the env_file's secret is inside the container and in no
// output; a headless Chromium renders next's page with the healthcheck
// answer it fetched through the load balancer; a row written before
// --down is read back by the next run and gone after --reset-data.
//
// About 40 s: three starts of the real task (postgres initialises its
// volume twice; its health check first runs 5 s after its start).
func TestLocalExample(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	t0 := time.Now()
	res, err := f.run(ctx, Options{Detach: true})
	if err != nil {
		t.Fatalf("local --detach: %v\nstderr:\n%s", err, f.err)
	}
	t.Logf("local --detach (build cached) took %s", time.Since(t0).Round(100*time.Millisecond))
	if !strings.Contains(f.out.String(), res.URL) || !strings.Contains(f.out.String(), "local --down") {
		t.Errorf("the output names no URL and no way to stop: %q", f.out)
	}
	code, body := f.get(t, "/")
	if code != 200 || !strings.Contains(body, "Civic Tech Jobs (ctjdeploy example)") {
		t.Errorf("GET / = %d %q, want next's page", code, body)
	}
	code, body = f.get(t, "/api/healthcheck")
	if code != 200 || !strings.Contains(body, `"status":"ok"`) || !strings.Contains(body, `"database":"postgres on localhost:5432"`) {
		t.Errorf("GET /api/healthcheck = %d %q, want django's answer, with postgres reached on localhost", code, body)
	}
	// The secret from stage/stage.env is in the container, and in no output.
	env := docker(t, "exec", NamePrefix+"-"+f.env.Name+"-django", "env")
	if !strings.Contains(env, "SQL_PASSWORD=local-dummy-db-password") || !strings.Contains(env, "SECRET_KEY=local-dummy-django-secret-key") {
		t.Errorf("django's environment lacks the env_file's secrets:\n%s", env)
	}
	for _, l := range []string{docker(t, "inspect", "--format", "{{json .Config.Labels}}", NamePrefix+"-"+f.env.Name+"-pgdb")} {
		if !strings.Contains(l, `"ctjdeploy.env":"`+f.env.Name+`"`) {
			t.Errorf("pgdb's labels %s: no ctjdeploy.env=%s", l, f.env.Name)
		}
	}
	browser(t, res.URL)

	f.psql(t, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('row-before-down')")
	if _, err := f.run(ctx, Options{Down: true}); err != nil {
		t.Fatal(err)
	}
	if left := f.containers(t); left != "" {
		t.Fatalf("containers left after --down: %s", left)
	}
	if _, err := f.run(ctx, Options{Detach: true, NoBuild: false}); err != nil {
		t.Fatalf("second local --detach: %v\n%s", err, f.err)
	}
	if got := strings.TrimSpace(f.psql(t, "SELECT v FROM kept")); got != "row-before-down" {
		t.Errorf("after --down and local again: %q, want the row written before", got)
	}
	if _, err := f.run(ctx, Options{Down: true, ResetData: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.run(ctx, Options{Detach: true}); err != nil {
		t.Fatalf("third local --detach: %v\n%s", err, f.err)
	}
	if got := f.psql(t, "SELECT count(*) FROM pg_tables WHERE tablename = 'kept'"); strings.TrimSpace(got) != "0" {
		t.Errorf("after --reset-data the table is still there (%q)", got)
	}
	all := f.out.String() + f.err.String()
	for _, secret := range []string{"local-dummy-db-password", "local-dummy-django-secret-key"} {
		if strings.Contains(all, secret) {
			t.Errorf("a secret is in the output")
		}
	}
}

// browser opens url in headless Chromium (Debian's chromium), saves a
// screenshot under the test's output folder and checks the rendered DOM
// shows the healthcheck answer that the page fetched through the load
// balancer.
func browser(t *testing.T, url string) {
	t.Helper()
	bin := "/usr/bin/chromium"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing (scripts/stack installs it)", bin)
		}
		t.Logf("browser check skipped: %s is missing (apt-get install -y chromium)", bin)
		return
	}
	outDir := os.Getenv("CTJDEPLOY_ARTIFACTS")
	if outDir == "" {
		outDir = t.TempDir()
	}
	shot := filepath.Join(outDir, "local-"+t.Name()+".png")
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
		"--no-first-run", "--disable-dev-shm-usage", "--virtual-time-budget=10000"}
	run := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append(append(flags, "--user-data-dir="+t.TempDir()), args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
		return stdout.String()
	}
	t0 := time.Now()
	dom := run("--dump-dom", url)
	if !strings.Contains(dom, `healthcheck: 200 {"status":"ok"`) || !strings.Contains(dom, "postgres on localhost:5432") {
		t.Errorf("the page rendered in Chromium does not show the healthcheck answer:\n%s", dom)
	}
	run("--screenshot="+shot, "--window-size=1000,600", url)
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Errorf("no screenshot at %s: %v", shot, err)
	}
	t.Logf("chromium rendered %s (dom + screenshot %s) in %s", url, shot, time.Since(t0).Round(100*time.Millisecond))
}

// taskTemplate is a small task of busybox containers (the stack's base
// image): app exits with $CODE after a line; web serves and never exits.
const taskTemplate = `{
  "family": "t",
  "containerDefinitions": [
    {"name": "web", "image": "python:3.13-alpine", "essential": true, "portMappings": [{"containerPort": 8080}],
     "linuxParameters": {"initProcessEnabled": true},
     "entryPoint": ["sh", "-c"], "command": ["mkdir -p /w && echo page > /w/index.html && exec httpd -f -p 8080 -h /w"]},
    {"name": "app", "image": "python:3.13-alpine", "essential": true, "dependsOn": [{"containerName": "web", "condition": "START"}],
     "linuxParameters": {"initProcessEnabled": true},
     "secrets": [{"name": "APP_TOKEN", "valueFrom": "arn:aws:ssm:us-west-2:1:parameter/t"}],
     "entryPoint": ["sh", "-c"], "command": ["echo app-up; sleep {{ env "SLEEP" }}; echo app-giving-up >&2; exit 1"]}
  ]
}`

func smallFixture(t *testing.T, sleep string) *fixture {
	f := newFixture(t)
	dir := t.TempDir()
	td := filepath.Join(dir, "td.json")
	if err := os.WriteFile(td, []byte(taskTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	f.env.TaskDefinition = td
	f.env.Images = map[string]*config.Image{}
	f.env.Terraform = nil
	f.env.Local = &config.Local{Port: f.port}
	f.deps.Builder = nil
	f.deps.Getenv = func(k string) (string, bool) {
		v, ok := map[string]string{"SLEEP": sleep, "APP_TOKEN": "tok-3c9d1e-secret"}[k]
		return v, ok
	}
	return f
}

// An essential container that exits 1 ends the foreground run with exit 1,
// naming it, its exit code and its last log line; nothing is left.
func TestLocalEssentialExit(t *testing.T) {
	f := smallFixture(t, "2")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := f.run(ctx, Options{})
	if err == nil || exitcode.Of(err) != exitcode.Failed || !strings.Contains(err.Error(), "essential container app exited with code 1") || !strings.Contains(err.Error(), "app-giving-up") {
		t.Fatalf("run: exit %d, %v; want exit 1 naming app, code 1 and its last line", exitcode.Of(err), err)
	}
	if out := f.out.String(); !strings.Contains(out, "app | app-up") {
		t.Errorf("the output is not prefixed by the container name:\n%s", out)
	}
	if left := f.containers(t); left != "" {
		t.Errorf("containers left: %s", left)
	}
}

// A signal (the command's context is cancelled by SIGINT or SIGTERM; main
// maps them to 130 and 143) stops and removes the containers; the run says
// it was interrupted. The load balancer answered while it ran; the secret
// went into the container and into no output.
func TestLocalInterrupted(t *testing.T) {
	f := smallFixture(t, "300")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.run(ctx, Options{})
		done <- err
	}()
	if !teststack.Poll(60*time.Second, 100*time.Millisecond, func() bool { return strings.Contains(f.out.String(), "runs locally at") }) {
		t.Fatalf("not up after 60 s:\n%s\n%s", f.out, f.err)
	}
	if code, body := f.get(t, "/"); code != 200 || strings.TrimSpace(body) != "page" {
		t.Errorf("GET / through the load balancer = %d %q", code, body)
	}
	if env := docker(t, "exec", NamePrefix+"-"+f.env.Name+"-app", "env"); !strings.Contains(env, "APP_TOKEN=tok-3c9d1e-secret") {
		t.Errorf("the secret is not in app's environment")
	}
	t0 := time.Now()
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the run did not end within 60 s of the signal")
	}
	t.Logf("stopped in %s", time.Since(t0).Round(100*time.Millisecond))
	if exitcode.Of(err) != exitcode.Interrupted {
		t.Errorf("run after the signal: exit %d, %v", exitcode.Of(err), err)
	}
	if left := f.containers(t); left != "" {
		t.Errorf("containers left after the signal: %s", left)
	}
	if strings.Contains(f.out.String()+f.err.String(), "tok-3c9d1e-secret") {
		t.Error("the secret is in the output")
	}
}

// --dry-run prints the rendered task, secrets masked, and creates nothing.
func TestLocalDryRunCreatesNothing(t *testing.T) {
	f := newFixture(t)
	if _, err := f.run(context.Background(), Options{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	out := f.out.String()
	for _, want := range []string{"ctjdeploy/next:localtest", "SQL_PASSWORD=*** (secret, from local.env_file)", "/api/* -> django:8000", "/* -> next:3000", "ctjdeploy-" + f.env.Name + "-pgdata"} {
		if !strings.Contains(out, want) {
			t.Errorf("the dry run does not show %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "local-dummy") {
		t.Error("the dry run shows a secret")
	}
	if left := f.containers(t); left != "" {
		t.Errorf("a dry run created containers: %s", left)
	}
	if v := strings.TrimSpace(docker(t, "volume", "ls", "-q", "--filter", "label="+EnvLabel+"="+f.env.Name)); v != "" {
		t.Errorf("a dry run created volumes: %s", v)
	}
}

// The example's real containers, with django's entrypoint broken as the
// demo breaks it (a copy of the example in its own git repository): the
// foreground run ends with exit 1 naming django, its exit code 1 and its
// last line, and leaves no container.
func TestLocalExampleEssentialExit(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-r", filepath.Join(f.st.RepoRoot, "example")+"/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("copying the example: %v\n%s", err, out)
	}
	ep := filepath.Join(dir, "backend", "entrypoint.sh")
	b, err := os.ReadFile(ep)
	if err != nil {
		t.Fatal(err)
	}
	// It fails a few seconds in: a postgres still initialising its volume
	// runs under its entrypoint script, which ignores the stop signal, and
	// would take its whole 30 s stopTimeout to stop (as on ECS).
	broken := strings.Replace(string(b), "set -eu\n", "set -eu\nsleep 6\necho \"django.core.exceptions.ImproperlyConfigured: The SECRET_KEY setting must not be empty.\" >&2\nexit 1\n", 1)
	if err := os.WriteFile(ep, []byte(broken), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "broken django"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	cf, err := config.Load(filepath.Join(dir, "ctjdeploy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := cf.Env("stage")
	if err != nil {
		t.Fatal(err)
	}
	env.Name = f.env.Name
	f.env = env
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	t0 := time.Now()
	_, err = f.run(ctx, Options{Tag: "broken"})
	t.Logf("ended after %s", time.Since(t0).Round(100*time.Millisecond))
	if exitcode.Of(err) != exitcode.Failed || err == nil || !strings.Contains(err.Error(), "essential container django exited with code 1") ||
		!strings.Contains(err.Error(), "The SECRET_KEY setting must not be empty") {
		t.Fatalf("run: exit %d, %v; want exit 1 naming django, code 1 and its last line", exitcode.Of(err), err)
	}
	if left := f.containers(t); left != "" {
		t.Errorf("containers left: %s", left)
	}
}
