// Package lease is the deploy lock that `deploy` and `rollback` both hold:
// a lease on one SSM parameter (config lock:, default
// /ctjdeploy/CLUSTER/SERVICE/lock) that never has two holders, is renewed
// while its run lives, and is released only by its holder.
//
// # Why not a plain put, overwrite and delete
//
// SSM Parameter Store has no compare-and-swap on a parameter's value:
// PutParameter with Overwrite=true replaces whatever is there, and
// DeleteParameter deletes whatever is there. The one conditional write is
// the creation: PutParameter with Overwrite=false fails with
// ParameterAlreadyExists when the name exists ("PutParameter", AWS Systems
// Manager API Reference, Overwrite: "The default value is false"). So a
// lock that is taken over by overwriting a stale holder and reading it
// back can have two holders (A writes and reads A, then B writes and reads
// B), and a release that reads and then deletes can delete a lock another
// run has just taken over. (Labels do not help: LabelParameterVersion
// moves a label unconditionally. DynamoDB's conditional writes would, but
// the CI role gets SSM only.)
//
// # What SSM does give: numbered versions
//
// Every PutParameter creates a new version of the parameter, numbered one
// more than the previous ("Working with parameter versions in Parameter
// Store", AWS Systems Manager User Guide: "When you change the value of
// the parameter, Parameter Store automatically increments the version
// number by one"), and GetParameterHistory reads every retained version
// with its number and value. Versions are never rewritten; Parameter Store
// keeps the 100 most recent (ParameterMaxVersionLimitExceeded, API
// Reference: "Parameter Store retains the 100 most recently created
// versions of a parameter").
//
// That is enough for a compare-and-swap, decided after the fact. Every
// write (a take, a renewal, a release) is a record naming a unique id of
// its own and the id and version of the record it read as the latest
// before writing (after, afterVersion). A record at version k is VALID
// when nothing was written between the writer's read and its write:
// its afterVersion is k-1 and version k-1 holds the record whose id is its
// after (k = 1, the parameter's creation, is valid by itself, as is a
// record of an older ctjdeploy or a person, which has no id). An invalid
// record lost a race and means nothing. The lock's state is the latest
// valid record: held by its run, or released. Every reader (the contender,
// the holder renewing, the holder releasing) computes it the same way from
// the same immutable versions, so all agree on one holder.
// A writer only writes when the state it read allows its write (free, its
// own, stale, or --force-unlock), then reads the state again to learn
// whether it won; of two contenders that read the same latest version,
// exactly one write lands right after it. Reads that are not yet
// up to date cannot make two holders either: they can only make a write
// invalid.
//
// Taking over a stale lock, racing a release, racing another takeover,
// SDK retries that write twice, and a person deleting the parameter (the
// next write is version 1 of a new parameter) all reduce to that rule. The
// race tests (race_stack_test.go) run 500 rounds of each on the stack;
// with the compare left out (every write counts: "overwrite, then read
// back"), 42 and 15 of them had two holders.
//
// The rule needs the store to number each write once, as AWS documents.
// moto, the stack's SSM, takes the next number and stores the version in
// two steps without a lock: two writes could share a number if a thread
// stopped between them. Every reader then sees the later one for that
// number (a read keeps the last record of a number, as moto's
// GetParameter NAME:VERSION answers), so all still agree, except a writer
// that read before the later one was stored. No round of the race tests
// has shown it.
//
// # The lease
//
// A holder renews its record every TTL/3 (heartbeat), with the same
// compare-and-swap, so a live run is never stale whatever its --timeout.
// A renewal that finds another holder, or a holder that could not renew
// for its whole TTL (another run may then take the lock over), has lost
// the lease: it is reported at once (a warning naming the new holder), and
// Err returns exit 5 "lock lost", which the deploy and the rollback check
// before each of their writes (the ENV tags, the register, the update or
// the stop), so they stop before the next one.
// What no lease can rule out is a run frozen (SIGSTOP, a suspended
// runner) for longer than its TTL between that check and its write; the
// TTL (30 minutes by default) makes that remote. Staleness is judged on
// the holder's own clock's record of its last renewal against the
// reader's clock: clocks minutes apart shorten or lengthen the TTL by as
// much.
//
// Release writes a "released" record (same compare-and-swap) instead of
// deleting: a release that finds another holder leaves the lock as it is.
// The parameter stays, its latest version saying who released it when.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/internal/safego"
)

