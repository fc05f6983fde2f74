package main

import (
	"testing"

	"github.com/hackforla/ctjdeploy/internal/report"
)

// A clause printed before is cut from a later rollout line and from the
// final error, whatever its count of failed tasks; a ": " inside
// parentheses is no place to cut.
func TestSayOnceCutsAClauseSaidBefore(t *testing.T) {
	var rec report.Recorder
	o := newSayOnce(&rec)
	say := func(msg string) string {
		o.Report(report.Event{Kind: report.Info, Phase: "rollout", Message: msg})
		return rec.Events[len(rec.Events)-1].Message
	}
	monitoring1 := "ECS is at IN_PROGRESS (circuit breaker monitoring: 1 failed task of a threshold of 3)"
	monitoring2 := "ECS is at IN_PROGRESS (circuit breaker monitoring: 2 failed tasks of a threshold of 3)"
	if got := say(monitoring1); got != monitoring1 {
		t.Errorf("first line changed: %q", got)
	}
	if got := say(monitoring2); got != monitoring2 {
		t.Errorf("a count inside parentheses cut the line: %q", got)
	}
	say("ECS is rolling the deployment back (ROLLBACK_IN_PROGRESS): circuit breaker: tasks failed to start (circuit breaker triggered: 3 failed tasks of a threshold of 3)")
	got := o.finish("", "deployment d of f:5 to service s failed: the rollback deployment r to f:3 failed: tasks failed to start (circuit breaker triggered: 6 failed tasks of a threshold of 3)")
	if want := "deployment d of f:5 to service s failed: the rollback deployment r to f:3 failed (the reason is above)"; got != want {
		t.Errorf("final error:\n got %q\nwant %q", got, want)
	}
	// Another reason is not cut.
	other := "deployment d of f:5 to service s failed: alarms in ALARM: api-5xx, api-latency"
	if got := o.finish("", other); got != other {
		t.Errorf("another reason was cut: %q", got)
	}
}
