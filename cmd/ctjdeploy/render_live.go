package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hackforla/ctjdeploy/internal/report"
)

// liveRenderer is the terminal renderer: below the permanent lines (phase
// starts and ends, information, warnings, errors) it keeps one live line per
// active phase that it rewrites in place ("\r" + clear line) with the phase's
// latest progress: build steps, bytes pushed, tasks running.
//
// Line events of the phases in transientLinePhases (build output) only update
// the live line; the last liveTail of them are printed if the phase fails.
// Line events of other phases (service events) are printed as permanent lines.
type liveRenderer struct {
	mu          sync.Mutex
	w           io.Writer
	color       bool
	width       func() int
	now         func() time.Time
	minInterval time.Duration // between two redraws caused by progress alone
	lastDraw    time.Time
	dirty       bool        // a redraw is pending
	timer       *time.Timer // the pending redraw
	closed      bool
	active      []string // phases with a live line, in start order
	phases      map[string]*livePhase
	drawn       int // live lines on screen; the cursor is at the end of the last
}

type livePhase struct {
	subjects []string          // in order of first appearance
	status   map[string]string // subject → latest status
	tail     []string          // last transient lines, for a failure
}

// transientLinePhases are the phases whose Line events are progress, not
// news: the live line shows them and a failure prints their tail.
var transientLinePhases = map[string]bool{"build": true}

const liveTail = 20

func newLiveRenderer(w io.Writer, color bool, width func() int) *liveRenderer {
	if width == nil {
		width = stderrWidth
	}
	return &liveRenderer{
		w:           w,
		color:       color,
		width:       width,
		now:         time.Now,
		minInterval: 100 * time.Millisecond,
		phases:      map[string]*livePhase{},
	}
}

