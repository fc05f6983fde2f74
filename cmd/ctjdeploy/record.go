package main

// Recording a run's events for the renderers' golden tests: with
// CTJDEPLOY_RECORD_EVENTS=FILE, every event a command reports, and the
// deploy's result and error at its end, are appended to FILE as JSON lines
// (a test aid: testdata/events/*.jsonl were made this way; see
// golden_test.go). What is recorded passes the secret mask.

import (
	"encoding/json"
	"os"
	"sync"
	"time"

	"github.com/hackforla/ctjdeploy/deploy"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
)

const recordEnv = "CTJDEPLOY_RECORD_EVENTS"

// recordedEvent is a report.Event as JSON (Err as its message and code).
type recordedEvent struct {
	Time    time.Time       `json:"time"`
	Kind    report.Kind     `json:"kind,omitempty"`
	Phase   string          `json:"phase,omitempty"`
	Subject string          `json:"subject,omitempty"`
	Message string          `json:"message,omitempty"`
	Err     string          `json:"err,omitempty"`
	ErrCode int             `json:"errCode,omitempty"`
	Count   *report.Counter `json:"count,omitempty"`
	Fields  map[string]any  `json:"fields,omitempty"`
	// The last line of a recording: the command's result and error.
	Result   *deploy.Result `json:"result,omitempty"`
	Error    string         `json:"error,omitempty"`
	Code     int            `json:"code,omitempty"`
	Reported bool           `json:"reported,omitempty"`
	End      bool           `json:"end,omitempty"`
}

type eventRecorder struct {
	mu   sync.Mutex
	next report.Reporter
	enc  *json.Encoder
	w    interface{ Write([]byte) (int, error) }
	f    *os.File
}

// recording wraps rep with a recorder when CTJDEPLOY_RECORD_EVENTS is set.
func recording(rep report.Reporter) report.Reporter {
	path := os.Getenv(recordEnv)
	if path == "" {
		return rep
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return rep
	}
	w := report.MaskWriter(f)
	return &eventRecorder{next: rep, enc: json.NewEncoder(w), w: w, f: f}
}

func (r *eventRecorder) Report(e report.Event) {
	r.mu.Lock()
	re := recordedEvent{Time: e.Time, Kind: e.Kind, Phase: e.Phase, Subject: e.Subject, Message: e.Message, Count: e.Count, Fields: e.Fields}
	if e.Err != nil {
		re.Err, re.ErrCode = e.Err.Error(), exitcode.Of(e.Err)
	}
	_ = r.enc.Encode(re)
	r.mu.Unlock()
	r.next.Report(e)
}

func (r *eventRecorder) PlanShown() bool { return planShown(r.next) }

func (r *eventRecorder) Close() error {
	closeReporter(r.next)
	return nil
}

// end records the result and error and closes the file.
func (r *eventRecorder) end(res *deploy.Result, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	re := recordedEvent{End: true, Result: res, Code: exitcode.Of(err), Reported: isReported(err)}
	if err != nil {
		re.Error = err.Error()
	}
	_ = r.enc.Encode(re)
	_ = report.Flush(r.w)
	_ = r.f.Close()
}

// unwrapRecorder is the renderer behind a recorder.
func unwrapRecorder(rep report.Reporter) report.Reporter {
	if r, ok := rep.(*eventRecorder); ok {
		return r.next
	}
	return rep
}
