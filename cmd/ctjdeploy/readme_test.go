package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// Every file the README names (a markdown link, or a path in backticks
// such as `scripts/stack` or `docs/adopting.md`) is in the repository: no
// link to a file outside it.
func TestReadmeLinksResolve(t *testing.T) {
	root, err := teststack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	var paths []string
	for _, m := range regexp.MustCompile(`\]\(([^)#\s]+)`).FindAllStringSubmatch(text, -1) {
		if !strings.Contains(m[1], "://") {
			paths = append(paths, m[1])
		}
	}
	// `dir/file.ext`, `dir/file`, `.hidden/file`: paths with a slash and no
	// spaces, not commands, URLs, images or flags
	for _, m := range regexp.MustCompile("`(\\.?[A-Za-z0-9_-]+(?:/[A-Za-z0-9_.-]+)+/?)`").FindAllStringSubmatch(text, -1) {
		p := m[1]
		if strings.Contains(p, ":") || strings.HasPrefix(p, "/") || strings.Contains(p, "@") {
			continue
		}
		first := strings.Split(p, "/")[0]
		if _, err := os.Stat(filepath.Join(root, first)); err != nil {
			continue // not a path of this repository (an image, a module path, `OWNER/REPO`)
		}
		paths = append(paths, p)
	}
	for _, m := range regexp.MustCompile("`(\\.\\./[^`]*)`").FindAllStringSubmatch(text, -1) {
		paths = append(paths, m[1])
	}
	if len(paths) < 10 {
		t.Fatalf("only %d paths found in the README: %q", len(paths), paths)
	}
	for _, p := range paths {
		if strings.HasPrefix(p, "..") {
			t.Errorf("README.md names %s, outside the repository", p)
			continue
		}
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("README.md names %s, which is not in the repository", p)
		}
	}
}
