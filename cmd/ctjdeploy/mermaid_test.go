package main

// The GitHub summary's Mermaid gantt, rendered as GitHub would: the
// `mermaid` package from npm (installed by scripts/stack up into
// ~/.cache/ctjdeploy/npm) in headless Chromium (Debian's chromium, from
// scripts/stack's package list). The test asserts that Mermaid produced an
// SVG naming each phase, image and deployment state, and keeps the PNG under
// the artifacts folder ($CTJDEPLOY_ARTIFACTS, else $TMPDIR/ctjdeploy-artifacts).
// About 5-10 s (two Chromium starts).

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// mermaidJS is where scripts/stack up installs mermaid (MERMAID_VERSION there).
func mermaidJS(t *testing.T) string {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		cache = filepath.Join(home, ".cache")
	}
	p := filepath.Join(cache, "ctjdeploy", "npm", "node_modules", "mermaid", "dist", "mermaid.min.js")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("mermaid is not installed at %s: run scripts/stack up (it installs it with npm): %v", p, err)
	}
	return p
}

func chromiumBinary(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: run scripts/stack up (it installs Debian's chromium)")
	return ""
}

func artifactsDir(t *testing.T) string {
	dir := os.Getenv("CTJDEPLOY_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "ctjdeploy-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestSummaryGanttRendersWithMermaid(t *testing.T) {
	if testing.Short() {
		t.Skip("renders with headless Chromium; skipped with -short")
	}
	js := mermaidJS(t)
	chromium := chromiumBinary(t)

	out := render(t, "github", loadRun(t, "rolled-back"))
	m := regexp.MustCompile("(?s)```mermaid\n(.*?)```").FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the summary has no mermaid block:\n%s", out)
	}
	src, _ := json.Marshal(m[1])
	dir := t.TempDir()
	page := filepath.Join(dir, "gantt.html")
	html := `<!doctype html><html><head><meta charset="utf-8"></head><body style="background:white">
<div id="out">rendering</div>
<script src="file://` + js + `"></script>
<script>
mermaid.initialize({startOnLoad: false, securityLevel: "strict", gantt: {useWidth: 1400}});
mermaid.render("gantt", ` + string(src) + `)
  .then(r => { document.getElementById("out").innerHTML = r.svg; })
  .catch(e => { document.getElementById("out").textContent = "MERMAID ERROR: " + e; });
</script></body></html>`
	if err := os.WriteFile(page, []byte(html), 0o644); err != nil {
		t.Fatal(err)
	}
	chrome := func(extra ...string) []byte {
		args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
			"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=15000", "--window-size=1500,900"}, extra...)
		args = append(args, "file://"+page)
		cmd := exec.Command(chromium, args...)
		cmd.Env = append(os.Environ(), "HOME="+dir)
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", extra, err)
		}
		return b
	}
	dom := string(chrome("--dump-dom"))
	if strings.Contains(dom, `<div id="out">MERMAID ERROR`) || !strings.Contains(dom, `<div id="out"><svg`) {
		i := strings.Index(dom, `<div id="out">`)
		t.Fatalf("mermaid produced no SVG:\n%.2000s", dom[max(i, 0):])
	}
	svg := dom[strings.Index(dom, "<svg"):]
	if os.Getenv("CTJDEPLOY_DUMP_SVG") != "" {
		_ = os.WriteFile(os.Getenv("CTJDEPLOY_DUMP_SVG"), []byte(svg), 0o644)
	}
	// each bar is an SVG text "NAME 1.2s": every bar of the source (the
	// phases, both images, the deployment's states as recorded)
	var names []string
	for _, b := range regexp.MustCompile(`(?m)^  (\S+) [0-9.]+s :`).FindAllStringSubmatch(m[1], -1) {
		names = append(names, b[1])
	}
	for _, want := range []string{"build", "push", "register", "rollout", "django", "next", "PENDING", "ROLLBACK_SUCCESSFUL"} {
		if !slices.Contains(names, want) {
			t.Errorf("the summary's gantt has no bar %q: %q", want, names)
		}
	}
	for _, name := range names {
		if !regexp.MustCompile(`>\s*` + regexp.QuoteMeta(name) + ` [0-9.]+s\s*<`).MatchString(svg) {
			t.Errorf("the rendered gantt has no bar named %q", name)
		}
	}
	for _, section := range []string{"phases", "build", "push", "ECS service deployment"} {
		if !strings.Contains(svg, ">"+section+"<") {
			t.Errorf("the rendered gantt has no section %q", section)
		}
	}
	png := filepath.Join(artifactsDir(t), "summary-gantt.png")
	chrome("--screenshot=" + png)
	if st, err := os.Stat(png); err != nil || st.Size() < 1000 {
		t.Errorf("no screenshot at %s: %v", png, err)
	}
	t.Logf("the gantt as Chromium drew it: %s", png)
}
