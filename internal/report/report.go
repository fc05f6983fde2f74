// Package report carries progress out of the phases. Phases never print: they
// send Events to a Reporter, and cmd/ctjdeploy chooses how to render them
// (plain text for logs, a live line on a terminal, JSON, GitHub Actions).
package report

import (
	"fmt"
	"sync"
	"time"
)

// Kind says what an Event is.
type Kind string

// The kinds of events.
const (
	PhaseStart Kind = "phase-start" // a phase begins
	PhaseEnd   Kind = "phase-end"   // a phase ends; Err says how
	Line       Kind = "line"        // a line of a tool's own output (build step, service event)
	Info       Kind = "info"        // something the user should read
	Warn       Kind = "warn"        // something the user should act on; the run goes on
	Progress   Kind = "progress"    // a counter moved (bytes pushed, tasks running)
)

// Event is one thing that happened.
type Event struct {
	Time    time.Time
	Kind    Kind
	Phase   string // build, push, terraform, render, plan, register, update, rollout, verify, ...
	Subject string // optional: the image, container or resource the event is about
	Message string
	Err     error    // PhaseEnd: nil on success
	Count   *Counter // Progress
	Fields  map[string]any
}

// Counter is a progress count: Done of Total Unit ("bytes", "tasks").
type Counter struct {
	Done, Total int64
	Unit        string
}

// Reporter receives events. Implementations must be safe for concurrent use:
// images build and push in parallel.
type Reporter interface {
	Report(Event)
}

// Func adapts a function to a Reporter.
type Func func(Event)

// Report calls f(e).
func (f Func) Report(e Event) { f(e) }

// Discard drops every event.
var Discard Reporter = Func(func(Event) {})

// Recorder keeps every event; tests use it.
type Recorder struct {
	mu     sync.Mutex
	Events []Event
}

// Report records e.
func (r *Recorder) Report(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Events = append(r.Events, e)
}

// All returns a copy of the recorded events.
func (r *Recorder) All() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.Events...)
}

// Phase is a helper for a phase's events.
type Phase struct {
	r     Reporter
	name  string
	start time.Time
}

// Begin reports the start of phase name and returns a helper for its events.
// A nil Reporter discards.
func Begin(r Reporter, name string) *Phase {
	if r == nil {
		r = Discard
	}
	p := &Phase{r: r, name: name, start: time.Now()}
	p.emit(Event{Kind: PhaseStart})
	return p
}

// For returns a helper for events of phase name without reporting a start.
func For(r Reporter, name string) *Phase {
	if r == nil {
		r = Discard
	}
	return &Phase{r: r, name: name, start: time.Now()}
}

func (p *Phase) emit(e Event) {
	e.Time = time.Now()
	e.Phase = p.name
	p.r.Report(e)
}

// Line reports a line of output about subject (may be empty).
func (p *Phase) Line(subject, line string) {
	p.emit(Event{Kind: Line, Subject: subject, Message: line})
}

// Infof reports information.
func (p *Phase) Infof(format string, args ...any) {
	p.emit(Event{Kind: Info, Message: fmt.Sprintf(format, args...)})
}

// Warnf reports a warning.
func (p *Phase) Warnf(format string, args ...any) {
	p.emit(Event{Kind: Warn, Message: fmt.Sprintf(format, args...)})
}

// Progress reports a counter for subject.
func (p *Phase) Progress(subject string, done, total int64, unit string) {
	p.emit(Event{Kind: Progress, Subject: subject, Count: &Counter{Done: done, Total: total, Unit: unit}})
}

// Fields reports information with structured fields (for JSON and summaries).
func (p *Phase) Fields(msg string, fields map[string]any) {
	p.emit(Event{Kind: Info, Message: msg, Fields: fields})
}

// End reports the end of the phase with err (nil: success) and returns err.
func (p *Phase) End(err error) error {
	p.emit(Event{Kind: PhaseEnd, Err: err, Fields: map[string]any{"seconds": time.Since(p.start).Seconds()}})
	return err
}

// Elapsed is the time since the phase began.
func (p *Phase) Elapsed() time.Duration { return time.Since(p.start) }

// HumanBytes formats a byte count for people: 512 B, 1.0 MiB.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
