package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
)

// raceRound leaves a stale lock name (its holder's last renewal 2 h ago),
// then races, all at once, either two runs taking it over
// (withRelease false) or one run taking it over and the stale holder
// releasing it (withRelease true). Each run that Acquire says holds the
// lock records itself in a shared list before anyone releases anything;
// the round asserts exactly one holder, and that the parameter's state
// names that one; thorough: the stale holder's release afterwards leaves
// the new holder's lock, and the new holder releases it (the stack runs
// skip both: each request costs moto ~3 ms). It returns an error (not t.Fatal: it runs in goroutines).
func raceRound(ctx context.Context, s SSM, name string, withRelease, thorough bool) error {
	o := func(run string) Options {
		return Options{Name: name, Region: "us-west-2", Env: "stage", TTL: 30 * time.Minute,
			Holder: Holder{Run: run, Command: "deploy", Tag: "t", Host: "h", PID: 1, Started: time.Now(), TTL: "30m0s"}, Reporter: report.Discard}
	}
	// The stale holder: a run that took the lock 2 h ago and stopped
	// renewing it (one write, to keep the round's requests few).
	stale := &Lease{s: s, o: o(name + "/stale"), me: o(name + "/stale").Holder}
	if _, err := stale.write(ctx, State{}, held, time.Now().Add(-2*time.Hour)); err != nil {
		// The round's parameter is its own: ParameterAlreadyExists means
		// the SDK retried the creation after losing the answer to an
		// attempt that landed (seen with moto slow under load).
		var exists *ssmtypes.ParameterAlreadyExists
		if !errors.As(err, &exists) {
			return fmt.Errorf("%s: the stale holder: %w", name, err)
		}
	}
	var (
		mu      sync.Mutex
		holders []string
		leases  []*Lease
		errs    []error
		wg      sync.WaitGroup
		start   = make(chan struct{})
	)
	contend := func(run string) {
		defer wg.Done()
		<-start
		l, err := Acquire(ctx, s, o(run))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err)
			return
		}
		holders = append(holders, run)
		leases = append(leases, l)
	}
	wg.Add(2)
	go contend(name + "/a")
	if withRelease {
		go func() {
			defer wg.Done()
			<-start
			stale.release()
		}()
	} else {
		go contend(name + "/b")
	}
	close(start)
	wg.Wait()
	defer func() {
		for _, l := range leases {
			if thorough {
				l.Release()
			} else {
				l.abandon()
			}
		}
	}()
	if len(holders) != 1 {
		return fmt.Errorf("%s: %d holders %v (errors %v)", name, len(holders), holders, errs)
	}
	st, err := Read(ctx, s, name)
	if err != nil {
		return fmt.Errorf("%s: reading the state: %w", name, err)
	}
	if !st.Held || st.Holder.Run != holders[0] {
		return fmt.Errorf("%s: %s holds by Acquire, the parameter says held %v by %s", name, holders[0], st.Held, st.Holder.Run)
	}
	if !withRelease && (len(errs) != 1 || exitcode.Of(errs[0]) != exitcode.Refused) {
		return fmt.Errorf("%s: the loser: %v", name, errs)
	}
	if !thorough {
		return nil
	}
	// The stale holder's release (again) leaves the new holder's lock.
	if stale.release() {
		return fmt.Errorf("%s: the stale holder released %s's lock", name, holders[0])
	}
	if st, err := Read(ctx, s, name); err != nil || !st.Held || st.Holder.Run != holders[0] {
		return fmt.Errorf("%s: after the stale holder's release: held %v by %s (%v)", name, st.Held, st.Holder.Run, err)
	}
	return nil
}

// abandon stops the renewals and leaves the lock (tests that need not
// release it).
func (l *Lease) abandon() {
	l.mu.Lock()
	l.released = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
}

// runRounds runs rounds of raceRound over distinct parameter names, par at
// a time.
func runRounds(t *testing.T, s SSM, prefix string, rounds, par int, withRelease, thorough bool) {
	t.Helper()
	ctx := context.Background()
	sem := make(chan struct{}, par)
	var mu sync.Mutex
	var failed []error
	var wg sync.WaitGroup
	for i := 0; i < rounds; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := raceRound(ctx, s, fmt.Sprintf("%s%d", prefix, i), withRelease, thorough); err != nil {
				mu.Lock()
				failed = append(failed, err)
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	for i, err := range failed {
		if i < 10 {
			t.Error(err)
		}
	}
	if len(failed) > 0 {
		t.Fatalf("%d of %d rounds failed", len(failed), rounds)
	}
}
