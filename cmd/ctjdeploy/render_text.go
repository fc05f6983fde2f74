package main

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hackforla/ctjdeploy/internal/ecsread"

	"github.com/hackforla/ctjdeploy/deploy"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
)

// textRenderer writes events as plain lines, for logs, pipes and dumb
// terminals, so that the log reads like a summary: one line per phase, at
// its end, with its time ("==> push 0.8s"); a build as one line per image
// (with the steps that ran and their times; every BuildKit line only when
// the build fails, or with --verbose); byte counts at most once per
// progressEvery per subject while they move (the push's own line gives the
// result); a count of tasks only when it changed.
type textRenderer struct {
	mu            sync.Mutex
	w             io.Writer
	color         bool
	verbose       bool // every build line as it comes (--verbose)
	progressEvery time.Duration
	lastProgress  map[string]time.Time
	lastCount     map[string]string
	now           func() time.Time
	planShown     bool
	builds        *buildFold
	// phases that ended without a line of their own since: printed as one
	// line ("==> live 0.0s · terraform 0.2s") before the next line
	pending []string
	// counts (tasks running) of each phase, printed where they ended, at
	// the phase's end
	counts     map[string]string
	countOrder []string
	active     []string          // phases started and not ended, in order
	lastTry    map[string]string // subject -> what its last retry line said
}

func newTextRenderer(w io.Writer, color bool) *textRenderer {
	return &textRenderer{w: w, color: color, progressEvery: 5 * time.Second, lastProgress: map[string]time.Time{},
		lastCount: map[string]string{}, now: time.Now, builds: newBuildFold()}
}

// PlanField marks the Info event that carries the plan in its Message
// (Fields[PlanField] == true), reported once the plan is complete and
// before the first write. Renderers print it as it comes; the command's end
// then prints a short result instead of the plan again (writeDeployText).
const PlanField = "plan"

// isPlanEvent says whether e is the plan (see PlanField).
func isPlanEvent(e report.Event) bool {
	b, _ := e.Fields[PlanField].(bool)
	return e.Kind == report.Info && b
}

// planShown says whether rep printed the plan already (renderers with a
// PlanShown method; false for the others).
func planShown(rep report.Reporter) bool {
	ps, ok := rep.(interface{ PlanShown() bool })
	return ok && ps.PlanShown()
}

// PlanShown says whether the plan was printed.
func (t *textRenderer) PlanShown() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.planShown
}

// writeDeployText is the end of a deploy in text: the plan and, on success,
// its one-line summary; when the renderer already printed the plan before
// the first write (shown), only a short result: the summary, or the
// outcome and exit code (the error itself follows on stderr).
func writeDeployText(w io.Writer, res *deploy.Result, err error, shown bool) error {
	if res == nil {
		return nil
	}
	if !shown || res.DryRun {
		if werr := deploy.WritePlan(w, res); werr != nil {
			return werr
		}
	}
	if err == nil {
		if s := deploy.Summary(res); s != "" {
			_, werr := fmt.Fprintln(w, s)
			return werr
		}
		return nil
	}
	if !shown {
		return nil
	}
	code := exitcode.Of(err)
	line := fmt.Sprintf("%s (exit %d): service %s", exitcode.Name(code), code, res.Service)
	if res.TaskDefARN != "" && res.DeploymentID != "" {
		line += fmt.Sprintf(", deployment %s of %s", res.DeploymentID, ecsread.ShortARN(res.TaskDefARN))
	}
	_, werr := fmt.Fprintln(w, line)
	return werr
}

const (
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiGreen  = "\x1b[32m"
	ansiDim    = "\x1b[2m"
	ansiReset  = "\x1b[0m"
)

func (t *textRenderer) paint(code, s string) string {
	if !t.color {
		return s
	}
	return code + s + ansiReset
}

func (t *textRenderer) Report(e report.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch e.Kind {
	case report.PhaseStart:
		t.active = append(t.active, e.Phase)
	case report.PhaseEnd:
		for i, a := range t.active {
			if a == e.Phase {
				t.active = append(t.active[:i:i], t.active[i+1:]...)
				break
			}
		}
	case report.Progress:
		// a count of a phase that is not running (the rollout that the
		// smoke checks' rollback follows) belongs to the phase that is
		if len(t.active) > 0 && !slices.Contains(t.active, e.Phase) {
			e.Phase = t.active[len(t.active)-1]
		}
	}
	if e.Kind == report.PhaseEnd {
		counts := t.endCounts(e.Phase)
		if e.Err == nil {
			// where the counts ended; after a failure the error says it
			// (a count read before the last failures would contradict it)
			t.print(counts...)
		}
		if e.Err == nil {
			t.print(t.lines(e)...) // a failed build's lines, none here
			secs, _ := e.Fields["seconds"].(float64)
			t.pending = append(t.pending, fmt.Sprintf("%s %.1fs", e.Phase, secs))
			return
		}
	}
	t.print(t.lines(e)...)
}

