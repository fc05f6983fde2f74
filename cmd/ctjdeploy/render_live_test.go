package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hackforla/ctjdeploy/deploy"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// screen interprets the bytes a renderer writes the way a terminal does, for
// the few controls the live renderer uses: \r, \n, ESC[2K (clear line),
// ESC[1A (cursor up) and ESC[...m (colors, ignored).
func screen(t *testing.T, b []byte) []string {
	t.Helper()
	rows := [][]rune{nil}
	row, col := 0, 0
	s := []rune(string(b))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\r':
			col = 0
		case '\n':
			row, col = row+1, 0
			for len(rows) <= row {
				rows = append(rows, nil)
			}
		case 0x1b:
			j := i + 2
			for j < len(s) && !(s[j] >= '@' && s[j] <= '~') {
				j++
			}
			if i+1 >= len(s) || s[i+1] != '[' || j >= len(s) {
				t.Fatalf("unexpected escape at %d in %q", i, string(s))
			}
			switch seq := string(s[i+2 : j+1]); seq {
			case "2K":
				rows[row] = nil
			case "1A":
				if row == 0 {
					t.Fatalf("cursor up above the first line")
				}
				row--
			default:
				if !strings.HasSuffix(seq, "m") {
					t.Fatalf("unexpected escape ESC[%s", seq)
				}
			}
			i = j
		default:
			if c < 0x20 {
				t.Fatalf("control character %#x reached the terminal", c)
			}
			for len(rows[row]) <= col {
				rows[row] = append(rows[row], ' ')
			}
			rows[row][col] = c
			col++
		}
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = strings.TrimRight(string(r), " ")
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

func newTestLive(buf *bytes.Buffer, width int) *liveRenderer {
	l := newLiveRenderer(buf, false, func() int { return width })
	l.minInterval = 0
	return l
}

func TestLiveRendererByteStream(t *testing.T) {
	var buf bytes.Buffer
	l := newTestLive(&buf, 40)
	p := report.Begin(l, "push")
	p.Progress("django", 1<<20, 4<<20, "bytes")
	p.Progress("django", 2<<20, 4<<20, "bytes")
	p.End(nil)
	want := "" + // no permanent line at the start: the phase's one line comes at its end
		"  push …" +
		"\r\x1b[2K" + "  push django: 1.0 MiB of 4.0 MiB (25%)" +
		"\r\x1b[2K" + "  push django: 2.0 MiB of 4.0 MiB (50%)" +
		"\r\x1b[2K" + "  django: 2.0 MiB of 4.0 MiB (50%)\n" + // where the count ended stays
		"==> push 0.0s\n"
	if got := buf.String(); got != want {
		t.Errorf("byte stream:\n got %q\nwant %q", got, want)
	}
}

