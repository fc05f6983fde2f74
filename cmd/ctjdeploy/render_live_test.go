package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hackforla/ctjdeploy/internal/report"
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
	want := "==> push\n" + // permanent line; no live line yet (nothing to show but the name)
		"  push …" +
		"\r\x1b[2K" + "  push: django 1.0 MiB of 4.0 MiB (25%)" +
		"\r\x1b[2K" + "  push: django 2.0 MiB of 4.0 MiB (50%)" +
		"\r\x1b[2K" + "==> push done in 0.0s\n"
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
		"==> build",
		"==> push",
		"  build: django #5 [2/4] RUN…", // cut to the width less one column
		"  push: next 50 B of 100 B (…",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen while two phases run:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	b.Warnf("cache miss")
	b.End(errors.New("build of next failed"))
	report.For(l, "rollout").Line("", "(service s) has reached a steady state.")
	push.End(nil)
	l.Close()
	got = screen(t, buf.Bytes())
	want = []string{
		"==> build",
		"==> push",
		"warning: cache miss",
		"[django] #5 [2/4] RUN pip install -r requirements.txt --no-cache-dir", // the failed phase's tail
		"[next] #7 npm run build [31m",
		"==> build failed after 0.0s",
		"(service s) has reached a steady state.",
		"==> push done in 0.0s",
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
			time.Sleep(20 * time.Millisecond)
		}
		p.End(nil)
		r := report.Begin(l, "rollout")
		r.Progress("", 1, 1, "tasks running")
		time.Sleep(400 * time.Millisecond) // longer than minInterval: the postponed redraw happens
		os.Stderr.WriteString("\nLIVE-DEMO-END\n")
		time.Sleep(5 * time.Second) // keep the pane until it is captured
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
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out, err := exec.Command(tmux, "-S", sock, "capture-pane", "-p", "-t", session).Output()
		if err != nil {
			t.Fatalf("capture-pane: %v", err)
		}
		pane = string(out)
		if strings.Contains(pane, "LIVE-DEMO-END") {
			break
		}
	}
	var lines []string
	for _, ln := range strings.Split(pane, "\n") {
		if ln = strings.TrimRight(ln, " "); ln != "" {
			lines = append(lines, ln)
		}
	}
	want := []string{"==> push", "==> push done in", "==> rollout", "  rollout: 1/1 tasks running", "LIVE-DEMO-END"}
	if len(lines) != len(want) {
		t.Fatalf("pane:\n%s\nwant lines starting with %q", pane, want)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("pane line %d = %q, want prefix %q\n%s", i, lines[i], w, pane)
		}
	}
}
