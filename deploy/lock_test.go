package deploy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/lease"
	"github.com/hackforla/ctjdeploy/internal/lease/leasetest"
	"github.com/hackforla/ctjdeploy/internal/report"
)

// The lock itself is internal/lease (its tests: the protocol, renewals,
// races); these test the deploy's use of it.

const lockParam = "/ctjdeploy/c/s/lock"

func lockRun(s SSM, rep report.Reporter) *run {
	env := &config.Environment{Name: "stage", Region: "us-west-2", Cluster: "c", Service: "s"}
	return &run{o: Options{Env: env, Tag: "abc1234"}, d: Deps{SSM: s}, res: &Result{}, rep: rep}
}

func readLock(t *testing.T, s SSM, name string) lease.State {
	t.Helper()
	st, err := lease.Read(context.Background(), s, name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func warnedWith(rec *report.Recorder, subs ...string) bool {
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

func TestLockTakenAndReleased(t *testing.T) {
	s := &leasetest.FakeSSM{}
	r := lockRun(s, report.Discard)
	release, err := r.takeLock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h := readLock(t, s, lockParam)
	if !h.Held || h.Holder.Tag != "abc1234" || h.Holder.Command != "deploy" || h.Holder.Run == "" || h.Holder.Host == "" || h.Holder.Started.IsZero() {
		t.Errorf("lock state %+v", h)
	}
	// A second run is refused while it is held.
	_, err = lockRun(s, report.Discard).takeLock(context.Background())
	if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "lock held") || !strings.Contains(err.Error(), h.Holder.Run) ||
		!strings.Contains(err.Error(), "aws ssm delete-parameter --name /ctjdeploy/c/s/lock --region us-west-2") {
		t.Errorf("second run: %v", err)
	}
	release()
	if st := readLock(t, s, lockParam); st.Held || !r.res.LockReleased {
		t.Errorf("the lock was not released: %+v", st)
	}
}

func TestStaleLockTakenOver(t *testing.T) {
	s := &leasetest.FakeSSM{}
	s.Put(t, lockParam, LockHolder{Run: "dead", Started: time.Now().Add(-LockTTL - time.Minute)})
	var rec report.Recorder
	r := lockRun(s, &rec)
	release, err := r.takeLock(context.Background())
	if err != nil {
		t.Fatalf("stale lock not taken over: %v", err)
	}
	if !warnedWith(&rec, "stale deploy lock", "dead") {
		t.Error("no warning about the stale lock")
	}
	release()
	if readLock(t, s, lockParam).Held {
		t.Error("not released")
	}
}

// A run whose lock another run holds now (a person cleared it, another
// run took it) leaves it at its release.
func TestReleaseLeavesAnotherRunsLock(t *testing.T) {
	s := &leasetest.FakeSSM{}
	r := lockRun(s, report.Discard)
	release, err := r.takeLock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.Delete(lockParam)
	other, err := lockRun(s, report.Discard).takeLock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer other()
	otherRun := readLock(t, s, lockParam).Holder.Run
	release()
	if st := readLock(t, s, lockParam); !st.Held || st.Holder.Run != otherRun || r.res.LockReleased {
		t.Errorf("release changed another run's lock: %+v", st)
	}
}

func TestForceUnlockTakesOverAHeldLock(t *testing.T) {
	s := &leasetest.FakeSSM{}
	s.Put(t, lockParam, LockHolder{Run: "killed-run", Host: "runner-3", Started: time.Now().Add(-2 * time.Minute)})
	_, err := lockRun(s, report.Discard).takeLock(context.Background())
	if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "--force-unlock") || !strings.Contains(err.Error(), "killed-run") {
		t.Fatalf("without --force-unlock: %v", err)
	}
	var rec report.Recorder
	r := lockRun(s, &rec)
	r.o.ForceUnlock = true
	release, err := r.takeLock(context.Background())
	if err != nil {
		t.Fatalf("--force-unlock: %v", err)
	}
	if h := readLock(t, s, lockParam).Holder; h.Run == "killed-run" || h.Tag != "abc1234" {
		t.Fatalf("the lock is not this run's: %+v", h)
	}
	if !warnedWith(&rec, "--force-unlock", "killed-run") {
		t.Error("no warning naming the holder whose lock was taken")
	}
	release()
	if readLock(t, s, lockParam).Held {
		t.Error("not released")
	}
}

// Staleness is judged by the holder's own time to live (its config's
// lock.ttl), not the reader's.
func TestHolderTTLDecidesStaleness(t *testing.T) {
	for _, c := range []struct {
		ttl   string
		age   time.Duration
		taken bool
	}{
		{"2h0m0s", time.Hour, false},    // older than the default 30 min, but within its 2 h
		{"1m0s", 5 * time.Minute, true}, // younger than 30 min, past its own 1 min
		{"", 20 * time.Minute, false},   // no ttl recorded: the default
	} {
		s := &leasetest.FakeSSM{}
		s.Put(t, lockParam, LockHolder{Run: "other", Started: time.Now().Add(-c.age), TTL: c.ttl})
		release, err := lockRun(s, report.Discard).takeLock(context.Background())
		if (err == nil) != c.taken {
			t.Errorf("ttl %q, age %s: taken %v, want %v (%v)", c.ttl, c.age, err == nil, c.taken, err)
		}
		if err == nil {
			release()
		}
	}
}

func TestLockConfigNamedAndOff(t *testing.T) {
	s := &leasetest.FakeSSM{}
	r := lockRun(s, report.Discard)
	r.o.Env.Lock = &config.Lock{Parameter: "/team/stage-deploy", TTL: 45 * time.Minute}
	release, err := r.takeLock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h := readLock(t, s, "/team/stage-deploy"); !h.Held || h.Holder.TTL != "45m0s" || r.res.Lock != "/team/stage-deploy" {
		t.Fatalf("named lock: %+v %q", h, r.res.Lock)
	}
	release()

	s = &leasetest.FakeSSM{}
	r = lockRun(s, report.Discard)
	r.o.Env.Lock = &config.Lock{Off: true}
	release, err = r.takeLock(context.Background())
	if err != nil || s.Puts() != 0 || r.res.Lock != "" {
		t.Fatalf("lock: false still locks: %v, %d puts, %q", err, s.Puts(), r.res.Lock)
	}
	release()
}

// A run whose lease could not be renewed for its TTL stops before its next
// write: sameService (right before the register and the update) is exit 5
// "lock lost".
func TestLostLockStopsBeforeTheNextWrite(t *testing.T) {
	s := &leasetest.FakeSSM{}
	r := lockRun(s, report.Discard)
	release, err := r.takeLock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := r.sameService(context.Background(), ""); err != nil {
		t.Fatalf("held: %v", err)
	}
	defer func(f func() time.Time) { lockNow = f }(lockNow)
	lockNow = func() time.Time { return time.Now().Add(LockTTL + time.Minute) }
	err = r.sameService(context.Background(), "arn:aws:ecs:us-west-2:1:task-definition/f:7")
	if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "lock lost") || !strings.Contains(err.Error(), "f:7, registered by this run, is unused") {
		t.Fatalf("lost: %v", err)
	}
}
