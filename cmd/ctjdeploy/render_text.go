package main

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/hackforla/ctjdeploy/internal/report"
)

// textRenderer writes events as plain lines, for CI logs and terminals.
type textRenderer struct {
	mu    sync.Mutex
	w     io.Writer
	color bool
}

func newTextRenderer(w io.Writer, color bool) *textRenderer {
	return &textRenderer{w: w, color: color}
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
		line = e.Message
	case report.Progress:
		c := e.Count
		if c == nil {
			return
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
