package rollout

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// pacer keeps Follow's time: the wait between polls (Interval ± Jitter),
// the backoff after a transient error (doubling up to maxBackoff) and the
// deadline (Timeout).
type pacer struct {
	interval time.Duration
	jitter   float64
	wait     time.Duration // the current backoff
	deadline time.Time     // zero: none
	sleepFn  func(ctx context.Context, d time.Duration) error
}

// maxBackoff bounds the wait between retries of a transient error.
const maxBackoff = 30 * time.Second

// errDeadline says the deadline passed before a wait.
var errDeadline = errors.New("the deadline passed")

func newPacer(o FollowOptions) *pacer {
	p := &pacer{interval: o.Interval, jitter: o.Jitter, wait: o.Interval, sleepFn: o.Sleep}
	if o.Timeout > 0 {
		p.deadline = time.Now().Add(o.Timeout)
	}
	return p
}

// next is the wait before the next poll.
func (p *pacer) next() time.Duration { return jittered(p.interval, p.jitter) }

// backoff is the wait before retrying a transient error: twice the last
// one, at most maxBackoff, ±20%.
func (p *pacer) backoff() time.Duration {
	p.wait = min(2*p.wait, maxBackoff)
	return jittered(p.wait, 0.2)
}

// reset ends a run of retries.
func (p *pacer) reset() { p.wait = p.interval }

// sleep waits d, cut short at the deadline; errDeadline when the deadline
// has passed already, ctx's error when ctx ends first.
func (p *pacer) sleep(ctx context.Context, d time.Duration) error {
	if !p.deadline.IsZero() {
		left := time.Until(p.deadline)
		if left <= 0 {
			return errDeadline
		}
		d = min(d, left)
	}
	return p.sleepFn(ctx, d)
}

// stopped is Follow's error when sleep failed: timed out (exit 4) at the
// deadline, else interrupted.
func (p *pacer) stopped(err error, o FollowOptions, st State, note string) error {
	if errors.Is(err, errDeadline) {
		return timedOut(o, st, note)
	}
	return interrupted(o, note)
}

func jittered(d time.Duration, j float64) time.Duration {
	if j <= 0 {
		return d
	}
	f := 1 + j*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
