package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// fakeBuildInfo makes versionInfo read bi (and version = ldflag) for the
// rest of the test.
func fakeBuildInfo(t *testing.T, ldflag string, bi *debug.BuildInfo) {
	t.Helper()
	oldV, oldB := version, buildInfo
	t.Cleanup(func() { version, buildInfo = oldV, oldB })
	version = ldflag
	buildInfo = func() (*debug.BuildInfo, bool) { return bi, bi != nil }
}

func TestVersionFromBuildInfo(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	vcs := []debug.BuildSetting{
		{Key: "-trimpath", Value: "true"},
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: rev},
		{Key: "vcs.time", Value: "2026-12-02T14:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	cases := []struct {
		name   string
		ldflag string
		bi     *debug.BuildInfo
		want   string // the text line
		doc    versionDoc
	}{
		{"go install @version: the module version, no vcs stamp", "",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/hackforla/ctjdeploy", Version: "v1.2.3"}},
			"ctjdeploy v1.2.3 go1.26.8\n",
			versionDoc{Version: "v1.2.3", Go: "go1.26.8", Module: "github.com/hackforla/ctjdeploy"}},
		{"go build in a modified checkout", "",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/hackforla/ctjdeploy", Version: "(devel)"}, Settings: vcs},
			"ctjdeploy dev (commit " + rev + ", 2026-12-02T14:00:00Z, modified) go1.26.8\n",
			versionDoc{Version: "dev", Commit: rev, Time: "2026-12-02T14:00:00Z", Modified: true, Go: "go1.26.8", Module: "github.com/hackforla/ctjdeploy"}},
		{"the ldflag wins over the module version", "v9.9.9-rc1",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: vcs[:4]},
			"ctjdeploy v9.9.9-rc1 (commit " + rev + ", 2026-12-02T14:00:00Z) go1.26.8\n",
			versionDoc{Version: "v9.9.9-rc1", Commit: rev, Time: "2026-12-02T14:00:00Z", Go: "go1.26.8"}},
		{"no build info", "", nil,
			"ctjdeploy dev " + runtime.Version() + "\n",
			versionDoc{Version: "dev", Go: runtime.Version()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fakeBuildInfo(t, c.ldflag, c.bi)
			code, out, errOut := runCLI(t, "", "version")
			if code != 0 || out != c.want {
				t.Errorf("version: exit %d\n got %q\nwant %q\n%s", code, out, c.want, errOut)
			}
			code, out, _ = runCLI(t, "", "--output", "json", "version")
			var doc versionDoc
			if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil {
				t.Fatalf("version json: exit %d, %v: %q", code, err, out)
			}
			if doc != c.doc {
				t.Errorf("version json = %+v, want %+v", doc, c.doc)
			}
		})
	}
}

// TestVersionBuilt builds the real binary twice, as a checkout does and as
// the Makefile does, and asks it: the vcs stamp of this repository's HEAD,
// and the ldflag winning.
func TestVersionBuilt(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds ctjdeploy")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name, ldflags, wantPrefix string
	}{
		{"plain", "", "ctjdeploy "},
		{"ldflag", "-X main.version=v7.7.7-test", "ctjdeploy v7.7.7-test "},
	} {
		bin := filepath.Join(dir, c.name)
		args := []string{"build", "-trimpath", "-o", bin}
		if c.ldflags != "" {
			args = append(args, "-ldflags", c.ldflags)
		}
		cmd := exec.Command("go", append(args, ".")...)
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=true")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		out, err := exec.Command(bin, "version").Output()
		if err != nil {
			t.Fatalf("%s version: %v", c.name, err)
		}
		line := string(out)
		if !strings.HasPrefix(line, c.wantPrefix) || !strings.Contains(line, "commit "+strings.TrimSpace(string(head))) ||
			!strings.HasSuffix(line, " "+runtime.Version()+"\n") {
			t.Errorf("%s: version printed %q; want prefix %q, commit %s, %s", c.name, line, c.wantPrefix, bytes.TrimSpace(head), runtime.Version())
		}
	}
}
