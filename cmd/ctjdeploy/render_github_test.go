package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hackforla/ctjdeploy/internal/report"
)

func TestGitHubEscapes(t *testing.T) {
	cases := []struct {
		in, data, prop string
	}{
		{"plain", "plain", "plain"},
		{"50% done", "50%25 done", "50%25 done"},
		{"a\nb\r\nc", "a%0Ab%0D%0Ac", "a%0Ab%0D%0Ac"},
		{"ctjdeploy: push, django", "ctjdeploy: push, django", "ctjdeploy%3A push%2C django"},
		{"%0A", "%250A", "%250A"}, // an escape sequence in the input is not unescaped by the runner
	}
	for _, c := range cases {
		if got := ghEscapeData(c.in); got != c.data {
			t.Errorf("ghEscapeData(%q) = %q, want %q", c.in, got, c.data)
		}
		if got := ghEscapeProperty(c.in); got != c.prop {
			t.Errorf("ghEscapeProperty(%q) = %q, want %q", c.in, got, c.prop)
		}
	}
}

// ghStream builds a GitHub renderer writing, like production, to one stream:
// through the mask for everything, raw for ::add-mask:: lines.
func ghStream() (*githubRenderer, *bytes.Buffer) {
	var buf bytes.Buffer
	g := newGitHubRenderer(report.MaskWriter(&buf), report.Unmasked(report.MaskWriter(&buf)))
	g.token = "TOKEN"
	return g, &buf
}

func TestGitHubRendererStream(t *testing.T) {
	// Secrets are process-wide: make these unique to this run of the test.
	early := "gh-early-" + randomToken()
	late := "gh-late-" + randomToken()
	report.AddSecret(early)
	g, buf := ghStream()
	clock := time.Unix(1000, 0)
	g.now = func() time.Time { return clock }

	p := report.Begin(g, "push")
	p.Line("django", "uploading with token "+early)
	p.Line("", "::add-mask::not-a-command") // untrusted output must not run as a command
	p.Progress("django", 10, 100, "bytes")
	p.Progress("django", 20, 100, "bytes") // throttled: less than 10s since the last
	clock = clock.Add(11 * time.Second)
	p.Progress("django", 30, 100, "bytes")
	p.Progress("django", 100, 100, "bytes") // final: always printed
	p.Warnf("tag %s already exists", "stage")
	report.AddSecret(late)
	p.End(errors.New("registry said 50% of " + late + "\nthen closed"))
	report.Begin(g, "rollout")

	out := buf.String()
	var lines []string // without the masks of other tests' secrets
	for _, ln := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if v, ok := strings.CutPrefix(ln, "::add-mask::"); ok && v != early && v != late && v != "not-a-command" {
			continue
		}
		lines = append(lines, ln)
	}
	if lines[0] != "::add-mask::"+early {
		t.Errorf("the first line must mask the known secret, got %q", lines[0])
	}
	if n := strings.Count(out, early); n != 1 {
		t.Errorf("secret %q appears %d times, want once (the add-mask line):\n%s", early, n, out)
	}
	if n := strings.Count(out, late); n != 1 {
		t.Errorf("secret %q appears %d times, want once (the add-mask line):\n%s", late, n, out)
	}
	want := []string{
		"::add-mask::" + early,
		"::group::push",
		"::stop-commands::TOKEN",
		"[django] uploading with token ***",
		"::add-mask::not-a-command",
		"django: 10 B of 100 B (10%)",
		"django: 30 B of 100 B (30%)",
		"::TOKEN::", // the final byte count is left to the push's own line
		"::warning title=ctjdeploy%3A push::tag stage already exists",
		"::add-mask::" + late,
		"::stop-commands::TOKEN",
		"==> push failed after ",
		"::TOKEN::",
		"::endgroup::",
		"::error title=ctjdeploy%3A push failed::registry said 50%25 of ***%0Athen closed",
		"::group::rollout",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
		}
	}
	if ph := g.Phases(); len(ph) != 1 || ph[0].Name != "push" || !ph[0].Failed {
		t.Errorf("Phases() = %+v", ph)
	}
}

