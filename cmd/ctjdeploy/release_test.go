package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// repoRoot is the repository's root, two folders above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestGoReleaserConfig checks what the release relies on in .goreleaser.yaml
// (goreleaser itself cannot run here: `goreleaser check` needs its binary,
// which is not installed and cannot be downloaded): schema version 2, one
// build of ./cmd/ctjdeploy for linux and darwin on amd64 and arm64, static,
// with -trimpath and the ldflag that sets main.version (the variable
// `ctjdeploy version` prints), archives and SHA-256 checksums.
func TestGoReleaserConfig(t *testing.T) {
	root := repoRoot(t)
	var c struct {
		Version int `yaml:"version"`
		Builds  []struct {
			ID      string   `yaml:"id"`
			Main    string   `yaml:"main"`
			Binary  string   `yaml:"binary"`
			Env     []string `yaml:"env"`
			Goos    []string `yaml:"goos"`
			Goarch  []string `yaml:"goarch"`
			Flags   []string `yaml:"flags"`
			Ldflags []string `yaml:"ldflags"`
		} `yaml:"builds"`
		Archives []struct {
			IDs     []string `yaml:"ids"`
			Formats []string `yaml:"formats"`
			Files   []string `yaml:"files"`
		} `yaml:"archives"`
		Checksum struct {
			NameTemplate string `yaml:"name_template"`
			Algorithm    string `yaml:"algorithm"`
		} `yaml:"checksum"`
		Release struct {
			GitHub struct{ Owner, Name string } `yaml:"github"`
		} `yaml:"release"`
	}
	readYAML(t, filepath.Join(root, ".goreleaser.yaml"), &c)
	if c.Version != 2 {
		t.Errorf("version: %d, want 2 (GoReleaser v2 schema)", c.Version)
	}
	if len(c.Builds) != 1 {
		t.Fatalf("builds: %d, want 1", len(c.Builds))
	}
	b := c.Builds[0]
	if b.Main != "./cmd/ctjdeploy" || b.Binary != "ctjdeploy" {
		t.Errorf("build main %q binary %q, want ./cmd/ctjdeploy and ctjdeploy", b.Main, b.Binary)
	}
	if _, err := os.Stat(filepath.Join(root, b.Main, "main.go")); err != nil {
		t.Errorf("build main %s: %v", b.Main, err)
	}
	slices.Sort(b.Goos)
	slices.Sort(b.Goarch)
	if !slices.Equal(b.Goos, []string{"darwin", "linux"}) || !slices.Equal(b.Goarch, []string{"amd64", "arm64"}) {
		t.Errorf("targets %v × %v, want darwin,linux × amd64,arm64", b.Goos, b.Goarch)
	}
	if !slices.Contains(b.Env, "CGO_ENABLED=0") {
		t.Errorf("env %v lacks CGO_ENABLED=0 (cross-compiled darwin binaries must not need cgo)", b.Env)
	}
	if !slices.Contains(b.Flags, "-trimpath") {
		t.Errorf("flags %v lack -trimpath", b.Flags)
	}
	if ld := strings.Join(b.Ldflags, " "); !strings.Contains(ld, "-X main.version={{ .Tag }}") {
		t.Errorf("ldflags %q do not set main.version to the tag", ld)
	}
	if len(c.Archives) == 0 || !slices.Contains(c.Archives[0].IDs, b.ID) {
		t.Errorf("no archive of build %q", b.ID)
	}
	for _, a := range c.Archives {
		for _, f := range a.Files {
			if _, err := os.Stat(filepath.Join(root, f)); err != nil {
				t.Errorf("archive file %s: %v (goreleaser fails on a file that does not exist)", f, err)
			}
		}
	}
	if c.Checksum.NameTemplate == "" || c.Checksum.Algorithm != "sha256" {
		t.Errorf("checksum %+v, want a sha256 checksums file", c.Checksum)
	}
	if c.Release.GitHub.Owner != "hackforla" || c.Release.GitHub.Name != "ctjdeploy" {
		t.Errorf("release repository %+v", c.Release.GitHub)
	}
}

// TestReleaseWorkflow checks .github/workflows/release.yml: on tags v*, it
// checks out full history, sets Go up from go.mod and runs goreleaser
// release with GoReleaser v2 and a token that may write releases.
// (actionlint checks the rest in `make lint`.)
func TestReleaseWorkflow(t *testing.T) {
	root := repoRoot(t)
	type step struct {
		Uses string            `yaml:"uses"`
		With map[string]string `yaml:"with"`
		Env  map[string]string `yaml:"env"`
	}
	var w struct {
		On struct {
			Push struct {
				Tags []string `yaml:"tags"`
			} `yaml:"push"`
		} `yaml:"on"`
		Jobs map[string]struct {
			Permissions map[string]string `yaml:"permissions"`
			Steps       []step            `yaml:"steps"`
		} `yaml:"jobs"`
	}
	readYAML(t, filepath.Join(root, ".github", "workflows", "release.yml"), &w)
	if !slices.Equal(w.On.Push.Tags, []string{"v*"}) {
		t.Errorf("on.push.tags %v, want [v*]", w.On.Push.Tags)
	}
	job, ok := w.Jobs["goreleaser"]
	if !ok {
		t.Fatalf("no job goreleaser")
	}
	if job.Permissions["contents"] != "write" {
		t.Errorf("job permissions %v: the release needs contents: write", job.Permissions)
	}
	find := func(action string) *step {
		for i, s := range job.Steps {
			if name, _, _ := strings.Cut(s.Uses, "@"); name == action {
				return &job.Steps[i]
			}
		}
		t.Errorf("no step uses %s", action)
		return nil
	}
	if s := find("actions/checkout"); s != nil && s.With["fetch-depth"] != "0" {
		t.Errorf("checkout with %v: goreleaser needs the full history (fetch-depth: 0)", s.With)
	}
	if s := find("actions/setup-go"); s != nil && s.With["go-version-file"] != "go.mod" {
		t.Errorf("setup-go with %v, want go-version-file: go.mod", s.With)
	}
	if s := find("goreleaser/goreleaser-action"); s != nil {
		if b, _ := os.ReadFile(filepath.Join(root, ".github", "workflows", "release.yml")); !regexp.MustCompile(`goreleaser/goreleaser-action@[0-9a-f]{40} # v7\.`).Match(b) {
			t.Errorf("%s: want the action's current major, v7 (node24), pinned by commit SHA", s.Uses)
		}
		if s.With["version"] != "~> v2" || !strings.HasPrefix(s.With["args"], "release --clean") {
			t.Errorf("goreleaser with %v, want version ~> v2 and args release --clean", s.With)
		}
		if s.Env["GITHUB_TOKEN"] == "" {
			t.Errorf("goreleaser step has no GITHUB_TOKEN")
		}
	}
}
