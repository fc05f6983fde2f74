package build

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/report"
)

// What Debian's docker.io 20.10 printed when a build ended in its cache
// import (seen on the local stack with builds side by side).
var cacheImportOutput = strings.Split(`#4 [runner 1/6] FROM docker.io/library/node:22-alpine
#4 DONE 0.0s

#16 importing cache manifest from 127.0.0.1:44431/civic-tech-jobs-frontend:stage
#16 sha256:08cc51a2e551bb35c0e04fb6791cb149b21f81a31e4f714f84683dc38da3196e
#16 ERROR: pulling from host 127.0.0.1:44431 failed with status code [manifests stage]: 401 Unauthorized

#6 [internal] load build context
#6 DONE 0.1s
------
 > importing cache manifest from 127.0.0.1:44431/civic-tech-jobs-frontend:stage:
------
invalid incomplete links`, "\n")

func TestCacheImportBroke(t *testing.T) {
	why, imported, ok := cacheBroke(cacheImportOutput)
	if !ok || !imported || !strings.Contains(why, "401 Unauthorized") {
		t.Errorf("cache import failure: %q, %v, %v; want its 401, imported", why, imported, ok)
	}
	if why, _, ok := cacheBroke(failingOutput); ok {
		t.Errorf("a failing RUN step read as a cache import failure: %q", why)
	}
	// A cache import that failed and a step that failed too: a real failure.
	both := append(append([]string{}, cacheImportOutput[:6]...), failingOutput...)
	if why, _, ok := cacheBroke(both); ok {
		t.Errorf("a failing RUN after a failed cache import read as the cache's failure alone: %q", why)
	}
	if _, _, ok := cacheBroke(nil); ok {
		t.Error("no output read as a cache import failure")
	}
	// The cache imported, and its links broke the build: no step printed
	// an ERROR (seen in a cmd/ctjdeploy stack test on the same engine).
	linksOnly := strings.Split(`#8 importing cache manifest from 127.0.0.1:5055/civic-tech-jobs-frontend:stage
#8 DONE 1.1s

#17 [auth] sharing credentials for 127.0.0.1:5055
#17 DONE 0.0s

#6 [internal] load build context
#6 DONE 0.0s
invalid incomplete links`, "\n")
	if why, imported, ok := cacheBroke(linksOnly); !ok || !imported || why != "invalid incomplete links" {
		t.Errorf("broken cache links: %q, %v, %v", why, imported, ok)
	}
	// The same last line without a cache import: the engine's own cache
	// broke (builds of one Dockerfile side by side on docker.io 20.10).
	if why, imported, ok := cacheBroke(linksOnly[3:]); !ok || imported || why != "invalid incomplete links" {
		t.Errorf("broken links of the engine's own cache: %q, %v, %v", why, imported, ok)
	}
}

