package gitinfo

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// repo makes a repository with a main line c1 → c2 → c3 and a branch c1 → x.
func repo(t *testing.T) (dir string, c []string, x string) {
	dir = t.TempDir()
	run(t, dir, "init", "-q", "-b", "main")
	for i := 1; i <= 3; i++ {
		os.WriteFile(filepath.Join(dir, "f"), []byte{byte('0' + i)}, 0o644)
		run(t, dir, "add", "f")
		run(t, dir, "commit", "-q", "-m", "c")
		c = append(c, run(t, dir, "rev-parse", "HEAD"))
	}
	run(t, dir, "checkout", "-q", "-b", "side", c[0])
	os.WriteFile(filepath.Join(dir, "g"), []byte("x"), 0o644)
	run(t, dir, "add", "g")
	run(t, dir, "commit", "-q", "-m", "x")
	x = run(t, dir, "rev-parse", "HEAD")
	run(t, dir, "checkout", "-q", "main")
	return dir, c, x
}

func TestHeadAndAncestry(t *testing.T) {
	ctx := context.Background()
	dir, c, x := repo(t)
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	if h, err := Head(ctx, sub); err != nil || h != c[2] || len(h) != 40 {
		t.Fatalf("Head = %q, %v; want %s", h, err, c[2])
	}
	tests := []struct {
		a, b string
		want Answer
	}{
		{c[0], c[2], Ancestor},
		{c[2], c[2], Ancestor},
		{c[2], c[0], NotAncestor},
		{x, c[2], NotAncestor},
		{"1234567890123456789012345678901234567890", c[2], CannotTell},
		{"v1.2", c[2], CannotTell},
	}
	for _, tt := range tests {
		got, why, err := IsAncestor(ctx, dir, tt.a, tt.b)
		if err != nil || got != tt.want {
			t.Errorf("IsAncestor(%.7s, %.7s) = %v %q %v, want %v", tt.a, tt.b, got, why, err, tt.want)
		}
		if got == CannotTell && why == "" {
			t.Errorf("IsAncestor(%.7s, %.7s): no reason for cannot-tell", tt.a, tt.b)
		}
	}
	if _, err := Head(ctx, t.TempDir()); err == nil {
		t.Error("Head outside a repository must fail")
	}
}

func TestShallowCloneCannotTell(t *testing.T) {
	ctx := context.Background()
	dir, c, _ := repo(t)
	clone := filepath.Join(t.TempDir(), "clone")
	run(t, dir, "clone", "-q", "--depth", "1", "file://"+dir, clone)
	got, why, err := IsAncestor(ctx, clone, c[0], c[2])
	if err != nil || got != CannotTell || !strings.Contains(why, "shallow") {
		t.Fatalf("IsAncestor in a shallow clone = %v %q %v, want cannot-tell naming the shallow clone", got, why, err)
	}
}
