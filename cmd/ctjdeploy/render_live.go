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
// starts and ends, information, warnings, errors, the plan) it keeps live
// lines that it rewrites in place ("\r" + clear line): one per subject of an
// active phase (each image being built or pushed, each deployment being
// followed), with its latest progress, or one per phase without subjects.
//
// Line events of the phases in transientLinePhases (BuildKit's output) only
// update the image's live line, unless verbose (--verbose) asks for all of
// them; the last liveTail of them are printed if the phase fails. Line events
// of other phases (service events, smoke tries) are printed as permanent
// lines. When a phase ends, the last progress of each of its subjects is
// printed once (bytes pushed, tasks running), so the result stays on screen.
//
// A Progress event of a phase that is not active (the rollout that the
// smoke checks' rollback follows) gets a live line under the phase that is.
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
	drawn       int  // live lines on screen; the cursor is at the end of the last
	verbose     bool // print every build line instead of folding it
	planShown   bool // a plan event was printed
	builds      *buildFold
}

type livePhase struct {
	subjects []string            // in order of first appearance
	status   map[string]string   // subject → latest status
	progress map[string]bool     // subjects whose status is a Progress count
	tails    map[string][]string // subject → its last transient lines, for a failure
	ended    map[string]bool     // subjects whose final state a line said
	bytes    map[string]bool     // subjects whose count is bytes (kept after a failure; a task count is not)
}

func newLivePhase() *livePhase {
	return &livePhase{status: map[string]string{}, progress: map[string]bool{}, tails: map[string][]string{}, ended: map[string]bool{}, bytes: map[string]bool{}}
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
		builds:      newBuildFold(),
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
		shown := 0
		for _, subj := range p.subjects {
			st := p.status[subj]
			if st == "" {
				continue
			}
			shown++
			text := "  " + name + ": " + st
			if subj != "" {
				text = "  " + name + " " + subj + ": " + st
			}
			// Masked before it is cut: a cut secret's prefix is no longer
			// recognised by the writer's mask.
			lines = append(lines, l.paint(ansiDim, truncateRunes(sanitizeLine(report.Mask(text)), width-1)))
		}
		if shown == 0 {
			lines = append(lines, l.paint(ansiDim, truncateRunes(sanitizeLine(report.Mask("  "+name+" …")), width-1)))
		}
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
		p = newLivePhase()
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

func (p *livePhase) set(subject, status string, progress bool) {
	if _, ok := p.status[subject]; !ok {
		p.subjects = append(p.subjects, subject)
	}
	p.status[subject] = status
	p.progress[subject] = progress
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
		l.phases[e.Phase] = newLivePhase()
		// no line yet: the live region shows the phase ("  build …"); its
		// one permanent line comes at its end, with its time
		l.update()
	case report.PhaseEnd:
		l.phaseEnd(e)
	case report.Line:
		l.line(e)
	case report.Progress:
		l.progress(e)
	case report.Warn:
		l.println(l.paint(ansiYellow, "warning: "+e.Message))
	default:
		l.info(e)
	}
}

// phaseEnd ends a phase: its live lines replaced by their final state, the
// failed subjects' tails, and its one line with its time.
func (l *liveRenderer) phaseEnd(e report.Event) {
	p := l.phase(e.Phase)
	for i, a := range l.active {
		if a == e.Phase {
			l.active = append(l.active[:i:i], l.active[i+1:]...)
			break
		}
	}
	delete(l.phases, e.Phase)
	if e.Phase == "build" {
		l.builds = newBuildFold()
	}
	l.clear()
	for _, subj := range p.subjects {
		// where the counts ended (tasks running), unless a line of the
		// phase said how the subject ended (a push's digest)
		if p.progress[subj] && !p.ended[subj] && (e.Err == nil || p.bytes[subj]) {
			text := "  " + p.status[subj]
			if subj != "" {
				text = "  " + subj + ": " + p.status[subj]
			}
			io.WriteString(l.w, l.paint(ansiDim, sanitizeLine(text))+"\n")
		}
	}
	if e.Err != nil {
		for _, t := range p.failureTail(e.Err.Error()) {
			io.WriteString(l.w, l.paint(ansiDim, t)+"\n")
		}
		l.println(l.paint(ansiRed, phaseLine(e)))
		return
	}
	l.println(l.paint(ansiGreen, phaseLine(e)))
}

// line is a line of output: printed, or folded into its phase's live line.
func (l *liveRenderer) line(e report.Event) {
	line := e.Message
	if e.Subject != "" {
		line = "[" + e.Subject + "] " + line
	}
	if l.verbose || !transientLinePhases[e.Phase] || !l.isActive(e.Phase) {
		l.println(line)
		return
	}
	p := l.phase(e.Phase)
	l.builds.add(e.Subject, e.Message)
	tail := append(p.tails[e.Subject], sanitizeLine(line))
	if len(tail) > liveTail {
		tail = tail[len(tail)-liveTail:]
	}
	p.tails[e.Subject] = tail
	p.set(e.Subject, e.Message, false)
	l.update()
}

// progress is a count that moves: the live line of the phase that runs it.
func (l *liveRenderer) progress(e report.Event) {
	if e.Count == nil {
		return
	}
	name, subj := e.Phase, e.Subject
	if !l.isActive(name) {
		if len(l.active) == 0 {
			l.println(progressText(e))
			return
		}
		name = l.active[len(l.active)-1] // the phase that runs this one
	}
	l.phase(name).set(subj, progressCount(e.Count), true)
	l.phase(name).bytes[subj] = e.Count.Unit == "bytes"
	l.update()
}

// info is a permanent line; a subject's final state replaces its live line.
func (l *liveRenderer) info(e report.Event) {
	if isPlanEvent(e) {
		l.planShown = true
	}
	if p := l.phases[e.Phase]; p != nil {
		// "django: …@sha256:… (uploaded …)": the subject's final state
		// replaces its live line
		for _, subj := range p.subjects {
			if subj != "" && strings.HasPrefix(e.Message, subj+": ") {
				p.status[subj] = ""
				p.ended[subj] = true
			}
		}
	}
	if img, _ := e.Fields["image"].(string); img != "" && e.Phase == "build" && !l.verbose {
		for _, ln := range l.builds.built(img, e.Message) {
			l.println(ln)
		}
		if p := l.phases[e.Phase]; p != nil {
			p.status[img] = ""
		}
		return
	}
	if e.Message != "" {
		l.println(e.Message)
	}
}

// failureTail is what to print of the folded lines when the phase failed
// with message msg: the tails of the subjects msg names ("build of next"),
// or of every subject when it names none, leaving out a subject whose last
// line msg holds already (the build's error quotes its last lines, and it is
// printed at the end).
func (p *livePhase) failureTail(msg string) []string {
	named := map[string]bool{}
	for _, s := range p.subjects {
		if s != "" && (strings.Contains(msg, " of "+s+" ") || strings.Contains(msg, " of "+s+":")) {
			named[s] = true
		}
	}
	var out []string
	for _, s := range p.subjects {
		tail := p.tails[s]
		if len(tail) == 0 || (len(named) > 0 && !named[s]) {
			continue
		}
		last := tail[len(tail)-1]
		if i := strings.Index(last, "] "); i >= 0 && s != "" {
			last = last[i+2:]
		}
		if strings.Contains(msg, strings.TrimSpace(last)) {
			continue
		}
		out = append(out, tail...)
	}
	return out
}

// PlanShown says whether the plan was printed (an event of isPlanEvent),
// so the end of the command prints a short result instead of the plan again.
func (l *liveRenderer) PlanShown() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.planShown
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
