package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

func trustConfig(td, ctx, dockerfile, tfdir, envFile string) string {
	return `environments:
  stage:
    region: us-west-2
    cluster: c
    service: s
    task_definition: ` + td + `
    terraform: {dir: ` + tfdir + `}
    local: {env_file: ` + envFile + `}
    images:
      web: {repository: web, context: ` + ctx + `, dockerfile: ` + dockerfile + `}
`
}

// Issue 20, finding 5: every configured path stays inside the git
// repository holding the config (or the config's folder outside any):
// absolute paths, .. out of it and symlinks out of it are exit 2, naming
// the key, at load (before any build).
func TestConfigPathsStayInRepository(t *testing.T) {
	repo := t.TempDir()
	if err := os.Mkdir(filepath.Join(repo, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	app := filepath.Join(repo, "app")
	outside := t.TempDir()
	for _, d := range []string{filepath.Join(app, "stage"), filepath.Join(repo, "shared")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(outside, "secret.env"), []byte("X=1\n"), 0o600)
	if err := os.Symlink(filepath.Join(outside, "secret.env"), filepath.Join(app, "stage", "link.env")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(app, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(repo, "shared"), filepath.Join(app, "in")); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(app, "ctjdeploy.yaml")
	ok := []string{"stage/td.json", "backend", "../shared/Dockerfile", "infra", "stage/stage.env"}
	parse := func(v []string) error {
		if err := os.WriteFile(cfg, []byte(trustConfig(v[0], v[1], v[2], v[3], v[4])), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(cfg)
		return err
	}
	if err := parse(ok); err != nil {
		t.Fatalf("paths inside the repository (.. to a sibling folder included): %v", err)
	}
	// A symlink that stays inside is fine.
	if err := parse([]string{"in/td.json", ".", "in/Dockerfile", "in", "in/x.env"}); err != nil {
		t.Fatalf("symlink inside the repository: %v", err)
	}
	keys := []string{"task_definition", "images.web.context", "images.web.dockerfile", "terraform.dir", "local.env_file"}
	for _, bad := range []struct{ value, says string }{
		{"/proc/self/environ", "is an absolute path"},
		{"/etc", "is an absolute path"},
		{"../../x", "leaves the git repository holding the config"},
		{"stage/../../../x", "leaves the git repository holding the config"},
		{"stage/link.env", "leads through a symlink"},
		{"out/Dockerfile", "leads through a symlink"},
		{"out/not/yet/there", "leads through a symlink"},
	} {
		for i, key := range keys {
			v := append([]string(nil), ok...)
			v[i] = bad.value
			err := parse(v)
			if err == nil || exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), key+" ") || !strings.Contains(err.Error(), bad.says) {
				t.Errorf("%s: %s: err = %v", key, bad.value, err)
			}
		}
	}
}

// Outside any git repository, the config's folder is the boundary.
func TestConfigPathsOutsideRepositoryStayInFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "app")
	os.MkdirAll(dir, 0o755)
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), ".git")); err == nil {
		t.Skip("the temporary folder is in a git repository")
	}
	_, err := Parse(filepath.Join(dir, "ctjdeploy.yaml"), []byte(trustConfig("td.json", ".", "../Dockerfile", "infra", "x.env")))
	if err == nil || !strings.Contains(err.Error(), "images.web.dockerfile") || !strings.Contains(err.Error(), "it is in no git repository") {
		t.Fatalf("err = %v", err)
	}
}

// Issue 20, finding 7: the config file is bounded (1 MiB), checked before it
// is read whole.
func TestConfigSizeBounded(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ctjdeploy.yaml")
	big := trustConfig("td.json", ".", "Dockerfile", "infra", "x.env") + "# " + strings.Repeat("x", MaxFileSize) + "\n"
	if err := os.WriteFile(p, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "larger than 1024 KiB") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Parse(p, []byte(big)); err == nil || exitcode.Of(err) != exitcode.Invalid {
		t.Fatalf("Parse: err = %v", err)
	}
	// A device or a file that grows is cut at the bound too.
	if _, err := ReadBounded("/dev/zero", 1<<10, "config file"); err == nil || !strings.Contains(err.Error(), "larger than 1 KiB") {
		t.Fatalf("/dev/zero: %v", err)
	}
	if _, err := ReadBounded(filepath.Join(dir, "none"), 1<<10, "config file"); !errors.Is(err, os.ErrNotExist) || exitcode.Of(err) != exitcode.Invalid {
		t.Fatalf("missing: %v", err)
	}
	if b, err := ReadBounded(p, int64(len(big)), "config file"); err != nil || len(b) != len(big) {
		t.Fatalf("at the bound: %d %v", len(b), err)
	}
}

// Issue 20, finding 6: a smoke URL is http(s) and never a link-local or
// instance metadata address (exit 2 at load).
func TestSmokeURLNotMetadata(t *testing.T) {
	for u, bad := range map[string]bool{
		"http://169.254.169.254/latest/meta-data/":        true,
		"http://169.254.170.2/v2/credentials":             true,
		"https://[fe80::1]/":                              true,
		"http://[fd00:ec2::254]/":                         true,
		"http://[::ffff:169.254.169.254]/":                true,
		"ftp://stage.example.org/":                        true,
		"file:///etc/passwd":                              true,
		"https://stage.civictechjobs.org/api/healthcheck": false,
		"http://127.0.0.1:8080/":                          false,
	} {
		cfg := trustConfig("td.json", ".", "Dockerfile", "infra", "x.env") + "    smoke:\n      - url: \"" + u + "\"\n"
		_, err := Parse("/repo/ctjdeploy.yaml", []byte(cfg))
		if bad != (err != nil) || (bad && (exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "smoke[0].url"))) {
			t.Errorf("%s: err = %v", u, err)
		}
	}
}
