package lease

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/lease/leasetest"
	"github.com/hackforla/ctjdeploy/internal/report"
)

const lockName = "/ctjdeploy/c/s/lock"

func opts(run string, rep report.Reporter) Options {
	return Options{Name: lockName, Region: "us-west-2", Env: "stage", TTL: 30 * time.Minute, Holder: Holder{Run: run, Tag: "abc1234", Command: "deploy"}, Reporter: rep}
}

func mustRead(t *testing.T, s SSM) State {
	t.Helper()
	st, err := Read(context.Background(), s, lockName)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The decision of which record holds: a record counts only when it was
// written right after the record its writer read.
func TestResolveChain(t *testing.T) {
	rec := func(v int64, run, state, id, after string, afterV int64) entry {
		return entry{Version: v, Rec: record{Holder: Holder{Run: run}, State: state, ID: id, After: after, AfterVersion: afterV, Beat: time.Unix(v, 0)}}
	}
	cases := []struct {
		name      string
		chain     []entry // versions 1.. (nil: not retained)
		held      bool
		run       string
		version   int64
		undecided bool
	}{
		{"created", []entry{rec(1, "a", held, "i1", "", 0)}, true, "a", 1, false},
		{"renewed", []entry{rec(1, "a", held, "i1", "", 0), rec(2, "a", held, "i2", "i1", 1)}, true, "a", 2, false},
		{"takeover lost the race (after v1, landed at v3)", []entry{rec(1, "a", held, "i1", "", 0), rec(2, "b", held, "i2", "i1", 1), rec(3, "c", held, "i3", "i1", 1)}, true, "b", 2, false},
		{"release won, takeover invalid", []entry{rec(1, "a", held, "i1", "", 0), rec(2, "a", released, "i2", "i1", 1), rec(3, "c", held, "i3", "i1", 1)}, false, "a", 2, false},
		{"takeover won, release invalid", []entry{rec(1, "a", held, "i1", "", 0), rec(2, "c", held, "i2", "i1", 1), rec(3, "a", released, "i3", "i1", 1)}, true, "c", 2, false},
		{"right version, other record (the parameter was deleted and re-created)", []entry{rec(1, "d", held, "j1", "", 0), rec(2, "c", held, "i2", "i1", 1)}, true, "d", 1, false},
		{"a foreign value holds where it is", []entry{rec(1, "a", held, "i1", "", 0), {Version: 2, Foreign: true, Rec: record{Holder: Holder{Run: "old"}}}, rec(3, "b", held, "i3", "i1", 1)}, true, "old", 2, false},
		{"after a foreign value", []entry{{Version: 1, Foreign: true, Rec: record{Holder: Holder{Run: "old"}}}, rec(2, "b", held, "i2", "", 1)}, true, "b", 2, false},
		{"history gone", []entry{rec(5, "b", held, "i5", "i3", 3)}, true, "", 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			byV := map[int64]entry{}
			for _, e := range c.chain {
				byV[e.Version] = e
			}
			latest := c.chain[len(c.chain)-1]
			st, err := resolve(latest, func(v int64) (*entry, error) {
				if e, ok := byV[v]; ok {
					return &e, nil
				}
				return nil, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if st.Held != c.held || st.Undecided != c.undecided || (!c.undecided && (st.Holder.Run != c.run || st.Version != c.version)) {
				t.Errorf("got held %v run %q version %d undecided %v; want held %v run %q version %d undecided %v", st.Held, st.Holder.Run, st.Version, st.Undecided, c.held, c.run, c.version, c.undecided)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	now := time.Now()
	st := func(held bool, run string, age time.Duration, ttl string) State {
		return State{Exists: true, Held: held, Holder: Holder{Run: run, TTL: ttl}, Beat: now.Add(-age)}
	}
	for _, c := range []struct {
		name      string
		st        State
		force     bool
		forceFrom string
		want      Verdict
	}{
		{"absent", State{}, false, "", Free},
		{"released", st(false, "a", time.Minute, ""), false, "", Free},
		{"mine", st(true, "me", time.Hour, ""), false, "", Mine},
		{"fresh", st(true, "a", time.Minute, ""), false, "", Refused},
		{"stale by the default", st(true, "a", 31*time.Minute, ""), false, "", Stale},
		{"within its own 2h", st(true, "a", time.Hour, "2h0m0s"), false, "", Refused},
		{"past its own 1m", st(true, "a", 5*time.Minute, "1m0s"), false, "", Stale},
		{"forced from the holder found", st(true, "a", time.Minute, ""), true, "a", Forced},
		{"never forced from a run that took it meanwhile", st(true, "b", time.Minute, ""), true, "a", Refused},
	} {
		if got, _ := Decide(c.st, "me", now, 30*time.Minute, c.force, c.forceFrom); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestAcquireRefuseRelease(t *testing.T) {
	s := &leasetest.FakeSSM{}
	l, err := Acquire(context.Background(), s, opts("run-a", report.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if st := mustRead(t, s); !st.Held || st.Holder.Run != "run-a" || st.Holder.Host == "" || st.Holder.TTL != "30m0s" {
		t.Fatalf("state %+v", st)
	}
	_, err = Acquire(context.Background(), s, opts("run-b", report.Discard))
	if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "lock held") || !strings.Contains(err.Error(), "run-a") ||
		!strings.Contains(err.Error(), "deploy of tag abc1234") || !strings.Contains(err.Error(), "aws ssm delete-parameter --name "+lockName+" --region us-west-2") {
		t.Fatalf("second run: %v", err)
	}
	if !l.Release() {
		t.Fatal("not released")
	}
	if st := mustRead(t, s); st.Held || !st.Exists {
		t.Fatalf("after release: %+v", st)
	}
	l2, err := Acquire(context.Background(), s, opts("run-b", report.Discard))
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	l2.Release()
}

// A lock taken by another run (here: a person deleted the parameter and
// another run took it) is left by the release.
func TestReleaseLeavesAnotherHolder(t *testing.T) {
	s := &leasetest.FakeSSM{}
	var rec report.Recorder
	l, err := Acquire(context.Background(), s, opts("run-a", &rec))
	if err != nil {
		t.Fatal(err)
	}
	s.Delete(lockName)
	l2, err := Acquire(context.Background(), s, opts("run-b", report.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if l.Release() {
		t.Error("released another run's lock")
	}
	if st := mustRead(t, s); !st.Held || st.Holder.Run != "run-b" {
		t.Fatalf("after a's release: %+v", st)
	}
	if !warned(&rec, "held by run run-b", "left as it is") {
		t.Errorf("no warning: %+v", rec.All())
	}
	l2.Release()
}

func warned(rec *report.Recorder, subs ...string) bool {
	for _, e := range rec.All() {
		ok := e.Kind == report.Warn
		for _, s := range subs {
			ok = ok && strings.Contains(e.Message, s)
		}
		if ok {
			return true
		}
	}
	return false
}

// A record of an older ctjdeploy (no id) holds the lock, judged by its
// start and TTL.
func TestOlderRecordHoldsAndGoesStale(t *testing.T) {
	s := &leasetest.FakeSSM{}
	s.Put(t, lockName, Holder{Run: "old-run", Host: "h", Started: time.Now().Add(-2 * time.Minute)})
	if _, err := Acquire(context.Background(), s, opts("run-a", report.Discard)); exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "old-run") {
		t.Fatalf("fresh older record: %v", err)
	}
	s.Put(t, lockName, Holder{Run: "old-run", Host: "h", Started: time.Now().Add(-2 * time.Hour)})
	var rec report.Recorder
	l, err := Acquire(context.Background(), s, opts("run-a", &rec))
	if err != nil || !warned(&rec, "stale deploy lock", "old-run") {
		t.Fatalf("stale older record: %v %+v", err, rec.All())
	}
	l.Release()
}

// Renewed while it lives: a run holding the lock far past its TTL is not
// stale, and its lease stays valid.
func TestRenewedWhileItLives(t *testing.T) {
	s := &leasetest.FakeSSM{}
	o := opts("run-a", report.Discard)
	o.TTL, o.Interval = 300*time.Millisecond, 50*time.Millisecond
	l, err := Acquire(context.Background(), s, o)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		o2 := opts("run-b", report.Discard)
		o2.TTL = 300 * time.Millisecond
		if _, err := Acquire(context.Background(), s, o2); exitcode.Of(err) != exitcode.Refused {
			t.Fatalf("a live holder was taken over: %v", err)
		}
		if err := l.Err(); err != nil {
			t.Fatalf("the holder lost its lease: %v", err)
		}
	}
	if st := mustRead(t, s); st.Version < 5 {
		t.Errorf("renewed only up to version %d in 1 s at 50 ms", st.Version)
	}
}

// A renewal that finds another holder reports it and Err says lock lost.
func TestRenewalFindsAnotherHolder(t *testing.T) {
	s := &leasetest.FakeSSM{}
	var rec report.Recorder
	o := opts("run-a", &rec)
	o.Interval = 30 * time.Millisecond
	l, err := Acquire(context.Background(), s, o)
	if err != nil {
		t.Fatal(err)
	}
	o2 := opts("run-b", report.Discard)
	o2.Force = true
	l2, err := Acquire(context.Background(), s, o2)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Release()
	deadline := time.Now().Add(2 * time.Second)
	for l.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := l.Err(); exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "lock lost") || !strings.Contains(err.Error(), "run-b") {
		t.Fatalf("Err: %v", err)
	}
	if !warned(&rec, "lock lost", "run-b") {
		t.Error("the loss was not reported")
	}
	l.Release()
	if st := mustRead(t, s); !st.Held || st.Holder.Run != "run-b" {
		t.Fatalf("a's release changed b's lock: %+v", st)
	}
}

// A lease that cannot be renewed for its TTL is lost (another run may
// take it over).
func TestUnrenewedLeaseExpires(t *testing.T) {
	s := &leasetest.FakeSSM{}
	var rec report.Recorder
	o := opts("run-a", &rec)
	o.TTL, o.Interval = 200*time.Millisecond, 40*time.Millisecond
	l, err := Acquire(context.Background(), s, o)
	if err != nil {
		t.Fatal(err)
	}
	s.FailPuts.Store(true)
	time.Sleep(300 * time.Millisecond)
	if err := l.Err(); !strings.Contains(fmt.Sprint(err), "could not be renewed") {
		t.Fatalf("Err: %v", err)
	}
	if !warned(&rec, "renewing the deploy lock", "injected failure") {
		t.Error("failed renewals not reported")
	}
	s.FailPuts.Store(false)
	l.Release()
}

// Races on the fake: two takeovers of one stale lock, and a takeover
// racing the stale holder's release; exactly one holder each round.
func TestRacesOnFake(t *testing.T) {
	s := &leasetest.FakeSSM{}
	runRounds(t, s, "/fake/takeovers/", 300, 8, false, true)
	runRounds(t, s, "/fake/release/", 300, 8, true, true)
}

// A lock with a long history (more than the 50 versions of a page, more
// than the 100 Parameter Store keeps) is read whole: renewals go on and a
// second run is still refused.
func TestLongHistory(t *testing.T) {
	s := &leasetest.FakeSSM{}
	l, err := Acquire(context.Background(), s, opts("run-a", report.Discard))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	for i := 0; i < 130; i++ {
		l.renew()
	}
	st := mustRead(t, s)
	if err := l.Err(); err != nil || !st.Held || st.Holder.Run != "run-a" || st.Version != 131 {
		t.Fatalf("after 130 renewals: %+v %v", st, err)
	}
	if _, err := Acquire(context.Background(), s, opts("run-b", report.Discard)); exitcode.Of(err) != exitcode.Refused {
		t.Fatalf("a second run: %v", err)
	}
}