func TestLiveRendererScreen(t *testing.T) {
	var buf bytes.Buffer
	l := newTestLive(&buf, 30)
	b := report.Begin(l, "build")
	b.Line("django", "#5 [2/4] RUN pip install -r requirements.txt --no-cache-dir")
	b.Line("next", "#7 npm run build\x1b[31m")
	push := report.Begin(l, "push") // two phases active: two live lines
	push.Progress("next", 50, 100, "bytes")
	got := screen(t, buf.Bytes())
	want := []string{
		"  build django: #5 [2/4] RUN…", // one line per image, cut to the width less one column
		"  build next: #7 npm run bui…", // the escape became spaces: no color leaks
		"  push next: 50 B of 100 B (…",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen while two phases run:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	b.Warnf("cache miss")
	b.End(errors.New("build of next failed"))
	report.For(l, "rollout").Line("", "(service s) has reached a steady state.")
	push.End(nil)
	l.Close()
	got = phaseTimes(screen(t, buf.Bytes()))
	want = []string{
		"warning: cache miss",
		"[next] #7 npm run build [31m", // the tail of the image that failed, which the error does not quote
		"==> build failed after 0.0s",
		"(service s) has reached a steady state.",
		"  next: 50 B of 100 B (50%)",
		"==> push 0.0s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("final screen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLiveRendererThrottles(t *testing.T) {
	var buf bytes.Buffer
	l := newTestLive(&buf, 80)
	clock := time.Unix(0, 0)
	l.now = func() time.Time { return clock }
	l.minInterval = 100 * time.Millisecond
	p := report.Begin(l, "push")
	clock = clock.Add(time.Second)
	for i := int64(1); i <= 50; i++ {
		p.Progress("django", i, 50, "bytes")
		clock = clock.Add(10 * time.Millisecond)
	}
	l.Close() // stops the pending redraw before the buffer is read
	if n := strings.Count(buf.String(), "of 50 B"); n < 3 || n > 6 {
		t.Errorf("50 progress events in 0.5s drew %d times, want about 5", n)
	}
}

// TestLiveRendererInTmux runs the renderer on a real terminal (tmux) and
// reads the screen back with capture-pane.
func TestLiveRendererInTmux(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if os.Getenv("CTJ_LIVE_DEMO") == "1" {
		l := newLiveRenderer(os.Stderr, false, nil)
		p := report.Begin(l, "push")
		for i := int64(1); i <= 4; i++ {
			p.Progress("django", i<<20, 4<<20, "bytes")
			time.Sleep(20 * time.Millisecond) // real time: progress at a transfer's pace, faster than minInterval
		}
		p.End(nil)
		r := report.Begin(l, "rollout")
		r.Progress("", 1, 1, "tasks running")
		time.Sleep(400 * time.Millisecond) // real time: longer than minInterval: the renderer's postponed redraw happens
		os.Stderr.WriteString("\nLIVE-DEMO-END\n")
		// Keep the pane until it is captured: the test ends the tmux
		// server then, which hangs up on this process (a minute at most,
		// should the test die first).
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP, syscall.SIGTERM)
		select {
		case <-hup:
		case <-time.After(time.Minute):
		}
		return
	}
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux not installed")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "tmux.sock")
	session := "ctjlive"
	cmd := exec.Command(tmux, "-S", sock, "new-session", "-d", "-s", session, "-x", "100", "-y", "20",
		"env", "CTJ_LIVE_DEMO=1", exe, "-test.run=^TestLiveRendererInTmux$")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("tmux cannot start a session here: %v: %s", err, out)
	}
	defer exec.Command(tmux, "-S", sock, "kill-server").Run()
	var pane string
	teststack.Poll(10*time.Second, 100*time.Millisecond, func() bool {
		out, err := exec.Command(tmux, "-S", sock, "capture-pane", "-p", "-t", session).Output()
		if err != nil {
			t.Fatalf("capture-pane: %v", err)
		}
		pane = string(out)
		return strings.Contains(pane, "LIVE-DEMO-END")
	})
	var lines []string
	for _, ln := range strings.Split(pane, "\n") {
		if ln = strings.TrimRight(ln, " "); ln != "" {
			lines = append(lines, ln)
		}
	}
	want := []string{"  django: 4.0 MiB of 4.0 MiB (100%)", "==> push 0.", "  rollout: 1/1 tasks running", "LIVE-DEMO-END"}
	if len(lines) != len(want) {
		t.Fatalf("pane:\n%s\nwant lines starting with %q", pane, want)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("pane line %d = %q, want prefix %q\n%s", i, lines[i], w, pane)
		}
	}
}

