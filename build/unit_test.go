package build

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// Real docker 20.10 BuildKit plain output of a failing RUN.
var failingOutput = strings.Split(`#4 [2/4] RUN echo hello
#4 sha256:30c21fcb9123c3ea3ec399169ecf7e1a3236ea0cbdc3754b623e5b38eef71e28
#4 1.071 hello
#4 DONE 1.3s

#5 [3/4] RUN echo about-to-fail && false
#5 sha256:b8112878c5faa7a0a16b0647afb6b9290fb6da67ba3609dfd27d10bd532e349c
#5 1.605 about-to-fail
#5 ERROR: executor failed running [/bin/sh -c echo about-to-fail && false]: exit code: 1
------
 > [3/4] RUN echo about-to-fail && false:
------
executor failed running [/bin/sh -c echo about-to-fail && false]: exit code: 1`, "\n")

func TestFailedStep(t *testing.T) {
	for _, c := range []struct {
		name      string
		lines     []string
		step, msg string
	}{
		{"run fails", failingOutput, "[3/4] RUN echo about-to-fail && false", "executor failed running [/bin/sh -c echo about-to-fail && false]: exit code: 1"},
		{"only the summary", []string{"------", " > [2/3] COPY missing.txt .:", "------"}, "[2/3] COPY missing.txt .", ""},
		{"no step", []string{"unable to prepare context: path \"x\" not found"}, "", ""},
	} {
		step, msg := failedStep(c.lines)
		if step != c.step || msg != c.msg {
			t.Errorf("%s: failedStep = %q, %q; want %q, %q", c.name, step, msg, c.step, c.msg)
		}
	}
}

func TestArgs(t *testing.T) {
	s := Spec{Name: "django", Context: "/c", Dockerfile: "/c/d.dockerfile", Target: "runner", Tag: "x/django:t",
		Labels:    map[string]string{"org.opencontainers.image.source": "s", "org.opencontainers.image.revision": "r"},
		BuildArgs: map[string]string{"B": "2", "A": "1"}, CacheFrom: []string{"127.0.0.1:5055/repo:stage"}}
	want := []string{"build", "--progress=plain", "-f", "/c/d.dockerfile", "-t", "x/django:t", "--iidfile", "/i",
		"--target", "runner",
		"--label", "org.opencontainers.image.revision=r", "--label", "org.opencontainers.image.source=s",
		"--build-arg", "BUILDKIT_INLINE_CACHE=1", "--build-arg", "A=1", "--build-arg", "B=2",
		"--cache-from", "127.0.0.1:5055/repo:stage", "/c"}
	if got := args(s, "/i"); !reflect.DeepEqual(got, want) {
		t.Errorf("args =\n%q\nwant\n%q", got, want)
	}
}

func TestDockerConfig(t *testing.T) {
	user := map[string]any{
		"auths":       map[string]any{"r.example": map[string]any{"auth": "c2VjcmV0"}},
		"credsStore":  "desktop",
		"credHelpers": map[string]any{"gcr.io": "gcloud", "127.0.0.1:5055": "old"},
	}
	got := dockerConfig(user, "ctjdeploy", []string{"127.0.0.1:5055"})
	want := map[string]any{"credsStore": "desktop", "credHelpers": map[string]any{"gcr.io": "gcloud", "127.0.0.1:5055": "ctjdeploy"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dockerConfig = %v, want %v (stored auths must not be copied)", got, want)
	}
	if got := dockerConfig(nil, "h", []string{"a"}); !reflect.DeepEqual(got, map[string]any{"credHelpers": map[string]any{"a": "h"}}) {
		t.Errorf("dockerConfig(nil) = %v", got)
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	df := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(df, []byte("FROM scratch\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Validate([]Spec{{Name: "ok", Context: dir, Dockerfile: df, Tag: "t"}}); err != nil {
		t.Errorf("valid spec: %v", err)
	}
	err := Validate([]Spec{
		{Name: "django", Context: filepath.Join(dir, "nope"), Dockerfile: df, Tag: "t"},
		{Name: "next", Context: dir, Dockerfile: filepath.Join(dir, "missing.dockerfile"), Tag: "t"},
	})
	if exitcode.Of(err) != exitcode.Invalid {
		t.Fatalf("exit code %d for %v, want 2", exitcode.Of(err), err)
	}
	for _, w := range []string{"image django: build context", "image next: Dockerfile", "missing.dockerfile", "fix `dockerfile:`"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q lacks %q", err, w)
		}
	}
}

func TestFindDockerHonoursDOCKER(t *testing.T) {
	t.Setenv("DOCKER", "/nonexistent/docker")
	if _, err := findDocker(); err == nil || !strings.Contains(err.Error(), "DOCKER=/nonexistent/docker") {
		t.Errorf("findDocker = %v", err)
	}
	t.Setenv("DOCKER", "/bin/sh")
	if p, err := findDocker(); err != nil || p != "/bin/sh" {
		t.Errorf("findDocker = %q, %v", p, err)
	}
}

// TestFailureLostEngine: a build stream that broke off (the engine killed
// mid-build) is reported as the Docker engine's, not as the last step that
// logged an error (a cache import's 401 is only a warning).
func TestFailureLostEngine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///run/test-engine.sock")
	d := &Docker{bin: "/usr/bin/docker", tailLines: 20}
	lines := []string{
		"#4 importing cache manifest from 127.0.0.1:5000/app:stage",
		"#4 ERROR: pulling from host 127.0.0.1:5000 failed with status code [manifests stage]: 401 Unauthorized",
		"cannot write /tmp/ctjdeploy-build-1/iid because server did not provide an image ID",
	}
	err := d.failure(Spec{Name: "django", Dockerfile: "django.dockerfile"}, lines, errors.New("exit status 1"))
	for _, want := range []string{"build of django", "Docker engine (DOCKER_HOST unix:///run/test-engine.sock) broke off mid-build", "did not provide an image ID", "docker info", "deploy again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "401") {
		t.Errorf("error %q blames the cache import", err)
	}
}
