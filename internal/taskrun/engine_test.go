package taskrun

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	dctr "github.com/moby/moby/api/types/container"
	dcli "github.com/moby/moby/client"

	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// engTestEngine skips without the stack and returns an engine whose
// containers carry a label of their own (so the test's Cleanup cannot touch
// containers of tests running at the same time), and the label.
func engTestEngine(t *testing.T) (*Engine, string, *teststack.LogBuf) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs containers on the stack's Docker engine; not in -short")
	}
	if os.Getenv("DOCKER_HOST") == "" {
		t.Skip("DOCKER_HOST unset: start the stack (scripts/stack up) and source /tmp/ctjdeploy-stack/env")
	}
	logs := &teststack.LogBuf{}
	label := "org.ctjdeploy.ecssim.test=" + teststack.RandHex(4)
	e, err := NewEngine(EngineOptions{RegistryUser: teststack.RegistryUser, RegistryPassword: teststack.RegistryPassword, Label: label, Logf: logs.Logf(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := e.Cleanup(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		_ = e.Close()
	})
	return e, label, logs
}

// engTaskContainers lists the containers (running or not) of a task.
func engTaskContainers(t *testing.T, e *Engine, taskID string) []string {
	t.Helper()
	res, err := e.cli.ContainerList(context.Background(), dcli.ContainerListOptions{All: true, Filters: dcli.Filters{}.Add("label", engTaskLabel+"="+taskID)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range res.Items {
		names = append(names, strings.Join(c.Names, ","))
	}
	return names
}

func engLabelled(t *testing.T, e *Engine, label string) []string {
	t.Helper()
	res, err := e.cli.ContainerList(context.Background(), dcli.ContainerListOptions{All: true, Filters: dcli.Filters{}.Add("label", label)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range res.Items {
		names = append(names, strings.Join(c.Names, ","))
	}
	return names
}

func engWaitLogs(t *testing.T, rt *RunningTask, ctr, want string, d time.Duration) []string {
	t.Helper()
	var lines []string
	if !teststack.Poll(d, 100*time.Millisecond, func() bool {
		lines = rt.Logs(ctr, 0)
		return slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, want) })
	}) {
		t.Fatalf("container %s: no line with %q within %s; output: %q", ctr, want, d, lines)
	}
	return lines
}

func TestEngineTwoContainersShareLocalhost(t *testing.T) {
	e, _, logs := engTestEngine(t)
	img := teststack.PageImage(t)
	ctx := context.Background()
	_, err := e.cli.ImageInspect(ctx, img)
	mustPull := cerrdefs.IsNotFound(err)

	id := "share-" + teststack.RandHex(4)
	t0 := time.Now()
	rt, err := e.Start(ctx, TaskSpec{ID: id, Containers: []ContainerSpec{
		{Name: "web", Image: img, Essential: true, PortMappings: []int{8080},
			Command: []string{"busybox", "httpd", "-f", "-p", "8080", "-h", "/www"}},
		{Name: "client", Image: img, Essential: false,
			Command: []string{"sh", "-c", "for i in $(seq 1 100); do wget -qO- http://127.0.0.1:8080/index.html && exit 0; sleep 0.1; done; echo never answered; exit 1"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Start (pull needed: %v) took %s", mustPull, time.Since(t0).Round(time.Millisecond))
	defer rt.Stop(ctx)
	if mustPull && !logs.Has("pulling "+img) {
		t.Errorf("the image was not on the engine, yet no pull was logged")
	}

	// B reached A on localhost: the page is in B's output.
	engWaitLogs(t, rt, "client", teststack.PageText, 20*time.Second)

	// The port mapping answers on the loopback interface.
	hp := rt.HostPort(8080)
	if hp == 0 {
		t.Fatalf("HostPort(8080) = 0")
	}
	if rt.HostPort(9999) != 0 {
		t.Errorf("HostPort(9999) = %d, want 0 (not mapped)", rt.HostPort(9999))
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", hp)
	hc := &http.Client{Timeout: 2 * time.Second}
	var body string
	t1 := time.Now()
	teststack.Poll(15*time.Second, 100*time.Millisecond, func() bool {
		resp, err := hc.Get(url)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return false
		}
		body = string(b)
		return true
	})
	if strings.TrimSpace(body) != teststack.PageText {
		t.Fatalf("GET %s = %q, want %q", url, body, teststack.PageText)
	}
	t.Logf("host port %d answered %s after Start returned", hp, time.Since(t1).Round(time.Millisecond))

	// The second Start of the same image does not pull.
	pulls := logs.Count("pulling ")
	id2 := "share2-" + teststack.RandHex(4)
	t2 := time.Now()
	rt2, err := e.Start(ctx, TaskSpec{ID: id2, Containers: []ContainerSpec{{Name: "web", Image: img, Essential: true, Command: []string{"sleep", "60"}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second Start (image present) took %s", time.Since(t2).Round(time.Millisecond))
	if n := logs.Count("pulling "); n != pulls {
		t.Errorf("the second Start of %s pulled again (%d pulls logged, %d before)", img, n, pulls)
	}
	if err := rt2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case x := <-rt.Exited():
		t.Fatalf("task exited: %+v (the non-essential client's exit must not end it)", x)
	default:
	}
}

func TestEngineEssentialExitStopsTask(t *testing.T) {
	e, _, _ := engTestEngine(t)
	img := teststack.PageImage(t)
	ctx := context.Background()
	id := "exit-" + teststack.RandHex(4)
	rt, err := e.Start(ctx, TaskSpec{ID: id, Containers: []ContainerSpec{
		{Name: "app", Image: img, Essential: true, Command: []string{"sleep", "300"}},
		{Name: "sidecar", Image: img, Essential: false, Command: []string{"sleep", "300"}},
		{Name: "worker", Image: img, Essential: true, EntryPoint: []string{"sh", "-c"}, Command: []string{"echo working; sleep 1; echo giving up >&2; exit 3"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Stop(ctx)
	if n := len(engTaskContainers(t, e, id)); n != 4 {
		t.Fatalf("task has %d containers on the engine, want 4 (sandbox + 3)", n)
	}
	var x TaskExit
	select {
	case x = <-rt.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("no TaskExit within 30s of an essential container exiting with 3")
	}
	if x.Container != "worker" || x.ExitCode != 3 || x.Reason != "" {
		t.Fatalf("TaskExit = %+v, want {worker 3 \"\"}", x)
	}
	if left := engTaskContainers(t, e, id); len(left) != 0 {
		t.Fatalf("after the essential exit, containers remain: %v", left)
	}
	for _, name := range []string{engName(id, "app"), engName(id, "sidecar"), engName(id, "worker")} {
		if _, err := e.cli.ContainerInspect(ctx, name, dcli.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
			t.Errorf("inspect %s: %v, want not found", name, err)
		}
	}
	// Both streams of the exited container stay readable.
	lines := rt.Logs("worker", 0)
	if strings.Join(lines, "|") != "working|giving up" {
		t.Errorf("Logs(worker) = %q, want [working giving up]", lines)
	}
	if got := rt.Logs("worker", 1); len(got) != 1 || got[0] != "giving up" {
		t.Errorf("Logs(worker, 1) = %q", got)
	}
	select {
	case x := <-rt.Exited():
		t.Fatalf("a second TaskExit: %+v", x)
	case <-time.After(500 * time.Millisecond):
	}
	if err := rt.Stop(ctx); err != nil {
		t.Fatalf("Stop after the exit: %v", err)
	}
}

func TestEngineEnvironment(t *testing.T) {
	e, _, _ := engTestEngine(t)
	img := teststack.PageImage(t)
	ctx := context.Background()
	rt, err := e.Start(ctx, TaskSpec{ID: "env-" + teststack.RandHex(4), Containers: []ContainerSpec{
		{Name: "app", Image: img, Essential: true,
			Environment: map[string]string{"GREETING": "hello world", "WITH_EQ": "a=b", "EMPTY": ""},
			Command:     []string{"sh", "-c", `echo "G=$GREETING"; echo "W=$WITH_EQ"; echo "E=[${EMPTY-unset}]"`}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Stop(ctx)
	select {
	case x := <-rt.Exited():
		if x.Container != "app" || x.ExitCode != 0 {
			t.Fatalf("TaskExit = %+v, want {app 0}", x)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no TaskExit within 30s")
	}
	got := strings.Join(rt.Logs("app", 10), "|")
	if want := "G=hello world|W=a=b|E=[]"; got != want {
		t.Fatalf("Logs(app) = %q, want %q", got, want)
	}
	if rt.Logs("nosuch", 10) != nil {
		t.Errorf("Logs of an unknown container is not nil")
	}
}

func TestEngineStopAndCleanup(t *testing.T) {
	e, label, _ := engTestEngine(t)
	img := teststack.PageImage(t)
	ctx := context.Background()

	id := "stop-" + teststack.RandHex(4)
	rt, err := e.Start(ctx, TaskSpec{ID: id, Containers: []ContainerSpec{
		{Name: "app", Image: img, Essential: true, PortMappings: []int{8080}, Command: []string{"busybox", "httpd", "-f", "-p", "8080", "-h", "/www"}},
		{Name: "side", Image: img, Essential: false, Command: []string{"sleep", "300"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(engTaskContainers(t, e, id)); n != 3 {
		t.Fatalf("task has %d containers, want 3", n)
	}
	t0 := time.Now()
	if err := rt.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Stop took %s", time.Since(t0).Round(time.Millisecond))
	if left := engTaskContainers(t, e, id); len(left) != 0 {
		t.Fatalf("after Stop, containers remain: %v", left)
	}
	if err := rt.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	select {
	case x := <-rt.Exited():
		t.Fatalf("TaskExit after Stop: %+v", x)
	case <-time.After(300 * time.Millisecond):
	}

	// Leftovers: a task never stopped and a container of an earlier run.
	if _, err := e.Start(ctx, TaskSpec{ID: "left-" + teststack.RandHex(4), Containers: []ContainerSpec{{Name: "app", Image: img, Essential: true, Command: []string{"sleep", "300"}}}}); err != nil {
		t.Fatal(err)
	}
	k, v, _ := strings.Cut(label, "=")
	if _, err := e.cli.ContainerCreate(ctx, dcli.ContainerCreateOptions{Name: "ecssim-earlier-run-" + teststack.RandHex(4), Image: img, Config: nil}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cli.ContainerCreate(ctx, dcli.ContainerCreateOptions{Name: "ecssim-earlier-labelled-" + teststack.RandHex(4), Config: engCfg(img, map[string]string{k: v})}); err != nil {
		t.Fatal(err)
	}
	if n := len(engLabelled(t, e, label)); n != 3 {
		t.Fatalf("%d labelled containers before Cleanup, want 3", n)
	}
	if err := e.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if left := engLabelled(t, e, label); len(left) != 0 {
		t.Fatalf("after Cleanup, labelled containers remain: %v", left)
	}
	// The unlabelled container is not the engine's: Cleanup left it.
	res, err := e.cli.ContainerList(ctx, dcli.ContainerListOptions{All: true, Filters: dcli.Filters{}.Add("name", "ecssim-earlier-run-")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) == 0 {
		t.Fatalf("Cleanup removed a container without the label")
	}
	for _, c := range res.Items {
		_, _ = e.cli.ContainerRemove(ctx, c.ID, dcli.ContainerRemoveOptions{Force: true})
	}
}

func TestEngineFailedStartLeavesNothing(t *testing.T) {
	e, label, _ := engTestEngine(t)
	img := teststack.PageImage(t)
	ctx := context.Background()

	for _, bad := range []TaskSpec{
		{ID: "x", Containers: []ContainerSpec{{Name: "a", Image: img}}},
		{ID: "x", Containers: []ContainerSpec{{Name: "a", Image: img, Essential: true}, {Name: "a", Image: img}}},
		{ID: "x", Containers: []ContainerSpec{{Name: "a", Image: img, Essential: true, PortMappings: []int{80}}, {Name: "b", Image: img, PortMappings: []int{80}}}},
		{ID: "", Containers: []ContainerSpec{{Name: "a", Image: img, Essential: true}}},
	} {
		if _, err := e.Start(ctx, bad); err == nil {
			t.Errorf("Start(%+v) succeeded, want a validation error", bad)
		}
	}

	// The second container cannot start (no such executable): the sandbox
	// and the first container are removed again.
	id := "fail-" + teststack.RandHex(4)
	_, err := e.Start(ctx, TaskSpec{ID: id, Containers: []ContainerSpec{
		{Name: "app", Image: img, Essential: true, Command: []string{"sleep", "300"}},
		{Name: "broken", Image: img, Essential: true, EntryPoint: []string{"/no/such/binary"}},
	}})
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("Start = %v, want an error naming container broken", err)
	}
	if left := engTaskContainers(t, e, id); len(left) != 0 {
		t.Fatalf("after a failed Start, containers remain: %v", left)
	}

	// An image the registry does not have: the error names it.
	reg := os.Getenv("CTJDEPLOY_REGISTRY")
	missing := reg + "/ecssim-engine-test:missing-" + teststack.RandHex(4)
	_, err = e.Start(ctx, TaskSpec{ID: "missing-" + teststack.RandHex(4), Containers: []ContainerSpec{{Name: "app", Image: missing, Essential: true}}})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Start = %v, want an error naming %s", err, missing)
	}
	if strings.Contains(err.Error(), teststack.RegistryPassword) {
		t.Fatalf("the error shows the registry password")
	}
	if left := engLabelled(t, e, label); len(left) != 0 {
		t.Fatalf("containers remain: %v", left)
	}

	// Wrong registry credentials: the error says so, without the password.
	const wrong = "not-the-token-0123"
	bad, err := NewEngine(EngineOptions{RegistryUser: teststack.RegistryUser, RegistryPassword: wrong, Label: label})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_, err = bad.Start(ctx, TaskSpec{ID: "auth-" + teststack.RandHex(4), Containers: []ContainerSpec{{Name: "app", Image: missing, Essential: true}}})
	if err == nil || !strings.Contains(err.Error(), "RegistryPassword") || strings.Contains(err.Error(), wrong) {
		t.Fatalf("Start with a wrong registry password = %v, want an error pointing at the credentials (without them)", err)
	}
	t.Logf("wrong password: %v", err)
}

func engCfg(img string, labels map[string]string) *dctr.Config {
	return &dctr.Config{Image: img, Labels: labels, Cmd: []string{"true"}}
}

func TestEngineWaitHTTPWaitsForTheListener(t *testing.T) {
	e, _, _ := engTestEngine(t)
	img := teststack.PageImage(t)
	ctx := context.Background()
	rt, err := e.Start(ctx, TaskSpec{ID: "ready-" + teststack.RandHex(4), Containers: []ContainerSpec{
		{Name: "web", Image: img, Essential: true, PortMappings: []int{8080},
			Command: []string{"sh", "-c", "sleep 2; exec busybox httpd -f -p 8080 -h /www"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Stop(ctx)
	t0 := time.Now()
	// The engine's proxy accepts before anything listens in the container.
	if c, err := net.DialTimeout("tcp", rt.Addr(8080), time.Second); err != nil {
		t.Fatalf("TCP connect to %s: %v (the proxy no longer accepts early? then WaitHTTP's comment is wrong)", rt.Addr(8080), err)
	} else {
		c.Close()
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	code, err := rt.WaitHTTP(wctx, 8080, "/health.html")
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	t.Logf("WaitHTTP: %d after %s", code, took.Round(time.Millisecond))
	if code != 200 || took < 1500*time.Millisecond {
		t.Fatalf("WaitHTTP = %d after %s, want 200 after the 2 s the server sleeps", code, took)
	}

	// A task whose essential container ends: WaitHTTP gives up.
	rt2, err := e.Start(ctx, TaskSpec{ID: "noready-" + teststack.RandHex(4), Containers: []ContainerSpec{
		{Name: "web", Image: img, Essential: true, PortMappings: []int{8080}, Command: []string{"sh", "-c", "sleep 1; exit 2"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Stop(ctx)
	if _, err := rt2.WaitHTTP(wctx, 8080, "/"); err == nil || !strings.Contains(err.Error(), "ended") {
		t.Fatalf("WaitHTTP on an exiting task = %v, want an error saying it ended", err)
	}
	if x := <-rt2.Exited(); x.ExitCode != 2 {
		t.Fatalf("TaskExit = %+v, want code 2", x)
	}
	if _, err := rt2.WaitHTTP(wctx, 9999, "/"); err == nil {
		t.Fatalf("WaitHTTP on an unmapped port succeeded")
	}
}
