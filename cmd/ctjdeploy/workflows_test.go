package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// Every action a workflow uses is pinned by its full commit SHA, with the
// version in a comment (`uses: actions/checkout@<40 hex> # v4.4.0`): a tag
// can be moved to other code, a commit cannot. Reusable workflows of this
// repository called by path (./) are exempt.
func TestWorkflowActionsPinnedBySHA(t *testing.T) {
	root, err := teststack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	if len(files) == 0 {
		t.Fatal("no workflows")
	}
	usesRE := regexp.MustCompile(`^\s*(?:-\s+)?uses:\s*(\S+)(.*)$`)
	pinned := regexp.MustCompile(`^[\w.-]+/[\w./-]+@[0-9a-f]{40}$`)
	version := regexp.MustCompile(`^\s+# v\d+\.\d+\.\d+\b`)
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			m := usesRE.FindStringSubmatch(line)
			if m == nil || strings.HasPrefix(m[1], "./") {
				continue
			}
			n++
			if !pinned.MatchString(m[1]) || !version.MatchString(m[2]) {
				t.Errorf("%s:%d: %s: pin the action by its full commit SHA with the version in a comment (uses: OWNER/REPO@<sha> # vX.Y.Z)", filepath.Base(f), i+1, strings.TrimSpace(line))
			}
		}
	}
	if n < 8 {
		t.Errorf("only %d uses: lines found", n)
	}
}
