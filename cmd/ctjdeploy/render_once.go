package main

import (
	"regexp"
	"strings"
	"sync"

	"github.com/hackforla/ctjdeploy/deploy/rollout"
	"github.com/hackforla/ctjdeploy/internal/report"
)

// sayOnce stands in front of the text and terminal renderers so that each
// thing is said once:
//
//   - the push plan's lines (phase push-plan) and the warnings of the plan
//     phase are held until the plan is printed, and dropped when the plan
//     says them (it lists every image's upload and every guard's verdict);
//     they are printed when no plan follows (a failure before it);
//   - a warning is printed once, however often it is reported, and so is a
//     service event whose text is the same as one printed before;
//   - "ECS is at STATE" is dropped right after "service deployment ID: STATE";
//   - a clause already printed (the circuit breaker's reason, after ": ") is
//     cut from a later line of the rollout, and from the final error;
//   - the final error's "last service events:" leave out the events printed
//     live, and a refusal's guard lines that the plan printed.
//
// The JSON document and the GitHub summary keep everything: they are read
// on their own.
type sayOnce struct {
	mu      sync.Mutex
	next    report.Reporter
	holding bool
	held    []report.Event
	warned  map[string]bool
	lines   map[string]bool // Line events printed (their messages)
	clauses []string        // what followed ": " in the rollout's lines
	state   string          // the last "service deployment ID: STATE"
	planned bool            // the plan was printed (an event)
	// keepWarnings: warnings are not held nor left out for the plan (the
	// GitHub renderer makes them annotations, read apart from the log)
	keepWarnings bool
}

func newSayOnce(next report.Reporter) *sayOnce {
	return &sayOnce{next: next, warned: map[string]bool{}, lines: map[string]bool{}}
}

// phases between the push plan and the plan, whose events are held.
var heldPhases = map[string]bool{"push-plan": true, "render": true, "plan": true}

var sdStateRE = regexp.MustCompile(`^service deployment \S+: ([A-Z_]+)\b`)
var ecsAtRE = regexp.MustCompile(`^ECS is at ([A-Z_]+)$`)

func (o *sayOnce) Report(e report.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case e.Kind == report.PhaseStart && e.Phase == "push-plan":
		o.holding = true
	case e.Kind == report.PhaseStart && o.holding && !heldPhases[e.Phase]:
		o.release("")
	case e.Kind == report.PhaseEnd && e.Err != nil && e.Phase != "plan" && o.holding:
		// a failure before the plan: what was held is all there is
		o.next.Report(e)
		o.release("")
		return
	case e.Kind == report.Warn:
		if o.warned[e.Message] {
			return
		}
		o.warned[e.Message] = true
		if o.holding && heldPhases[e.Phase] && !o.keepWarnings {
			o.held = append(o.held, e)
			return
		}
	case e.Kind == report.Info && isPlanEvent(e):
		o.planned = true
		o.release(e.Message)
	case e.Kind == report.Info && o.holding && e.Phase == "push-plan":
		o.held = append(o.held, e)
		return
	case e.Kind == report.Line:
		msg := strings.TrimSpace(e.Message)
		if e.Subject == "event" && o.lines[msg] {
			return // ECS says "has reached a steady state." again: nothing new
		}
		o.lines[msg] = true
	case e.Kind == report.Info && e.Phase == "rollout":
		if m := ecsAtRE.FindStringSubmatch(e.Message); m != nil && m[1] == o.state {
			return
		}
		if m := sdStateRE.FindStringSubmatch(e.Message); m != nil {
			o.state = m[1]
		}
		e.Message = o.cutSeen(e.Message)
		o.remember(e.Message)
	}
	o.next.Report(e)
}

// release forwards the held events, leaving out what plan (the plan's text,
// "" when none is printed) says: the push plan's lines when there is a
// plan, a warning the plan holds.
func (o *sayOnce) release(plan string) {
	held := o.held
	o.held, o.holding = nil, false
	for _, h := range held {
		// a guard's warning ("stale-commit guard: cannot tell ...") is its
		// verdict's line in the plan ("stale-commit warn   cannot tell ...")
		msg := h.Message
		if _, rest, ok := strings.Cut(msg, " guard: "); ok {
			msg = rest
		}
		if plan != "" && (h.Kind == report.Info || strings.Contains(plan, msg)) {
			continue
		}
		o.next.Report(h)
	}
}