// print writes lines, after the phases that ended before them.
func (t *textRenderer) print(lines ...string) {
	if len(lines) == 0 {
		return
	}
	t.flushPhases()
	for _, line := range lines {
		fmt.Fprintln(t.w, strings.TrimRight(line, "\n"))
	}
}

func (t *textRenderer) flushPhases() {
	if len(t.pending) == 0 {
		return
	}
	fmt.Fprintln(t.w, t.paint(ansiGreen, "==> "+strings.Join(t.pending, " · ")))
	t.pending = nil
}

// endCounts are the last counts of phase's subjects.
func (t *textRenderer) endCounts(phase string) []string {
	var out, rest []string
	for _, k := range t.countOrder {
		if p, _, _ := strings.Cut(k, "\x00"); p == phase {
			out = append(out, t.counts[k])
			delete(t.counts, k)
		} else {
			rest = append(rest, k)
		}
	}
	t.countOrder = rest
	return out
}

// Close prints what is still held: the last phases' line and counts.
func (t *textRenderer) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range t.countOrder {
		t.print(t.counts[k])
	}
	t.countOrder, t.counts = nil, nil
	t.flushPhases()
	return nil
}

// phaseLine is a phase's one line: its name and time, or how it failed.
func phaseLine(e report.Event) string {
	secs, _ := e.Fields["seconds"].(float64)
	if e.Err != nil {
		return fmt.Sprintf("==> %s failed after %.1fs", e.Phase, secs)
	}
	return fmt.Sprintf("==> %s %.1fs", e.Phase, secs)
}

// lines are the lines e prints.
func (t *textRenderer) lines(e report.Event) []string {
	switch e.Kind {
	case report.PhaseStart:
		return nil
	case report.PhaseEnd:
		var out []string
		if e.Phase == "build" && !t.verbose {
			if e.Err != nil {
				out = t.builds.failed(e.Err.Error())
			}
			t.builds = newBuildFold()
		}
		if e.Err != nil {
			return append(out, t.paint(ansiRed, phaseLine(e)))
		}
		return out // the phase's line is held (Report)
	case report.Line:
		if e.Phase == "build" && !t.verbose {
			t.builds.add(e.Subject, e.Message)
			return nil
		}
		if m := retryLineRE.FindStringSubmatch(e.Message); m != nil {
			// "try 5: status 500, want 200" after "try 4: status 500, want
			// 200" says nothing new: a check's result line counts the tries
			if t.lastTry == nil {
				t.lastTry = map[string]string{}
			}
			if t.lastTry[e.Subject] == m[1] {
				return nil
			}
			t.lastTry[e.Subject] = m[1]
		}
		prefix := ""
		if e.Subject != "" {
			prefix = t.paint(ansiDim, "["+e.Subject+"] ")
		}
		return []string{prefix + e.Message}
	case report.Warn:
		return []string{t.paint(ansiYellow, "warning: "+e.Message)}
	case report.Info:
		if isPlanEvent(e) {
			t.planShown = true
		}
		if e.Phase == "build" && !t.verbose {
			if img, _ := e.Fields["image"].(string); img != "" {
				return t.builds.built(img, e.Message)
			}
		}
		if e.Message == "" {
			return nil
		}
		return []string{e.Message}
	case report.Progress:
		c := e.Count
		if c == nil {
			return nil
		}
		key := e.Phase + "\x00" + e.Subject
		if c.Unit == "bytes" {
			// the push's own line says what was uploaded: only the moving counts
			if c.Done >= c.Total {
				return nil
			}
			now := t.now()
			if last, ok := t.lastProgress[key]; ok && now.Sub(last) < t.progressEvery {
				return nil
			}
			t.lastProgress[key] = now
		}
		if c.Unit != "bytes" {
			// tasks running: where the count ended, at the phase's end
			if t.counts == nil {
				t.counts = map[string]string{}
			}
			if _, ok := t.counts[key]; !ok {
				t.countOrder = append(t.countOrder, key)
			}
			t.counts[key] = progressText(e)
			return nil
		}
		line := e.Subject + ": " + report.HumanBytes(c.Done) + " of " + report.HumanBytes(c.Total)
		if t.lastCount[key] == line {
			return nil
		}
		t.lastCount[key] = line
		return []string{line}
	}
	if e.Message == "" {
		return nil
	}
	return []string{e.Message}
}

// retryLineRE is a retry's line: "try 3: status 500, want 200".
var retryLineRE = regexp.MustCompile(`^try \d+: (.*)$`)
