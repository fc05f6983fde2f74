package main

// Golden outputs of every renderer (text for logs, the live terminal view,
// GitHub Actions with its job summary, JSON) for recorded runs: the events a
// real deploy on the local stack reported (testdata/events/*.jsonl, made
// with CTJDEPLOY_RECORD_EVENTS, record.go, by TestRecordGoldenRuns with
// -record), replayed into each renderer and
// ended as the deploy command ends (writeDeployResult, then main's error
// line). Fast and deterministic: no stack, no clock.
//
//	go test -run TestGolden ./cmd/ctjdeploy/ -update   # rewrite testdata/golden/

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hackforla/ctjdeploy/deploy"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenRuns are the recorded runs: name, and the exit code each ended with.
var goldenRuns = []struct {
	name string
	code int
}{
	{"deploy", 0},
	{"unchanged", 0},
	{"rolled-back", 3},
	{"not-recovered", 6},
	{"refused", 5},
	{"invalid", 2},
	{"dry-run", 0},
}

type recordedRun struct {
	events []report.Event
	res    *deploy.Result
	err    error
	code   int
}

func loadRun(t *testing.T, name string) recordedRun {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "events", name+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var run recordedRun
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var re recordedEvent
		if err := json.Unmarshal(sc.Bytes(), &re); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if re.End {
			run.res, run.code = re.Result, re.Code
			if re.Error != "" {
				run.err = exitcode.Wrap(re.Code, errors.New(re.Error))
				if re.Reported {
					run.err = reportedError{run.err}
				}
			}
			continue
		}
		e := report.Event{Time: re.Time, Kind: re.Kind, Phase: re.Phase, Subject: re.Subject, Message: re.Message, Count: re.Count, Fields: re.Fields}
		if re.Err != "" {
			e.Err = exitcode.Wrap(re.ErrCode, errors.New(re.Err))
		}
		run.events = append(run.events, e)
	}
	return run
}

// fixedNow is the renderers' clock in the golden tests: it never moves, so
// throttled progress prints its first count only.
func fixedNow() time.Time { return time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC) }

// render replays run into the renderer kind and returns what the command
// printed: stdout, stderr and (github) the job summary.
func render(t *testing.T, kind string, run recordedRun) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	g := &globals{stdout: &stdout, stderr: &stderr, output: "text"}
	summary := filepath.Join(t.TempDir(), "summary.md")
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	t.Setenv("GITHUB_OUTPUT", "")
	var rep report.Reporter
	switch kind {
	case "text":
		tr := newTextRenderer(&stderr, false)
		tr.now = fixedNow
		rep = newSayOnce(tr)
	case "live":
		lr := newLiveRenderer(&stderr, false, func() int { return 100 })
		lr.now = fixedNow
		lr.minInterval = 0
		rep = newSayOnce(lr)
	case "github":
		gr := newGitHubRenderer(&stderr, &stderr)
		gr.token = "TOKEN"
		gr.now = fixedNow
		o := newSayOnce(gr)
		o.keepWarnings = true
		rep = o
		t.Setenv("GITHUB_STEP_SUMMARY", summary)
	case "json":
		g.output = "json"
		rep = newSayOnce(newTextRenderer(&stderr, false))
	}
	err := run.err
	if len(run.events) > 0 || run.res != nil {
		for _, e := range run.events {
			rep.Report(e)
		}
		err = writeDeployResult(g, rep, run.res, err)
	}
	if err != nil && !isReported(err) {
		fmt.Fprintf(&stderr, "ctjdeploy: %v\n", err) // main
	}
	if got := exitcode.Of(err); got != run.code {
		t.Errorf("exit %d, recorded %d", got, run.code)
	}
	errText := stderr.String()
	if kind == "github" {
		// ::add-mask:: lines announce every secret the process knows
		// (report.AddSecret is process-wide: other tests' too)
		errText = regexp.MustCompile(`(?m)^::add-mask::.*\n`).ReplaceAllString(errText, "")
	}
	out := "--- stdout\n" + stdout.String() + "--- stderr\n" + errText
	if kind == "github" {
		b, _ := os.ReadFile(summary)
		out += "--- $GITHUB_STEP_SUMMARY\n" + string(b)
	}
	return out
}

func TestGolden(t *testing.T) {
	for _, r := range goldenRuns {
		run := loadRun(t, r.name)
		if run.code != r.code {
			t.Fatalf("%s: recorded exit %d, want %d", r.name, run.code, r.code)
		}
		for _, kind := range []string{"text", "live", "github", "json"} {
			t.Run(r.name+"/"+kind, func(t *testing.T) {
				got := render(t, kind, run)
				path := filepath.Join("testdata", "golden", r.name+"."+kind+".golden")
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to write it)", err)
				}
				if got != string(want) {
					t.Errorf("%s differs from the golden file (run with -update to accept):\n%s", path, firstDiff(string(want), got))
				}
			})
		}
	}
}

// firstDiff shows where two texts first differ.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n want %q\n got  %q", i+1, a, b)
		}
	}
	return ""
}

// The bad commit's log, as CI shows it (no terminal), says each thing once:
// no line is printed twice.
func TestTextSaysEachThingOnce(t *testing.T) {
	for _, name := range []string{"rolled-back", "not-recovered", "deploy", "refused", "dry-run"} {
		out := render(t, "text", loadRun(t, name))
		seen := map[string]int{}
		for i, ln := range strings.Split(out, "\n") {
			ln = strings.TrimSpace(ln)
			if ln == "" || strings.HasPrefix(ln, "--- ") || strings.HasPrefix(ln, "@@") || strings.HasPrefix(ln, `"`) || strings.Trim(ln, "{}[],") == "" {
				continue // separators, and the task definition diff's hunks and JSON context
			}
			if j, ok := seen[ln]; ok {
				t.Errorf("%s: line %d repeats line %d: %q", name, i+1, j, ln)
			}
			seen[ln] = i + 1
		}
		// and the things the issue saw repeated, by their substance
		for _, s := range []string{"tasks failed to start (circuit breaker triggered", "last service events", "2 of 6 layers to upload"} {
			if n := strings.Count(out, s); n > 1 {
				t.Errorf("%s: %q said %d times", name, s, n)
			}
		}
		// a guard's warning is its verdict's line in the plan: said once
		for _, m := range regexp.MustCompile(`(?m)^warning: \S+ guard: (.*)$`).FindAllStringSubmatch(out, -1) {
			if n := strings.Count(out, m[1]); n > 1 {
				t.Errorf("%s: the warning %q is said %d times", name, m[1], n)
			}
		}
		if regexp.MustCompile(`(?m)^==> \S+$`).MatchString(out) {
			t.Errorf("%s: a phase has a line without its time", name)
		}
		if strings.Contains(out, "last 1 log lines") {
			t.Errorf("%s: 'last 1 log lines'", name)
		}
	}
}