// SSM is the part of the SSM API the lock calls.
type SSM interface {
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, opts ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
	HistoryReader
}

// HistoryReader is the part of the SSM API that reading the lock needs
// (Read: status, doctor and the preflight read it without writing).
type HistoryReader interface {
	GetParameterHistory(ctx context.Context, in *ssm.GetParameterHistoryInput, opts ...func(*ssm.Options)) (*ssm.GetParameterHistoryOutput, error)
}

// Holder says who holds (or released) the lock.
type Holder struct {
	Run     string    `json:"run"`
	Command string    `json:"command,omitempty"` // deploy, rollback
	Tag     string    `json:"tag"`
	Env     string    `json:"env"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// TTL is how long this holder's lock holds unrenewed (its config's
	// lock.ttl): a reader judges staleness by it, not by its own setting.
	TTL string `json:"ttl,omitempty"`
}

// TTLOr is the holder's time to live, else def.
func (h Holder) TTLOr(def time.Duration) time.Duration {
	if d, err := time.ParseDuration(h.TTL); err == nil && d > 0 {
		return d
	}
	return def
}

func (h Holder) String() string {
	what := h.Command
	if what == "" {
		what = "deploy"
	}
	return fmt.Sprintf("run %s (%s of tag %s, host %s, pid %d, started %s)", h.Run, what, h.Tag, h.Host, h.PID, h.Started.UTC().Format(time.RFC3339))
}

// Record states.
const (
	held     = "held"
	released = "released"
)

// record is one version of the lock parameter.
type record struct {
	Holder
	// State: held ("" in a record of an older ctjdeploy), released.
	State string `json:"state,omitempty"`
	// Beat is when this record was written (the writer's clock): the
	// holder's last sign of life.
	Beat time.Time `json:"beat,omitempty"`
	// ID is this write's own id; After and AfterVersion name the record
	// the writer read as the latest (the compare of the compare-and-swap).
	ID           string `json:"id,omitempty"`
	After        string `json:"after,omitempty"`
	AfterVersion int64  `json:"afterVersion,omitempty"`
}

// entry is a version of the parameter as read.
type entry struct {
	Version  int64
	Rec      record
	Modified time.Time
	// Foreign: a value without an id (an older ctjdeploy, a person):
	// valid where it is, its holder unknown unless it names one.
	Foreign bool
}

func parseEntry(value string, version int64, modified time.Time) entry {
	e := entry{Version: version, Modified: modified}
	if err := json.Unmarshal([]byte(value), &e.Rec); err != nil {
		e.Rec = record{}
	}
	if e.Rec.ID == "" {
		e.Foreign = true
		e.Rec.After, e.Rec.AfterVersion = "", 0
		if e.Rec.Run == "" || e.Rec.Started.IsZero() {
			e.Rec.Holder = Holder{Run: "unknown (the parameter holds no ctjdeploy lock record)", Started: e.Modified}
		}
	}
	return e
}

// follows says whether e (version k) was written right after prev
// (version k-1, nil when not retained): the compare-and-swap succeeded.
// Pure.
func follows(e entry, prev *entry) bool {
	switch {
	case e.Foreign || e.Version == 1:
		return true
	case prev == nil:
		return false
	}
	return e.Rec.AfterVersion == prev.Version && e.Rec.AfterVersion == e.Version-1 && e.Rec.After == prev.Rec.ID
}

// State is the lock as the parameter's versions decide it.
type State struct {
	// Exists: the parameter exists (else the lock is free, never taken or
	// deleted by a person).
	Exists bool
	// Held: the deciding record holds the lock (Holder, Beat); else it is
	// free (released, or the parameter does not exist).
	Held   bool
	Holder Holder
	// Beat is the holder's last renewal (its clock).
	Beat time.Time
	// Version is the deciding version; Latest the parameter's latest.
	Version, Latest int64
	// Undecided: no valid record within reach (ScanDepth versions back,
	// or older versions gone): treated as held by an unknown holder since
	// the latest write.
	Undecided bool

	latestID, id string // the latest record's id, the deciding one's
}

// ScanDepth bounds how far back a read looks for the deciding record:
// invalid records only come from contenders racing, a few at a time.
const ScanDepth = 32

// readDecided reads the lock's state for its holder's own renewal and
// release, which act only on a state the versions decide.
func (l *Lease) readDecided(ctx context.Context) (State, error) {
	st, err := Read(ctx, l.s, l.o.Name)
	if err == nil && st.Undecided {
		err = errors.New("its versions could not be read in full")
	}
	return st, err
}

// Read reads the lock's state from the parameter's history
// (ssm:GetParameterHistory: every retained version, 50 a page, so one
// request while the lock has at most 50 versions and two up to the 100
// Parameter Store keeps; "GetParameterHistory", AWS Systems Manager API
// Reference, MaxResults "Valid Range: Minimum value of 1. Maximum value of
// 50"). A read whose pages missed a version (the oldest one deleted by a
// write between two pages) is read again.
func Read(ctx context.Context, s HistoryReader, name string) (State, error) {
	var byV map[int64]entry
	var latest entry
	for try := 0; ; try++ {
		var err error
		if byV, latest, err = history(ctx, s, name); err != nil || byV == nil {
			return State{}, err
		}
		if contiguous(byV, latest.Version) || try == 2 {
			break
		}
	}
	return resolve(latest, func(v int64) (*entry, error) {
		if e, ok := byV[v]; ok {
			return &e, nil
		}
		return nil, nil
	})
}

// history reads every retained version of name (nil: no parameter).
func history(ctx context.Context, s HistoryReader, name string) (map[int64]entry, entry, error) {
	byV := map[int64]entry{}
	var latest entry
	var token *string
	for page := 0; page < 10; page++ {
		out, err := s.GetParameterHistory(ctx, &ssm.GetParameterHistoryInput{Name: aws.String(name), MaxResults: aws.Int32(50), NextToken: token})
		var nf *ssmtypes.ParameterNotFound
		if errors.As(err, &nf) {
			return nil, entry{}, nil
		}
		if err != nil {
			return nil, entry{}, err
		}
		for _, p := range out.Parameters {
			e := parseEntry(aws.ToString(p.Value), p.Version, aws.ToTime(p.LastModifiedDate))
			byV[e.Version] = e // a later one of the same version wins (a store that numbered two writes alike)
			if e.Version >= latest.Version {
				latest = e
			}
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		token = out.NextToken
	}
	if len(byV) == 0 {
		return nil, entry{}, nil
	}
	return byV, latest, nil
}

// contiguous says whether byV holds every version from its oldest to
// latest.
func contiguous(byV map[int64]entry, latest int64) bool {
	oldest := latest
	for v := range byV {
		oldest = min(oldest, v)
	}
	return int64(len(byV)) == latest-oldest+1
}

// resolve finds the deciding record from latest back (get reads a version;
// nil: not retained). Pure but for get.
func resolve(latest entry, get func(v int64) (*entry, error)) (State, error) {
	st := State{Exists: true, Latest: latest.Version, latestID: latest.Rec.ID}
	e := latest
	for i := 0; i < ScanDepth; i++ {
		var prev *entry
		if !e.Foreign && e.Version > 1 {
			var err error
			if prev, err = get(e.Version - 1); err != nil {
				return st, err
			}
		}
		if follows(e, prev) {
			st.Version, st.id = e.Version, e.Rec.ID
			st.Held = e.Rec.State != released
			st.Holder = e.Rec.Holder
			st.Beat = e.Rec.Beat
			if st.Beat.IsZero() {
				st.Beat = e.Rec.Started
			}
			if st.Beat.IsZero() {
				st.Beat = e.Modified
			}
			return st, nil
		}
		if prev == nil {
			break
		}
		e = *prev
	}
	st.Held, st.Undecided = true, true
	st.Holder = Holder{Run: fmt.Sprintf("unknown (no valid lock record in the last versions before %d)", latest.Version), Started: latest.Modified}
	st.Beat = latest.Modified
	return st, nil
}

// Verdict is what a contender may do with the lock in a state.
type Verdict int

// Verdicts.
const (
	Free    Verdict = iota // not held: take it
	Mine                   // held by this run (a write that went through twice)
	Stale                  // held, older than its holder's TTL: take it over, warning
	Forced                 // held and fresh, --force-unlock: take it over, warning
	Refused                // held and fresh: exit 5
)

// Decide is what run me may do with the lock in st at now (def: the TTL of
// a holder that recorded none; force: --force-unlock, which takes over
// only from the holder named forceFrom, the one this run found first, never
// from a run that took the lock meanwhile). Pure.
func Decide(st State, me string, now time.Time, def time.Duration, force bool, forceFrom string) (Verdict, time.Duration) {
	if !st.Held {
		return Free, 0
	}
	if st.Holder.Run == me {
		return Mine, 0
	}
	age := now.Sub(st.Beat)
	switch {
	case age >= st.Holder.TTLOr(def):
		return Stale, age
	case force && forceFrom == st.Holder.Run:
		return Forced, age
	}
	return Refused, age
}

// Options say which lock to take and as whom.
type Options struct {
	Name   string // the SSM parameter
	Region string // for the messages' commands
	Env    string // the environment's name, for messages
	// TTL is this run's time to live (config lock.ttl), recorded in its
	// record; also the default for a holder that recorded none.
	TTL time.Duration
	// Force: --force-unlock (take the lock over from the holder this run
	// finds, even fresh).
	Force bool
	// Holder is this run (Run must be unique; Started, Host, PID and TTL
	// are filled when empty).
	Holder   Holder
	Reporter report.Reporter
	// Interval is the renewal period; 0: TTL/3.
	Interval time.Duration
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// Lease is a held lock. Release it once, on every path.
type Lease struct {
	s    SSM
	o    Options
	me   Holder
	stop chan struct{}
	done chan struct{}

	mu        sync.Mutex
	confirmed time.Time // when the last write confirmed as holding was sent
	lost      error
	released  bool
}

// Attempts bounds how often a contender writes when its writes keep losing
// races to releases (a lock that keeps being freed just before it).
const Attempts = 8

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// NewID is a random id of 12 hex digits.
func NewID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Clear is the command that clears the lock by hand.
func Clear(name, region string) string {
	return fmt.Sprintf("aws ssm delete-parameter --name %s --region %s", name, region)
}

// Acquire takes the lock, or refuses (exit 5, naming the holder) while
// another run holds it fresh. A held lease is renewed until Release.
func Acquire(ctx context.Context, s SSM, o Options) (*Lease, error) {
	if o.TTL <= 0 {
		return nil, errors.New("lease: no TTL")
	}
	me := o.Holder
	if me.Run == "" {
		me.Run = NewID()
	}
	if me.Started.IsZero() {
		me.Started = o.now().UTC()
	}
	if me.Host == "" {
		me.Host = hostname()
	}
	if me.PID == 0 {
		me.PID = os.Getpid()
	}
	if me.TTL == "" {
		me.TTL = o.TTL.String()
	}
	ph := report.For(o.Reporter, "lock")
	l := &Lease{s: s, o: o, me: me}
	forceFrom, warned, wrote := "", "", false
	fail := func(err error) (*Lease, error) {
		if wrote {
			l.cleanUp()
		}
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		st, err := Read(ctx, s, o.Name)
		if err != nil {
			return fail(fmt.Errorf("reading the deploy lock %s (ssm:GetParameterHistory): %w; nothing was changed", o.Name, err))
		}
		if attempt == 0 && st.Held {
			forceFrom = st.Holder.Run
		}
		v, age := Decide(st, me.Run, o.now(), o.TTL, o.Force, forceFrom)
		ttl := st.Holder.TTLOr(o.TTL)
		switch v {
		case Mine:
			l.start()
			return l, nil
		case Refused:
			if attempt > 0 {
				return fail(exitcode.Refusedf("lock held: %s took the deploy lock %s at the same time; nothing was changed. Wait for it to end", st.Holder, o.Name))
			}
			return fail(exitcode.Refusedf("lock held: another run of %s holds the deploy lock %s: %s, last renewed %s ago; nothing was changed. "+
				"Wait for it to end; if it died, run again with --force-unlock (or clear the lock with `%s`); it expires %s after its last renewal",
				o.Env, o.Name, st.Holder, age.Round(time.Second), Clear(o.Name, o.Region), ttl))
		case Forced:
			if warned != st.Holder.Run {
				ph.Warnf("--force-unlock: taking over the deploy lock %s from %s, last renewed %s ago (it would have expired after %s); if that run is still alive, it stops at its next renewal, within %s",
					o.Name, st.Holder, age.Round(time.Second), ttl, ttl/3)
			}
			warned = st.Holder.Run
		case Stale:
			if warned != st.Holder.Run {
				ph.Warnf("taking over the stale deploy lock %s: %s, last renewed %s ago (older than %s)", o.Name, st.Holder, age.Round(time.Second), ttl)
			}
			warned = st.Holder.Run
		}
		if attempt >= Attempts {
			return fail(exitcode.Refusedf("lock busy: the deploy lock %s changed hands %d times while this run tried to take it; nothing was changed. Run again", o.Name, Attempts))
		}
		sent := o.now()
		wrote = true
		if _, err := l.write(ctx, st, held, sent); err != nil {
			var exists *ssmtypes.ParameterAlreadyExists
			if errors.As(err, &exists) {
				continue // created by another run meanwhile: read whose it is
			}
			return fail(fmt.Errorf("taking the deploy lock %s (ssm:PutParameter): %w; nothing was changed", o.Name, err))
		}
		// Did the write land right after the state it read? The next read
		// says: Mine, another run's, or free again after a release.
		l.confirmed = sent
	}
}

// cleanUp releases a lock this run may have taken while Acquire failed
// (a write that went through, then the read-back failed).
func (l *Lease) cleanUp() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for try := 0; try < 3; try++ {
		st, err := Read(ctx, l.s, l.o.Name)
		if err != nil || !st.Held || st.Holder.Run != l.me.Run {
			return
		}
		if _, err := l.write(ctx, st, released, l.o.now()); err != nil {
			return
		}
	}
}

// write writes a record of state after the state read (creating the
// parameter when it does not exist); it returns the record's id.
func (l *Lease) write(ctx context.Context, after State, state string, now time.Time) (string, error) {
	rec := record{Holder: l.me, State: state, Beat: now.UTC(), ID: NewID()}
	in := &ssm.PutParameterInput{Name: aws.String(l.o.Name), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(after.Exists),
		Description: aws.String("ctjdeploy deploy lock of " + l.o.Env + ": the latest valid version holds it (see ctjdeploy's README, Guards, lock)")}
	if after.Exists {
		rec.After, rec.AfterVersion = after.latestID, after.Latest
	}
	val, _ := json.Marshal(rec)
	in.Value = aws.String(string(val))
	if _, err := l.s.PutParameter(ctx, in); err != nil {
		return "", err
	}
	return rec.ID, nil
}

// start starts the heartbeat of a confirmed hold.
func (l *Lease) start() {
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.heartbeat()
}

// Name is the lock's parameter.
func (l *Lease) Name() string { return l.o.Name }

// Holder is this run's record.
func (l *Lease) Holder() Holder { return l.me }

func (l *Lease) ttl() time.Duration { return l.o.TTL }

func (l *Lease) interval() time.Duration {
	if l.o.Interval > 0 {
		return l.o.Interval
	}
	return l.ttl() / 3
}

func (l *Lease) heartbeat() {
	defer close(l.done)
	defer safego.Recover("renewing the deploy lock", func(err error) { l.lose(err) })
	t := time.NewTicker(l.interval())
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if l.Err() != nil {
				return
			}
			l.renew()
		}
	}
}

// renew writes a fresh record if this run still holds the lock, and learns
// whether it does.
func (l *Lease) renew() {
	ctx, cancel := context.WithTimeout(context.Background(), l.interval())
	defer cancel()
	var err error
	for try := 0; try < 3 && err == nil; try++ {
		var st State
		if st, err = l.readDecided(ctx); err != nil {
			break
		}
		if !st.Held || st.Holder.Run != l.me.Run {
			l.lose(exitcode.Refusedf("lock lost: the deploy lock %s is now %s; this run stops before its next write", l.o.Name, describe(st)))
			return
		}
		sent := l.o.now()
		var id string
		if id, err = l.write(ctx, st, held, sent); err != nil {
			break
		}
		if st, err = Read(ctx, l.s, l.o.Name); err != nil {
			break
		}
		if st.Held && st.Holder.Run == l.me.Run && st.id == id {
			l.mu.Lock()
			l.confirmed = sent
			l.mu.Unlock()
			return
		}
		// This renewal lost a race with another write: the next try
		// reads whether the lock did too.
	}
	if err == nil {
		err = errors.New("every try lost a race with another write")
	}
	report.For(l.o.Reporter, "lock").Warnf("renewing the deploy lock %s failed: %v; retrying every %s (the lock is lost if it cannot be renewed within %s of the last renewal)",
		l.o.Name, err, l.interval(), l.ttl())
}

func describe(st State) string {
	switch {
	case !st.Exists:
		return "gone (the parameter was deleted)"
	case !st.Held:
		return "released by " + st.Holder.String()
	}
	return "held by " + st.Holder.String()
}

// lose records the loss once and reports it.
func (l *Lease) lose(err error) {
	l.mu.Lock()
	first := l.lost == nil
	if first {
		l.lost = err
	}
	l.mu.Unlock()
	if first {
		report.For(l.o.Reporter, "lock").Warnf("%v", err)
	}
}

// Err is nil while this run holds the lock: it returns exit 5 "lock lost"
// once a renewal found another holder, or when the lock could not be
// renewed within its TTL (another run may have taken it over). Check it
// before each write.
func (l *Lease) Err() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	if since := l.o.now().Sub(l.confirmed); since >= l.ttl() {
		l.lost = exitcode.Refusedf("lock lost: the deploy lock %s could not be renewed for %s (its time to live): another run may hold it now; this run stops before its next write",
			l.o.Name, since.Round(time.Second))
		return l.lost
	}
	return nil
}

// Release stops the renewals and releases the lock if this run still holds
// it (a lock another run holds now is left as it is). It runs on every
// path, after an interrupt too: with a context of its own. It says whether
// the lock was released, and warns when it could not be.
func (l *Lease) Release() bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return false
	}
	l.released = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	return l.release()
}

// release writes the released record if this run holds the lock.
func (l *Lease) release() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ph := report.For(l.o.Reporter, "lock")
	var err error
	for try := 0; try < Attempts; try++ {
		var st State
		if st, err = l.readDecided(ctx); err != nil {
			break
		}
		if !st.Held && st.Holder.Run == l.me.Run {
			return true // this run's release landed
		}
		if !st.Held || st.Holder.Run != l.me.Run {
			ph.Warnf("the deploy lock %s is %s: left as it is", l.o.Name, describe(st))
			return false
		}
		if _, err = l.write(ctx, st, released, l.o.now()); err != nil {
			break
		}
	}
	if err == nil {
		err = errors.New("it kept changing")
	}
	ph.Warnf("releasing the deploy lock %s failed: %v; the next run will be refused until it expires (%s after this run's last renewal), or run it with --force-unlock, or clear the lock: `%s`",
		l.o.Name, err, l.ttl(), Clear(l.o.Name, l.o.Region))
	return false
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}
