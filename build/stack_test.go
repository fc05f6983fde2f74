package build_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hackforla/ctjdeploy/build"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/internal/teststack"
	"github.com/hackforla/ctjdeploy/push"
)

// The test binary is also the credential helper the docker CLI runs
// (through a docker-credential-ctjdeploy symlink) for --cache-from.
func TestMain(m *testing.M) {
	if push.IsCredentialHelper() {
		os.Exit(push.RunCredentialHelper(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func nonce(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "n" + hex.EncodeToString(b)
}

func writeContext(t *testing.T, dockerfile string, files map[string]string) (dir, df string) {
	t.Helper()
	dir = t.TempDir()
	df = filepath.Join(dir, "Dockerfile")
	files["Dockerfile"] = dockerfile
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, df
}

func rmi(t *testing.T, st *teststack.Stack, ref string) {
	t.Cleanup(func() { _ = st.Command("/usr/bin/docker", "rmi", "-f", ref).Run() })
}

func TestBuildAllLabelsConcurrently(t *testing.T) {
	st := teststack.Start(t)
	st.Setenv(t)
	ex := st.ExampleDir()
	n := nonce(t)
	var rec report.Recorder
	d, err := build.NewDocker(build.WithReporter(&rec))
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"org.opencontainers.image.revision": n, "org.opencontainers.image.source": "https://github.com/hackforla/CivicTechJobs"}
	specs := []build.Spec{
		{Name: "django", Context: filepath.Join(ex, "backend"), Dockerfile: filepath.Join(ex, "stage", "django.dockerfile"), Labels: labels, Tag: "ctjdeploy-test/" + n + "-django:1"},
		{Name: "next", Context: filepath.Join(ex, "frontend"), Dockerfile: filepath.Join(ex, "stage", "next.dockerfile"), Labels: labels, Tag: "ctjdeploy-test/" + n + "-next:1"},
	}
	for _, s := range specs {
		rmi(t, st, s.Tag)
	}
	imgs, err := build.BuildAll(context.Background(), d, specs, &rec)
	if err != nil {
		t.Fatal(err)
	}
	for i, img := range imgs {
		if img.Name != specs[i].Name || img.LocalRef != specs[i].Tag || !strings.HasPrefix(img.ID, "sha256:") {
			t.Errorf("image %d = %+v", i, img)
		}
		out, err := st.Command("/usr/bin/docker", "image", "inspect", "-f", "{{json .Config.Labels}} {{.Id}}", img.LocalRef).Output()
		if err != nil {
			t.Fatal(err)
		}
		js, id, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
		var got map[string]string
		if err := json.Unmarshal([]byte(js), &got); err != nil {
			t.Fatal(err)
		}
		for k, v := range labels {
			if got[k] != v {
				t.Errorf("%s: label %s = %q, want %q", img.Name, k, got[k], v)
			}
		}
		if id != img.ID {
			t.Errorf("%s: engine id %s, Build returned %s", img.Name, id, img.ID)
		}
	}
	lines := map[string]int{}
	for _, e := range rec.All() {
		if e.Kind == report.Line && e.Phase == "build" {
			lines[e.Subject]++
		}
	}
	if lines["django"] == 0 || lines["next"] == 0 {
		t.Errorf("build output lines per image: %v", lines)
	}
}

func TestBuildFailureNamesStep(t *testing.T) {
	st := teststack.Start(t)
	st.Setenv(t)
	n := nonce(t)
	dir, df := writeContext(t, "FROM python:3.13-alpine\nRUN echo "+n+"\nRUN echo about-to-fail && false\nRUN echo never\n", map[string]string{})
	var rec report.Recorder
	d, err := build.NewDocker(build.WithReporter(&rec))
	if err != nil {
		t.Fatal(err)
	}
	_, err = build.BuildAll(context.Background(), d, []build.Spec{{Name: "django", Context: dir, Dockerfile: df, Tag: "ctjdeploy-test/" + n + ":1"}}, &rec)
	if err == nil {
		t.Fatal("a failing build succeeded")
	}
	if exitcode.Of(err) != exitcode.Failed {
		t.Errorf("exit code %d, want 1", exitcode.Of(err))
	}
	for _, w := range []string{"build of django", "at step [3/4] RUN echo about-to-fail && false", "exit code: 1", "about-to-fail", "last lines:"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

func TestBuildEngineUnreachable(t *testing.T) {
	st := teststack.Start(t)
	st.Setenv(t)
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/ctjdeploy.sock")
	dir, df := writeContext(t, "FROM python:3.13-alpine\n", map[string]string{})
	d, err := build.NewDocker()
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Build(context.Background(), build.Spec{Name: "next", Context: dir, Dockerfile: df, Tag: "x:1"})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the Docker engine") || !strings.Contains(err.Error(), "unix:///nonexistent/ctjdeploy.sock") || !strings.Contains(err.Error(), "DOCKER_HOST") {
		t.Errorf("error = %v", err)
	}
}

// pruneSteps removes, from the shared engine's build cache, only the records
// whose description contains word and the records built on them.
func pruneSteps(t *testing.T, st *teststack.Stack, word string) {
	t.Helper()
	type rec struct{ ID, Parent, Description string }
	// A build's records stay in use for a moment after it ends (the engine
	// says nothing when it lets them go): prune until none is left.
	gone := teststack.Poll(20*time.Second, 500*time.Millisecond, func() bool {
		out, err := st.Command("/usr/bin/docker", "system", "df", "-v", "--format", "{{json .BuildCache}}").Output()
		if err != nil {
			t.Fatal(err)
		}
		var recs []rec
		if err := json.Unmarshal(out, &recs); err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, r := range recs {
			if strings.Contains(r.Description, word) {
				ids[r.ID] = true
			}
		}
		if len(ids) == 0 {
			return true
		}
		for grew := true; grew; {
			grew = false
			for _, r := range recs {
				if ids[r.Parent] && !ids[r.ID] {
					ids[r.ID], grew = true, true
				}
			}
		}
		for id := range ids {
			_ = st.Command("/usr/bin/docker", "builder", "prune", "-af", "--filter", "id="+id).Run()
		}
		return false
	})
	if !gone {
		t.Fatalf("build cache records matching %s are still there", word)
	}
}

var cachedRE = regexp.MustCompile(`^#(\d+) CACHED$`)

// stepCached reports whether the step whose title contains word was CACHED.
func stepCached(evs []report.Event, word string) bool {
	step := ""
	for _, e := range evs {
		if e.Kind != report.Line {
			continue
		}
		if step == "" && strings.Contains(e.Message, "RUN") && strings.Contains(e.Message, word) {
			step, _, _ = strings.Cut(e.Message, " ")
		}
		if m := cachedRE.FindStringSubmatch(e.Message); m != nil && "#"+m[1] == step {
			return true
		}
	}
	return false
}

// A rebuild on an engine with no build cache for the app reuses the slow step
// from the image pushed to the registry (BuildKit inline cache, read with
// credentials from the ctjdeploy credential helper).
func TestBuildCacheFromRegistry(t *testing.T) {
	st := teststack.Start(t)
	st.Setenv(t)
	ctx := context.Background()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	n := nonce(t)
	names := teststack.NewNames(t)
	st.CreateRepository(t, names.BackendRepo, "")
	dir, df := writeContext(t, "FROM python:3.13-alpine\nRUN echo "+n+" && sleep 2 && head -c 1000000 /dev/urandom > /big\nCOPY app.txt /app.txt\n",
		map[string]string{"app.txt": "v1\n"})
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var rec1, rec2 report.Recorder
	d1, _ := build.NewDocker(build.WithReporter(&rec1))
	tag := "ctjdeploy-test/" + n + ":"
	rmi(t, st, tag+"1")
	rmi(t, st, tag+"2")
	img, err := d1.Build(ctx, build.Spec{Name: "django", Context: dir, Dockerfile: df, Tag: tag + "1"})
	if err != nil {
		t.Fatal(err)
	}
	if stepCached(rec1.All(), n) {
		t.Fatal("the first build of a new step was CACHED")
	}
	p, err := push.New(ctx, st.AWSConfig(t), push.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Push(ctx, img, push.Target{Registry: st.Registry, Repository: names.BackendRepo, Tags: []string{"stage"}}); err != nil {
		t.Fatal(err)
	}
	// A fresh runner: no image, no build cache for these steps.
	if err := st.Command("/usr/bin/docker", "rmi", tag+"1").Run(); err != nil {
		t.Fatal(err)
	}
	pruneSteps(t, st, n)
	if err := os.WriteFile(filepath.Join(dir, "app.txt"), []byte("v2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d2, _ := build.NewDocker(build.WithReporter(&rec2),
		build.WithCredentialHelper(exe, push.HelperName, []string{st.Registry}, push.HelperEnv(teststack.Region)...))
	if _, err := d2.Build(ctx, build.Spec{Name: "django", Context: dir, Dockerfile: df, Tag: tag + "2",
		CacheFrom: []string{st.Registry + "/" + names.BackendRepo + ":stage"}}); err != nil {
		t.Fatal(err)
	}
	if !stepCached(rec2.All(), n) {
		var b strings.Builder
		for _, e := range rec2.All() {
			b.WriteString(e.Message + "\n")
		}
		t.Errorf("the slow step was not reused from the registry:\n%s", b.String())
	}
	// The credential helper's temporary folder is gone; nothing holds the password.
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "ctjdeploy-build-") {
			t.Errorf("temporary folder %s left behind", e.Name())
		}
	}
	for _, e := range append(rec1.All(), rec2.All()...) {
		if strings.Contains(e.Message, teststack.RegistryPassword) {
			t.Errorf("the registry password appears in the build output: %s", e.Message)
		}
	}
}

// The example's next image (stages that fork and merge) carries an inline
// cache whose graph loops. Docker Engine 20.10's BuildKit dies importing
// it (moby/buildkit#2024): on such an engine the build leaves that cache
// out, says why, and the engine is still up; on a newer one it uses it.
func TestBuildLeavesOutALoopingCacheOnAnOldEngine(t *testing.T) {
	st := teststack.Start(t)
	st.Setenv(t)
	ctx := context.Background()
	ex := st.ExampleDir()
	names := teststack.NewNames(t)
	st.CreateRepository(t, names.FrontendRepo, "")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tag := "ctjdeploy-test/" + nonce(t) + ":"
	rmi(t, st, tag+"1")
	rmi(t, st, tag+"2")
	spec := build.Spec{Name: "next", Context: filepath.Join(ex, "frontend"), Dockerfile: filepath.Join(ex, "stage", "next.dockerfile"), Tag: tag + "1"}
	d1, _ := build.NewDocker()
	img, err := d1.Build(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	p, err := push.New(ctx, st.AWSConfig(t), push.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cacheRef := st.Registry + "/" + names.FrontendRepo + ":stage"
	if _, err := p.Push(ctx, img, push.Target{Registry: st.Registry, Repository: names.FrontendRepo, Tags: []string{"stage"}}); err != nil {
		t.Fatal(err)
	}

	var rec report.Recorder
	d2, _ := build.NewDocker(build.WithReporter(&rec), build.WithCacheConfig(p.ImageConfig),
		build.WithCredentialHelper(exe, push.HelperName, []string{st.Registry}, push.HelperEnv(teststack.Region)...))
	spec.Tag, spec.CacheFrom = tag+"2", []string{cacheRef}
	if _, err := d2.Build(ctx, spec); err != nil {
		t.Fatalf("the build with the looping cache failed: %v", err)
	}
	out, err := st.Command("/usr/bin/docker", "version", "--format", "{{.Server.Version}}").Output()
	if err != nil {
		t.Fatalf("the engine no longer answers after the build: %v", err)
	}
	version := strings.TrimSpace(string(out))
	var warned, imported bool
	for _, e := range rec.All() {
		warned = warned || e.Kind == report.Warn && strings.Contains(e.Message, "moby/buildkit#2024") &&
			strings.Contains(e.Message, cacheRef) && strings.Contains(e.Message, version)
		imported = imported || strings.Contains(e.Message, "importing cache manifest from "+cacheRef)
	}
	major, _, _ := strings.Cut(version, ".")
	n, _ := strconv.Atoi(major)
	old := n >= 17 && n < 23 // BuildKit before v0.9
	if old && (!warned || imported) {
		t.Errorf("engine %s: warned %v (want true), imported the looping cache %v (want false)", version, warned, imported)
	}
	if !old && (warned || !imported) {
		t.Errorf("engine %s: warned %v (want false), imported the cache %v (want true)", version, warned, imported)
	}
}