// stderrWidth is the width of the terminal on stderr (COLUMNS, else 80).
func stderrWidth() int {
	if ws, err := unix.IoctlGetWinsize(int(os.Stderr.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
		return int(ws.Col)
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 80
}

func (l *liveRenderer) paint(code, s string) string {
	if !l.color {
		return s
	}
	return code + s + ansiReset
}

// clear erases the live lines and leaves the cursor at the start of the
// first of them.
func (l *liveRenderer) clear() {
	if l.drawn == 0 {
		return
	}
	var b strings.Builder
	b.WriteString("\r\x1b[2K")
	for i := 1; i < l.drawn; i++ {
		b.WriteString("\x1b[1A\x1b[2K")
	}
	io.WriteString(l.w, b.String())
	l.drawn = 0
}

// draw writes the live lines (no trailing newline).
func (l *liveRenderer) draw() {
	width := l.width()
	if width < 20 {
		width = 20
	}
	var lines []string
	for _, name := range l.active {
		p := l.phases[name]
		var parts []string
		for _, s := range p.subjects {
			if st := p.status[s]; st != "" {
				parts = append(parts, st)
			}
		}
		text := "  " + name + ": " + strings.Join(parts, " · ")
		if len(parts) == 0 {
			text = "  " + name + " …"
		}
		lines = append(lines, l.paint(ansiDim, truncateRunes(sanitizeLine(text), width-1)))
	}
	if len(lines) > 0 {
		io.WriteString(l.w, strings.Join(lines, "\n"))
	}
	l.drawn = len(lines)
	l.lastDraw = l.now()
	l.dirty = false
}

// println prints a permanent line above the live lines.
func (l *liveRenderer) println(s string) {
	l.clear()
	io.WriteString(l.w, strings.TrimRight(s, "\n")+"\n")
	l.draw()
}

// update redraws the live lines, or, when the last redraw was very recent,
// schedules one for when minInterval has passed.
func (l *liveRenderer) update() {
	if wait := l.minInterval - l.now().Sub(l.lastDraw); wait > 0 {
		if !l.dirty {
			l.dirty = true
			l.timer = time.AfterFunc(wait, l.flush)
		}
		return
	}
	l.clear()
	l.draw()
}

// flush draws a redraw that update postponed.
func (l *liveRenderer) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dirty && !l.closed {
		l.clear()
		l.draw()
	}
}

func (l *liveRenderer) phase(name string) *livePhase {
	p := l.phases[name]
	if p == nil {
		p = &livePhase{status: map[string]string{}}
		l.phases[name] = p
	}
	return p
}

func (l *liveRenderer) isActive(name string) bool {
	for _, a := range l.active {
		if a == name {
			return true
		}
	}
	return false
}

func (p *livePhase) set(subject, status string) {
	if _, ok := p.status[subject]; !ok {
		p.subjects = append(p.subjects, subject)
	}
	if subject != "" {
		status = subject + " " + status
	}
	p.status[subject] = status
}

// Report renders one event.
func (l *liveRenderer) Report(e report.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e.Kind {
	case report.PhaseStart:
		if !l.isActive(e.Phase) {
			l.active = append(l.active, e.Phase)
		}
		l.phases[e.Phase] = &livePhase{status: map[string]string{}}
		l.println(l.paint(ansiBold, "==> "+e.Phase))
	case report.PhaseEnd:
		p := l.phase(e.Phase)
		for i, a := range l.active {
			if a == e.Phase {
				l.active = append(l.active[:i:i], l.active[i+1:]...)
				break
			}
		}
		delete(l.phases, e.Phase)
		secs, _ := e.Fields["seconds"].(float64)
		l.clear()
		if e.Err != nil {
			for _, t := range p.tail {
				io.WriteString(l.w, l.paint(ansiDim, t)+"\n")
			}
			l.println(l.paint(ansiRed, fmt.Sprintf("==> %s failed after %.1fs", e.Phase, secs)))
		} else {
			l.println(l.paint(ansiGreen, fmt.Sprintf("==> %s done in %.1fs", e.Phase, secs)))
		}
	case report.Line:
		line := e.Message
		if e.Subject != "" {
			line = "[" + e.Subject + "] " + line
		}
		if !transientLinePhases[e.Phase] || !l.isActive(e.Phase) {
			l.println(line)
			return
		}
		p := l.phase(e.Phase)
		p.tail = append(p.tail, sanitizeLine(line))
		if len(p.tail) > liveTail {
			p.tail = p.tail[len(p.tail)-liveTail:]
		}
		p.set(e.Subject, e.Message)
		l.update()
	case report.Progress:
		if e.Count == nil {
			return
		}
		if !l.isActive(e.Phase) {
			l.println(progressText(e))
			return
		}
		l.phase(e.Phase).set(e.Subject, progressCount(e.Count))
		l.update()
	case report.Warn:
		l.println(l.paint(ansiYellow, "warning: "+e.Message))
	default:
		if e.Message != "" {
			l.println(e.Message)
		}
	}
}

// Close erases the live lines, so that what is printed next starts on a
// clean line. Call it when the command ends.
func (l *liveRenderer) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
	}
	l.closed = true
	l.clear()
	l.active = nil
	return nil
}

// progressText renders a Progress event as one line: "django: 1.0 MiB of 4.0 MiB (25%)".
func progressText(e report.Event) string {
	if e.Count == nil {
		return e.Message
	}
	if e.Subject == "" {
		return progressCount(e.Count)
	}
	return e.Subject + ": " + progressCount(e.Count)
}

func progressCount(c *report.Counter) string {
	pct := ""
	if c.Total > 0 {
		pct = fmt.Sprintf(" (%d%%)", c.Done*100/c.Total)
	}
	if c.Unit == "bytes" {
		return fmt.Sprintf("%s of %s%s", report.HumanBytes(c.Done), report.HumanBytes(c.Total), pct)
	}
	return fmt.Sprintf("%d/%d %s", c.Done, c.Total, c.Unit)
}

// sanitizeLine replaces control characters (which would move the cursor and
// break the live region) with spaces.
func sanitizeLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// truncateRunes cuts s to at most n runes, marking the cut with "…".
func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 1 {
		return string(r[:n])
	}
	return string(r[:n-1]) + "…"
}