// remember notes the clauses of a printed line: each text after ": ".
func (o *sayOnce) remember(line string) {
	for i := strings.Index(line, ": "); i >= 0; {
		if s := line[i+2:]; len(s) >= 16 {
			o.clauses = append(o.clauses, s)
		}
		j := strings.Index(line[i+2:], ": ")
		if j < 0 {
			break
		}
		i += 2 + j
	}
}

// cutSeen cuts line before the first ": CLAUSE" whose CLAUSE begins a
// clause printed before (so "…: circuit breaker: tasks failed to start"
// after "…: circuit breaker: tasks failed to start (3 failed tasks …)"),
// whatever the count of failed tasks in each (rollout.WithoutCounts). A
// ": " inside parentheses is no place to cut: "(circuit breaker
// monitoring: 2 failed tasks …)" stays whole.
func (o *sayOnce) cutSeen(line string) string {
	for i := strings.Index(line, ": "); i >= 0; {
		inParens := strings.Count(line[:i], "(") > strings.Count(line[:i], ")")
		if s := rollout.WithoutCounts(line[i+2:]); len(s) >= 16 && i >= 16 && !inParens {
			for _, c := range o.clauses {
				if strings.HasPrefix(rollout.WithoutCounts(c), s) {
					return line[:i]
				}
			}
		}
		j := strings.Index(line[i+2:], ": ")
		if j < 0 {
			break
		}
		i += 2 + j
	}
	return line
}

// finish releases what is still held, knowing the plan printed at the end
// ("" if none), and returns the error's text with what was said already
// left out.
func (o *sayOnce) finish(plan, errText string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if plan != "" || !o.planned {
		o.release(plan)
	}
	if errText == "" {
		return ""
	}
	lines := strings.Split(errText, "\n")
	if first := o.cutSeen(lines[0]); first != lines[0] {
		lines[0] = first + " (the reason is above)"
	}
	var out []string
	for i := 0; i < len(lines); i++ {
		ln := lines[i]
		var section []string
		j := i + 1
		for ; j < len(lines) && strings.HasPrefix(lines[j], "  "); j++ {
			section = append(section, lines[j])
		}
		switch {
		case strings.TrimSpace(ln) == "last service events:":
			var keep []string
			for _, s := range section {
				if !o.lines[strings.TrimSpace(s)] {
					keep = append(keep, s)
				}
			}
			if len(keep) > 0 {
				out = append(out, ln)
				out = append(out, keep...)
			}
		case strings.HasPrefix(ln, "refused") && plan != "":
			var keep []string
			for _, s := range section {
				_, msg, _ := strings.Cut(strings.TrimSpace(s), ": ")
				if msg == "" || !strings.Contains(plan, msg) {
					keep = append(keep, s)
				}
			}
			if len(keep) == 0 && len(section) > 0 {
				ln = strings.TrimSuffix(ln, ":") + " (the guards' verdicts are in the plan above)"
			}
			out = append(out, ln)
			out = append(out, keep...)
		default:
			out = append(out, ln)
			out = append(out, section...)
		}
		i = j - 1
	}
	return strings.Join(out, "\n")
}

// PlanShown says whether the renderer behind printed the plan.
func (o *sayOnce) PlanShown() bool { return planShown(o.next) }

// Close releases what is still held and ends the renderer behind.
func (o *sayOnce) Close() error {
	o.mu.Lock()
	if o.holding || len(o.held) > 0 {
		o.release("")
	}
	o.mu.Unlock()
	closeReporter(o.next)
	return nil
}

// onceOf is the sayOnce in front of rep's renderer, if any.
func onceOf(rep report.Reporter) *sayOnce {
	o, _ := unwrapRecorder(rep).(*sayOnce)
	return o
}
