package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
		if !strings.HasPrefix(line, c.wantPrefix) || !strings.HasSuffix(line, " "+runtime.Version()+"\n") {
			t.Errorf("%s: version printed %q; want prefix %q and %s", c.name, line, c.wantPrefix, runtime.Version())
		}
		// Others commit in this checkout while it builds: the stamped
		// commit is HEAD as it was at the start, or a commit after it.
		m := regexp.MustCompile(`\(commit ([0-9a-f]{40})`).FindStringSubmatch(line)
		if m == nil {
			t.Errorf("%s: version printed %q: no commit", c.name, line)
			continue
		}
		start := strings.TrimSpace(string(head))
		if m[1] != start && exec.Command("git", "merge-base", "--is-ancestor", start, m[1]).Run() != nil {
			t.Errorf("%s: version printed commit %s, which is neither HEAD (%s) nor a later commit", c.name, m[1], start)
		}
	}
}

// TestVersionGoInstall does what a maintainer does, `go install
// github.com/hackforla/ctjdeploy/cmd/ctjdeploy@v1.2.3`, against a module
// proxy on disk holding this repository's committed tree (git archive HEAD)
// as v1.2.3 and the dependencies from the local module cache (no network),
// and checks that the installed binary says v1.2.3.
func TestVersionGoInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds ctjdeploy from a module zip")
	}
	const mod, ver = "github.com/hackforla/ctjdeploy", "v1.2.3"
	modcache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	// From the repository's root: in a subfolder, git archive takes only it.
	tree, err := exec.Command("git", "-C", repoRoot(t), "archive", "--format=zip", "HEAD").Output()
	if err != nil {
		t.Skipf("git archive: %v", err)
	}
	dir := t.TempDir()
	proxy := filepath.Join(dir, "proxy", mod, "@v")
	if err := os.MkdirAll(proxy, 0o755); err != nil {
		t.Fatal(err)
	}
	// The module zip: every file of the tree under module@version/.
	zr, err := zip.NewReader(bytes.NewReader(tree), int64(len(tree)))
	if err != nil {
		t.Fatal(err)
	}
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	var gomod []byte
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || f.Mode()&os.ModeSymlink != 0 {
			continue
		}
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if f.Name == "go.mod" {
			gomod = data
		}
		w, err := zw.Create(mod + "@" + ver + "/" + f.Name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"list":        []byte(ver + "\n"),
		ver + ".info": []byte(`{"Version":"` + ver + `","Time":"2026-12-01T00:00:00Z"}`),
		ver + ".mod":  gomod,
		ver + ".zip":  zb.Bytes(),
	} {
		if err := os.WriteFile(filepath.Join(proxy, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gobin := filepath.Join(dir, "bin")
	cmd := exec.Command("go", "install", mod+"/cmd/ctjdeploy@"+ver)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GOBIN="+gobin,
		"GOMODCACHE="+filepath.Join(dir, "modcache"),
		"GOPROXY=file://"+filepath.Join(dir, "proxy")+",file://"+filepath.Join(strings.TrimSpace(string(modcache)), "cache", "download"),
		"GONOSUMDB="+mod, "GOSUMDB=off", "GOFLAGS=-trimpath", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s/cmd/ctjdeploy@%s: %v\n%s", mod, ver, err, out)
	}
	// The module cache is read-only; let TempDir's cleanup remove it.
	t.Cleanup(func() { exec.Command("chmod", "-R", "u+w", filepath.Join(dir, "modcache")).Run() })
	out, err := exec.Command(filepath.Join(gobin, "ctjdeploy"), "version").Output()
	if err != nil {
		t.Fatalf("ctjdeploy version: %v", err)
	}
	if want := "ctjdeploy " + ver + " " + runtime.Version() + "\n"; string(out) != want {
		t.Errorf("the installed binary prints %q, want %q", out, want)
	}
}