// fakeDockerScript is a docker CLI that prints output and fails when fail
// says (on --cache-from, every build, or the first build only), and
// otherwise writes an image id; each build is counted in DIR/calls. It
// answers `docker version` as Docker Engine 28, which imports any cache.
func fakeDockerScript(t *testing.T, fail string, output []string) string {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.txt")
	if err := os.WriteFile(out, []byte(strings.Join(output, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	calls := filepath.Join(dir, "calls")
	cond := map[string]string{
		"cache-from": `case "$*" in *--cache-from*) true;; *) false;; esac`,
		"every":      `true`,
		"first":      `[ "$(wc -l < '` + calls + `')" -eq 1 ]`,
	}[fail]
	script := `#!/bin/sh
[ "$1" = version ] && { echo 28.0.0; exit 0; }
echo x >> '` + calls + `'
if ` + cond + `; then cat '` + out + `'; exit 1; fi
while [ $# -gt 0 ]; do [ "$1" = --iidfile ] && printf 'sha256:%064d' 1 > "$2"; shift; done
`
	p := filepath.Join(dir, "docker")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func calls(t *testing.T, docker string) int {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(docker), "calls"))
	return strings.Count(string(b), "x")
}

// scratchSpec is the spec of image next from a context of its own holding
// a one-line Dockerfile (the fake docker CLIs never read it).
func scratchSpec(t *testing.T) Spec {
	dir := t.TempDir()
	df := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(df, []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Spec{Name: "next", Context: dir, Dockerfile: df, Tag: "ctjdeploy/next:t"}
}

func TestBuildRetriesWithoutABrokenCacheImport(t *testing.T) {
	spec := scratchSpec(t)
	spec.CacheFrom = []string{"127.0.0.1:5055/next:stage"}

	docker := fakeDockerScript(t, "cache-from", cacheImportOutput)
	var rec report.Recorder
	img, err := (&Docker{bin: docker, rep: &rec, tailLines: 20}).Build(context.Background(), spec)
	if err != nil || !strings.HasPrefix(img.ID, "sha256:") {
		t.Fatalf("want the build again without --cache-from to succeed: %+v %v", img, err)
	}
	if n := calls(t, docker); n != 2 {
		t.Errorf("docker build ran %d times, want 2", n)
	}
	warned := false
	for _, ev := range rec.Events {
		if ev.Kind == report.Warn && strings.Contains(ev.Message, "building again without --cache-from") && strings.Contains(ev.Message, "401 Unauthorized") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no warning naming the cache import's error and the retry: %+v", rec.Events)
	}

	// Failing without the cache too: one retry, and the second failure is
	// the error.
	docker = fakeDockerScript(t, "every", cacheImportOutput)
	if _, err := (&Docker{bin: docker, rep: report.Discard, tailLines: 20}).Build(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "build of next") {
		t.Fatalf("want the second failure: %v", err)
	}
	if n := calls(t, docker); n != 2 {
		t.Errorf("docker build ran %d times, want 2 (one retry)", n)
	}

	// No --cache-from: nothing to leave out, no retry.
	docker = fakeDockerScript(t, "every", cacheImportOutput)
	spec.CacheFrom = nil
	if _, err := (&Docker{bin: docker, rep: report.Discard, tailLines: 20}).Build(context.Background(), spec); err == nil {
		t.Fatal("want the failure")
	}
	if n := calls(t, docker); n != 1 {
		t.Errorf("docker build ran %d times, want 1", n)
	}
}

// Builds of one Dockerfile side by side on docker.io 20.10 sometimes end
// on "invalid incomplete links" with no cache import: built once more.
func TestBuildRetriesABrokenEngineCache(t *testing.T) {
	spec := scratchSpec(t)
	links := strings.Split("#6 [internal] load build context\n#6 DONE 0.0s\ninvalid incomplete links", "\n")
	docker := fakeDockerScript(t, "first", links)
	var rec report.Recorder
	img, err := (&Docker{bin: docker, rep: &rec, tailLines: 20}).Build(context.Background(), spec)
	if err != nil || !strings.HasPrefix(img.ID, "sha256:") {
		t.Fatalf("want the second build to succeed: %+v %v", img, err)
	}
	if n := calls(t, docker); n != 2 {
		t.Errorf("docker build ran %d times, want 2", n)
	}
	warned := false
	for _, ev := range rec.Events {
		warned = warned || ev.Kind == report.Warn && strings.Contains(ev.Message, "engine's build cache (invalid incomplete links)") && strings.Contains(ev.Message, "building again")
	}
	if !warned {
		t.Errorf("no warning naming the engine's cache and the retry: %+v", rec.Events)
	}
	// A failing step is a real failure: no retry.
	docker = fakeDockerScript(t, "first", failingOutput)
	if _, err := (&Docker{bin: docker, rep: report.Discard, tailLines: 20}).Build(context.Background(), spec); err == nil {
		t.Fatal("want the failure")
	}
	if n := calls(t, docker); n != 1 {
		t.Errorf("docker build ran %d times after a failing step, want 1", n)
	}
}