func TestGitHubRendererMultilineSecretAndNoNesting(t *testing.T) {
	report.AddSecret("-----BEGIN KEY-----\nZm9vYmFyYmF6cXV4\n-----END KEY-----")
	g, buf := ghStream()
	report.Begin(g, "terraform")
	report.Begin(g, "render") // a phase starting inside another closes the open group
	out := buf.String()
	for _, w := range []string{"::add-mask::-----BEGIN KEY-----\n", "::add-mask::Zm9vYmFyYmF6cXV4\n", "::add-mask::-----END KEY-----\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
	if !strings.Contains(out, "::group::terraform\n::endgroup::\n::group::render\n") {
		t.Errorf("groups must not nest:\n%s", out)
	}
}

func TestReporterSelection(t *testing.T) {
	var buf bytes.Buffer
	g := &globals{stderr: report.MaskWriter(&buf)}
	t.Setenv("GITHUB_ACTIONS", "true")
	// each renderer stands behind a sayOnce (render_once.go)
	behind := func(r report.Reporter) report.Reporter { return onceOf(r).next }
	if _, ok := behind(g.reporter()).(*githubRenderer); !ok {
		t.Errorf("GITHUB_ACTIONS=true: got %T, want *githubRenderer", behind(g.reporter()))
	}
	t.Setenv("GITHUB_ACTIONS", "")
	if _, ok := behind(g.reporter()).(*textRenderer); !ok {
		t.Errorf("not a terminal: got %T, want *textRenderer", behind(g.reporter()))
	}
	g.stderrTTY = true
	t.Setenv("TERM", "xterm")
	if _, ok := behind(g.reporter()).(*liveRenderer); !ok {
		t.Errorf("terminal: got %T, want *liveRenderer", behind(g.reporter()))
	}
	t.Setenv("TERM", "dumb")
	if _, ok := behind(g.reporter()).(*textRenderer); !ok {
		t.Errorf("TERM=dumb: got %T, want *textRenderer", behind(g.reporter()))
	}
}

func TestWriteGitHubResult(t *testing.T) {
	const secret = "gh-result-secret-55aa"
	report.AddSecret(secret)
	dir := t.TempDir()
	outPath := filepath.Join(dir, "output")
	sumPath := filepath.Join(dir, "summary")
	// The runner creates both files; earlier steps may have written to them.
	if err := os.WriteFile(outPath, []byte("earlier=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"GITHUB_OUTPUT": outPath, "GITHUB_STEP_SUMMARY": sumPath}
	r := ghResult{
		Env:    "stage",
		Commit: "0123456789abcdef0123456789abcdef01234567",
		Tag:    "0123456789abcdef0123456789abcdef01234567",
		Images: []ghImage{
			{Name: "next", Ref: "127.0.0.1:5055/fe@sha256:bbb", Digest: "sha256:bbb", PushedBytes: 2048, ReusedBytes: 1 << 20},
			{Name: "django", Ref: "127.0.0.1:5055/be@sha256:aaa", Digest: "sha256:aaa", PushedBytes: 0, ReusedBytes: 3 << 20},
		},
		TaskDefinitionARN: "arn:aws:ecs:us-west-2:123456789012:task-definition/fam:7",
		Registered:        true,
		Outcome:           "rolled-back",
		Message:           "deployment failed: tasks stopped\nessential container django exited (password " + secret + ")",
		Diff:              "--- live\n+++ rendered\n-  \"image\": \"old\"\n+  \"image\": \"new\"\n+  \"value\": \"" + secret + "\"\n",
		Events:            []string{"(service s) has started 1 tasks", "(service s) rolling back | to revision 6"},
		Phases:            []ghPhase{{Name: "build", Seconds: 12.5}, {Name: "rollout", Seconds: 61, Failed: true}},
	}
	if err := writeGitHubResult(func(k string) string { return env[k] }, r); err != nil {
		t.Fatal(err)
	}
	outB, _ := os.ReadFile(outPath)
	sumB, _ := os.ReadFile(sumPath)
	out, sum := string(outB), string(sumB)
	for _, w := range []string{
		"earlier=1\n",
		"tag=0123456789abcdef0123456789abcdef01234567\n",
		"outcome=rolled-back\n",
		"task-definition-arn=arn:aws:ecs:us-west-2:123456789012:task-definition/fam:7\n",
		"task-definition-registered=true\n",
		"image-django=127.0.0.1:5055/be@sha256:aaa\n",
		"digest-django=sha256:aaa\n",
		"digest-next=sha256:bbb\n",
		"message<<ghadelimiter_",
		"\ndeployment failed: tasks stopped\nessential container django exited (password ***)\nghadelimiter_",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("GITHUB_OUTPUT lacks %q:\n%s", w, out)
		}
	}
	for _, w := range []string{
		"## ❌ ctjdeploy stage: rolled-back",
		"| Commit | `0123456789abcdef0123456789abcdef01234567` |",
		"| Task definition | `arn:aws:ecs:us-west-2:123456789012:task-definition/fam:7` (new revision) |",
		"| django | `127.0.0.1:5055/be@sha256:aaa` | 0 B | 3.0 MiB |",
		"| next | `127.0.0.1:5055/fe@sha256:bbb` | 2.0 KiB | 1.0 MiB |",
		"| **total** | | **2.0 KiB** | **4.0 MiB** |",
		"```diff\n--- live\n+++ rendered\n",
		"+  \"value\": \"***\"\n```",
		"- (service s) rolling back \\| to revision 6",
		"| rollout | 61.0s | failed |",
		"| **total** | **73.5s** | |",
	} {
		if !strings.Contains(sum, w) {
			t.Errorf("summary lacks %q:\n%s", w, sum)
		}
	}
	if strings.Index(sum, "| django |") > strings.Index(sum, "| next |") {
		t.Error("images must be sorted by name")
	}
	if strings.Contains(out+sum, secret) {
		t.Errorf("a secret leaked into the outputs or the summary")
	}
}

func TestWriteGitHubResultUnset(t *testing.T) {
	// Outside Actions (no variables): nothing to write, no error.
	if err := writeGitHubResult(func(string) string { return "" }, ghResult{}); err != nil {
		t.Fatal(err)
	}
	err := writeGitHubResult(func(k string) string {
		if k == "GITHUB_OUTPUT" {
			return filepath.Join(t.TempDir(), "no", "such", "dir")
		}
		return ""
	}, ghResult{})
	if err == nil || !strings.Contains(err.Error(), "$GITHUB_OUTPUT") {
		t.Errorf("want an error naming $GITHUB_OUTPUT, got %v", err)
	}
}

func TestSummaryFenceAndNoDiff(t *testing.T) {
	s := ghSummary(ghResult{Env: "stage", Outcome: "unchanged", Diff: "+ a ``` b\n"})
	if !strings.Contains(s, "````diff\n+ a ``` b\n````") {
		t.Errorf("fence must outgrow the backticks in the diff:\n%s", s)
	}
	s = ghSummary(ghResult{Env: "stage", Outcome: "unchanged"})
	if !strings.Contains(s, "No change") || !strings.Contains(s, "## ✅ ctjdeploy stage: unchanged") {
		t.Errorf("summary without diff:\n%s", s)
	}
}

// The summary shows the smoke results and the stopped containers' last log
// lines, fenced so a line holding ``` cannot end the block.
func TestGHSummarySmokeAndLogs(t *testing.T) {
	report.AddSecret("gh-summary-s3cret")
	s := ghSummary(ghResult{Env: "stage", Outcome: "rolled-back", URL: "https://stage.example.org",
		Smoke:   []ghSmoke{{URL: "https://stage.example.org/api/healthcheck", OK: false, Status: 502, Tries: 4, Seconds: 2, Error: "status 502, want 200"}},
		Stopped: []ghStopped{{Task: "abc123", Container: "django", Exit: "exit 1", Logs: []string{"Traceback (most recent call last):", "```", "django.db.utils.OperationalError: could not connect", "password=gh-summary-s3cret"}}}})
	if strings.Contains(s, "gh-summary-s3cret") || !strings.Contains(s, "password=***") {
		t.Errorf("a secret in a container's log line reaches the summary:\n%s", s)
	}
	for _, want := range []string{"### Smoke checks", "status 502, want 200", "| 502 | 4 |", "### Stopped containers", "**django** in task `abc123`: exit 1", "````text\n", "OperationalError: could not connect"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	if out := ghOutputs(ghResult{URL: "https://stage.example.org"}); !strings.Contains(out, "url=https://stage.example.org\n") {
		t.Errorf("outputs: %q", out)
	}
}
