package ecssim

import (
	"testing"
	"time"
)

// The manual clock moves only when read (1 ms, so that no two events share
// a timestamp) and by Step per Advance; Advance refuses a wall-clock
// simulator, whose ticker it would race.
func TestManualClock(t *testing.T) {
	t.Parallel()
	sim, err := New(Options{Upstream: "http://127.0.0.1:1", Step: time.Second, ManualClock: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	a, b := sim.Now(), sim.Now()
	if d := b.Sub(a); d != time.Millisecond {
		t.Errorf("two readings %s apart, want 1ms", d)
	}
	sim.Advance(3)
	if d := sim.Now().Sub(b); d != 3*time.Second+4*time.Millisecond {
		t.Errorf("3 steps of 1s (and 4 readings) moved the clock %s", d)
	}

	wall, err := New(Options{Upstream: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer wall.Close()
	if d := time.Since(wall.Now()); d < 0 || d > time.Second {
		t.Errorf("a wall-clock simulator's Now is %s off", d)
	}
	defer func() {
		if recover() == nil {
			t.Error("Advance on a wall-clock simulator did not panic")
		}
	}()
	wall.Advance(1)
}