// TestLiveRendererBuildFolded: on a terminal the build's output is one live
// line per image (its latest BuildKit line), not hundreds of lines; when the
// build ends nothing of it stays but the phase's lines; --verbose (verbose)
// prints every line.
func TestLiveRendererBuildFolded(t *testing.T) {
	var buf bytes.Buffer
	l := newTestLive(&buf, 60)
	b := report.Begin(l, "build")
	for i := 1; i <= 50; i++ {
		b.Line("django", fmt.Sprintf("#%d [django %d/50] RUN step %d", i, i, i))
		b.Line("next", fmt.Sprintf("#%d [next %d/50] RUN npm step %d", i, i, i))
	}
	got := screen(t, buf.Bytes())
	want := []string{
		"  build django: #50 [django 50/50] RUN step 50",
		"  build next: #50 [next 50/50] RUN npm step 50",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen during the build:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	report.For(l, "build").Fields("built django: ctjdeploy/django:abc (sha256:1234) in 1.0s", nil)
	b.End(nil)
	l.Close()
	got = phaseTimes(screen(t, buf.Bytes()))
	want = []string{"built django: ctjdeploy/django:abc (sha256:1234) in 1.0s", "==> build 0.0s"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen after the build:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	buf.Reset()
	l = newTestLive(&buf, 60)
	l.verbose = true
	b = report.Begin(l, "build")
	for i := 1; i <= 3; i++ {
		b.Line("django", fmt.Sprintf("#%d step", i))
	}
	b.End(nil)
	l.Close()
	got = phaseTimes(screen(t, buf.Bytes()))
	want = []string{"[django] #1 step", "[django] #2 step", "[django] #3 step", "==> build 0.0s"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("verbose build:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestLiveRendererRollout: the rollout is one live line per deployment, the
// service events print above it, and where the counts ended stays when the
// phase ends. The rollback that failed smoke checks start follows its
// deployment in the rollout phase's events while smoke-rollback is the
// active phase: it gets a live line there, not a printed line per poll.
func TestLiveRendererRollout(t *testing.T) {
	var buf bytes.Buffer
	l := newTestLive(&buf, 80)
	r := report.Begin(l, "rollout")
	follow := report.For(l, "rollout")
	follow.Progress("deployment ecs-svc/111", 0, 1, "running, 1 pending, 0 failed")
	follow.Line("event", "(service s) has started 1 tasks: (task t1).")
	follow.Progress("deployment ecs-svc/111", 1, 1, "running, 0 pending, 0 failed")
	got := screen(t, buf.Bytes())
	want := []string{
		"[event] (service s) has started 1 tasks: (task t1).",
		"  rollout deployment ecs-svc/111: 1/1 running, 0 pending, 0 failed",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen during the rollout:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	r.End(nil)

	sr := report.Begin(l, "smoke-rollback")
	for i := int64(0); i <= 1; i++ {
		follow.Progress("deployment ecs-svc/222", i, 1, "running, 0 pending, 0 failed")
	}
	got = screen(t, buf.Bytes())
	if last := got[len(got)-1]; last != "  smoke-rollback deployment ecs-svc/222: 1/1 running, 0 pending, 0 failed" {
		t.Errorf("the rollback's deployment has no live line; screen:\n%s", strings.Join(got, "\n"))
	}
	sr.End(errors.New("rollback failed"))
	l.Close()
	got = phaseTimes(screen(t, buf.Bytes()))
	want = []string{
		"[event] (service s) has started 1 tasks: (task t1).",
		"  deployment ecs-svc/111: 1/1 running, 0 pending, 0 failed",
		"==> rollout 0.0s",
		// after a failure a task count is not kept: the error says how it ended
		"==> smoke-rollback failed after 0.0s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("final screen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// planEvent is what the deploy reports once the plan is complete, before
// its first write.
func planEvent(text string) report.Event {
	return report.Event{Kind: report.Info, Phase: "plan", Message: text, Fields: map[string]any{PlanField: true}}
}

const testPlan = `deploy stage (tag abc) to service s in cluster c
images:
  django   r/django@sha256:1111
service change: register a new revision of f and update service s from f:1 to it
task definition diff:
-  "image": "r/django@sha256:0000"
+  "image": "r/django@sha256:1111"
`

// TestRenderersPrintPlan: both renderers print the plan event as it comes,
// whole, above the live lines, and remember they did.
func TestRenderersPrintPlan(t *testing.T) {
	var buf bytes.Buffer
	l := newTestLive(&buf, 80)
	p := report.Begin(l, "push")
	p.Progress("django", 1, 2, "bytes")
	if l.PlanShown() || planShown(l) {
		t.Fatal("plan shown before any plan event")
	}
	l.Report(planEvent(testPlan))
	got := screen(t, buf.Bytes())
	want := strings.Split(strings.TrimSuffix(testPlan, "\n"), "\n")
	want = append(want, "  push django: 1 B of 2 B (50%)")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("live screen with the plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !planShown(l) {
		t.Error("live renderer: planShown false after the plan event")
	}

	buf.Reset()
	tr := newTextRenderer(&buf, false)
	tr.Report(planEvent(testPlan))
	if buf.String() != testPlan || !planShown(tr) {
		t.Errorf("text renderer printed %q (shown %v), want the plan", buf.String(), planShown(tr))
	}
	if planShown(report.Discard) {
		t.Error("a reporter without PlanShown counts as having shown the plan")
	}
}

// TestTextRendererPlainLines: when stderr is not a terminal, plain lines:
// no cursor movement, the build folded (its lines only when it fails, or
// with --verbose), and byte counts at most once per progressEvery per image
// while they move (the push's own line says where they ended).
func TestTextRendererPlainLines(t *testing.T) {
	var buf bytes.Buffer
	tr := newTextRenderer(&buf, false)
	clock := time.Unix(0, 0)
	tr.now = func() time.Time { return clock }
	b := report.Begin(tr, "build")
	b.Line("django", "#1 step")
	b.Line("next", "#1 step")
	b.End(nil)
	p := report.Begin(tr, "push")
	for i := int64(1); i <= 100; i++ {
		p.Progress("django", i, 100, "bytes")
		clock = clock.Add(100 * time.Millisecond) // 10 s in all
	}
	p.End(nil)
	out := buf.String()
	if strings.ContainsAny(out, "\r\x1b") {
		t.Errorf("control characters in plain output: %q", out)
	}
	for _, w := range []string{"[django] #1 step\n", "[next] #1 step\n", "django: 100 B of 100 B\n"} {
		if strings.Contains(out, w) {
			t.Errorf("plain output has %q (a build that succeeded is folded; the final count is the push's line):\n%s", w, out)
		}
	}
	if n := strings.Count(out, "django: "); n < 2 || n > 3 {
		t.Errorf("100 byte counts over 10 s printed %d lines, want 2 or 3 (one per 5 s):\n%s", n, out)
	}

	// --verbose, and a failed build: every line
	for _, verbose := range []bool{true, false} {
		buf.Reset()
		tr = newTextRenderer(&buf, false)
		tr.verbose = verbose
		b = report.Begin(tr, "build")
		b.Line("django", "#1 step")
		var err error
		if !verbose {
			err = errors.New("build of django failed")
		}
		b.End(err)
		if !strings.Contains(buf.String(), "[django] #1 step\n") {
			t.Errorf("verbose %v: the build's line is not printed:\n%s", verbose, buf.String())
		}
	}
}

// TestTextRendererBuildSummary: a fully cached build is one line per image;
// a build that ran steps names them with their times.
func TestTextRendererBuildSummary(t *testing.T) {
	var buf bytes.Buffer
	tr := newTextRenderer(&buf, false)
	b := report.Begin(tr, "build")
	for _, l := range []string{"#1 [internal] load build definition from Dockerfile", "#1 DONE 0.0s",
		"#4 [1/3] FROM docker.io/library/python:3.13-alpine", "#4 DONE 0.0s",
		"#5 [2/3] WORKDIR /code", "#5 CACHED", "#6 [3/3] COPY . .", "#6 CACHED", "#7 exporting to image", "#7 DONE 0.0s"} {
		b.Line("django", l)
	}
	for _, l := range []string{"#5 [2/3] RUN npm ci", "#5 CACHED", "#6 [3/3] RUN npm run build", "#6 DONE 12.3s"} {
		b.Line("next", l)
	}
	b.Fields("built django: d (1) in 0.5s", map[string]any{"image": "django"})
	b.Fields("built next: n (2) in 13.0s", map[string]any{"image": "next"})
	b.End(nil)
	report.Begin(tr, "push-plan").End(nil)
	tr.Close()
	want := "built django: d (1) in 0.5s (all 2 steps cached)\n" +
		"built next: n (2) in 13.0s (1 of 2 steps cached; ran:)\n" +
		"  next [3/3] RUN npm run build  12.3s\n" +
		"==> build 0.0s · push-plan 0.0s\n" // phases without lines between them: one line
	times := regexp.MustCompile(`==> .*`)
	norm := func(s string) string {
		return times.ReplaceAllStringFunc(s, func(l string) string { return regexp.MustCompile(`\d+\.\ds`).ReplaceAllString(l, "0.0s") })
	}
	if got := norm(buf.String()); got != norm(want) {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func phaseTimesText(s string) string {
	return strings.Join(phaseTimes(strings.Split(s, "\n")), "\n")
}

// TestWriteDeployText: after a deploy whose plan was printed before the
// first write, the end is a short result, not the plan again; a dry run and
// a run whose plan was never shown print it.
func TestWriteDeployText(t *testing.T) {
	res := &deploy.Result{Env: "stage", Cluster: "c", Service: "s", Tag: "abc", Outcome: "deployed",
		TaskDefARN: "arn:aws:ecs:us-west-2:123456789012:task-definition/f:2", DeploymentID: "ecs-svc/111",
		Change: "register a new revision of f and update service s from f:1 to it", Diff: "-a\n+b\n"}
	var buf bytes.Buffer
	if err := writeDeployText(&buf, res, nil, true); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "deployed: service s runs f:2 (deployment ecs-svc/111), running tasks verified\n"; got != want {
		t.Errorf("after a shown plan:\n got %q\nwant %q", got, want)
	}

	buf.Reset()
	_ = writeDeployText(&buf, res, exitcode.Wrap(exitcode.RolledBack, errors.New("rolled back")), true)
	if got, want := buf.String(), "rolled-back (exit 3): service s, deployment ecs-svc/111 of f:2\n"; got != want {
		t.Errorf("failure after a shown plan:\n got %q\nwant %q", got, want)
	}

	buf.Reset()
	_ = writeDeployText(&buf, res, nil, false)
	if out := buf.String(); !strings.Contains(out, "task definition diff:\n-a\n+b\n") || !strings.HasSuffix(out, "running tasks verified\n") {
		t.Errorf("without a shown plan the plan and the summary are printed:\n%s", out)
	}

	buf.Reset()
	dry := *res
	dry.DryRun, dry.Outcome = true, "dry-run"
	_ = writeDeployText(&buf, &dry, nil, true)
	if out := buf.String(); !strings.Contains(out, "service change:") || !strings.Contains(out, "dry run: nothing was changed") {
		t.Errorf("a dry run prints its plan:\n%s", out)
	}
}

// phaseTimes replaces the seconds of "==> phase 1.2s" lines by 0.0,
// for tests on a busy machine.
func phaseTimes(lines []string) []string {
	re := regexp.MustCompile(`^(==> \S+(?: failed after)?) [0-9.]+s$`)
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = re.ReplaceAllString(l, "$1 0.0s")
	}
	return out
}

// TestLiveRendererFailureTail: a failed build prints the folded lines of the
// image that failed only when its error does not quote them already.
func TestLiveRendererFailureTail(t *testing.T) {
	for _, c := range []struct {
		err  string
		want []string
	}{
		{"build of next (stage/next.dockerfile) failed at step #9 (exit status 1); last lines:\n#9 ERROR: npm ci failed", nil},
		{"build of next failed", []string{"[next] #8 npm ci", "[next] #9 ERROR: npm ci failed"}},
		{"the engine went away", []string{"[django] #3 pip install", "[next] #8 npm ci", "[next] #9 ERROR: npm ci failed"}},
	} {
		var buf bytes.Buffer
		l := newTestLive(&buf, 80)
		b := report.Begin(l, "build")
		b.Line("django", "#3 pip install")
		b.Line("next", "#8 npm ci")
		b.Line("next", "#9 ERROR: npm ci failed")
		b.End(errors.New(c.err))
		l.Close()
		got := phaseTimes(screen(t, buf.Bytes()))
		want := append(append([]string{}, c.want...), "==> build failed after 0.0s")
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("error %q:\n%s\nwant:\n%s", c.err, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// Issue 20, finding 4: a live line is masked before it is cut to the
// terminal's width, so a secret across the cut leaves no prefix.
func TestLiveRendererMasksBeforeCut(t *testing.T) {
	const secret = "Zq8-live-cut-secret-value-417"
	report.AddSecret(secret)
	for width := 20; width < 60; width++ {
		var buf bytes.Buffer
		l := newTestLive(&buf, width)
		b := report.Begin(l, "build")
		b.Line("django", "#5 RUN echo "+secret+" done")
		for _, row := range screen(t, buf.Bytes()) {
			for n := 4; n <= len(secret); n++ {
				if strings.Contains(row, secret[:n]) {
					t.Fatalf("width %d: %q shows the secret's first %d bytes", width, row, n)
				}
			}
		}
		b.End(nil)
	}
}

// TestTextRendererFoldsRepeatedTries: a retry that says what the one before
// said is not printed again; one that says something new is.
func TestTextRendererFoldsRepeatedTries(t *testing.T) {
	var buf bytes.Buffer
	tr := newTextRenderer(&buf, false)
	p := report.Begin(tr, "smoke")
	for i := 1; i <= 5; i++ {
		p.Line("http://x/h", fmt.Sprintf("try %d: status 500, want 200", i))
	}
	p.Line("http://x/h", "try 6: context deadline exceeded")
	p.End(errors.New("smoke failed"))
	want := "[http://x/h] try 1: status 500, want 200\n[http://x/h] try 6: context deadline exceeded\n==> smoke failed after 0.0s\n"
	if got := phaseTimesText(buf.String()); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
