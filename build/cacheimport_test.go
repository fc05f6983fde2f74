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
	why, ok := cacheImportBroke(cacheImportOutput)
	if !ok || !strings.Contains(why, "401 Unauthorized") {
		t.Errorf("cache import failure: %q, %v; want its 401", why, ok)
	}
	if why, ok := cacheImportBroke(failingOutput); ok {
		t.Errorf("a failing RUN step read as a cache import failure: %q", why)
	}
	// A cache import that failed and a step that failed too: a real failure.
	both := append(append([]string{}, cacheImportOutput[:6]...), failingOutput...)
	if why, ok := cacheImportBroke(both); ok {
		t.Errorf("a failing RUN after a failed cache import read as the cache's failure alone: %q", why)
	}
	if _, ok := cacheImportBroke(nil); ok {
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
	if why, ok := cacheImportBroke(linksOnly); !ok || why != "invalid incomplete links" {
		t.Errorf("broken cache links: %q, %v", why, ok)
	}
	// The same last line without a cache import: not the cache's.
	if why, ok := cacheImportBroke(linksOnly[3:]); ok {
		t.Errorf("no cache import, read as the cache's failure: %q", why)
	}
}

// fakeDockerScript is a docker CLI that fails like cacheImportOutput when
// given --cache-from, and otherwise writes an image id; each call is
// counted in DIR/calls.
func fakeDockerScript(t *testing.T, failEvery bool) string {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.txt")
	if err := os.WriteFile(out, []byte(strings.Join(cacheImportOutput, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fail := `case "$*" in *--cache-from*) cat '` + out + `'; exit 1;; esac`
	if failEvery {
		fail = `cat '` + out + `'; exit 1`
	}
	script := `#!/bin/sh
echo x >> '` + filepath.Join(dir, "calls") + `'
` + fail + `
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

func TestBuildRetriesWithoutABrokenCacheImport(t *testing.T) {
	ctxDir := t.TempDir()
	df := filepath.Join(ctxDir, "Dockerfile")
	if err := os.WriteFile(df, []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := Spec{Name: "next", Context: ctxDir, Dockerfile: df, Tag: "ctjdeploy/next:t", CacheFrom: []string{"127.0.0.1:5055/next:stage"}}

	docker := fakeDockerScript(t, false)
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
	docker = fakeDockerScript(t, true)
	if _, err := (&Docker{bin: docker, rep: report.Discard, tailLines: 20}).Build(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "build of next") {
		t.Fatalf("want the second failure: %v", err)
	}
	if n := calls(t, docker); n != 2 {
		t.Errorf("docker build ran %d times, want 2 (one retry)", n)
	}

	// No --cache-from: nothing to leave out, no retry.
	docker = fakeDockerScript(t, true)
	spec.CacheFrom = nil
	if _, err := (&Docker{bin: docker, rep: report.Discard, tailLines: 20}).Build(context.Background(), spec); err == nil {
		t.Fatal("want the failure")
	}
	if n := calls(t, docker); n != 1 {
		t.Errorf("docker build ran %d times, want 1", n)
	}
}
