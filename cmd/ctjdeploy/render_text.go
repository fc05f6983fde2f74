package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/hackforla/ctjdeploy/deploy"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
)

// textRenderer writes events as plain lines, for logs, pipes and dumb
// terminals: every line of output (BuildKit's included), and byte counts at
// most once per progressEvery per subject, plus the last one.
type textRenderer struct {
	mu            sync.Mutex
	w             io.Writer
	color         bool
	progressEvery time.Duration
	lastProgress  map[string]time.Time
	now           func() time.Time
	planShown     bool
}

func newTextRenderer(w io.Writer, color bool) *textRenderer {
	return &textRenderer{w: w, color: color, progressEvery: 5 * time.Second, lastProgress: map[string]time.Time{}, now: time.Now}
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
		line += fmt.Sprintf(", deployment %s of %s", res.DeploymentID, shortRevision(res.TaskDefARN))
	}
	_, werr := fmt.Fprintln(w, line)
	return werr
}

// shortRevision is family:revision of a task definition ARN.
func shortRevision(arn string) string {
	if i := strings.LastIndex(arn, "/"); i >= 0 {
		return arn[i+1:]
	}
	return arn
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
	var line string
	switch e.Kind {
	case report.PhaseStart:
		line = t.paint(ansiBold, "==> "+e.Phase)
	case report.PhaseEnd:
		secs, _ := e.Fields["seconds"].(float64)
		if e.Err != nil {
			line = t.paint(ansiRed, fmt.Sprintf("==> %s failed after %.1fs", e.Phase, secs))
		} else {
			line = t.paint(ansiGreen, fmt.Sprintf("==> %s done in %.1fs", e.Phase, secs))
		}
	case report.Line:
		prefix := ""
		if e.Subject != "" {
			prefix = t.paint(ansiDim, "["+e.Subject+"] ")
		}
		line = prefix + e.Message
	case report.Warn:
		line = t.paint(ansiYellow, "warning: "+e.Message)
	case report.Info:
		if isPlanEvent(e) {
			t.planShown = true
		}
		line = e.Message
	case report.Progress:
		c := e.Count
		if c == nil {
			return
		}
		if c.Unit == "bytes" && c.Done < c.Total {
			key := e.Phase + "\x00" + e.Subject
			now := t.now()
			if last, ok := t.lastProgress[key]; ok && now.Sub(last) < t.progressEvery {
				return
			}
			t.lastProgress[key] = now
		}
		subj := ""
		if e.Subject != "" {
			subj = e.Subject + ": "
		}
		if c.Unit == "bytes" {
			line = fmt.Sprintf("%s%s of %s", subj, report.HumanBytes(c.Done), report.HumanBytes(c.Total))
		} else {
			line = fmt.Sprintf("%s%d/%d %s", subj, c.Done, c.Total, c.Unit)
		}
	default:
		line = e.Message
	}
	if line == "" {
		return
	}
	fmt.Fprintln(t.w, strings.TrimRight(line, "\n"))
}
