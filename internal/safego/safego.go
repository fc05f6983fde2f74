// Package safego turns a panic in a goroutine ctjdeploy starts into an
// error: a panic that escapes a goroutine crashes the process with exit 2
// ("invalid: nothing was changed", even mid-push) and prints its message,
// which may hold a secret, unmasked. Every goroutine defers Recover.
package safego

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
)

// Error is the error a recovered panic becomes: exit 1 (failed), naming what
// was being done, with the panic's message masked (report.Mask) and the
// frame that panicked.
func Error(what string, v any) error {
	msg := report.Mask(fmt.Sprint(v))
	return exitcode.Wrap(exitcode.Failed, fmt.Errorf("internal error while %s: panic: %s (at %s); this is a bug in ctjdeploy: please report it with this message",
		what, msg, report.Mask(panicFrame())))
}

// Recover, deferred at the top of a goroutine, recovers a panic and hands
// it to set as an Error (set may be nil: the panic is then swallowed,
// which only a goroutine that cannot fail the run should do).
//
//	go func() {
//		defer safego.Recover("pushing layers", func(err error) { errs[i] = err })
//		...
//	}()
func Recover(what string, set func(error)) {
	if v := recover(); v != nil {
		if set != nil {
			set(Error(what, v))
		}
	}
}

// Go runs fn in a goroutine that recovers a panic into fn's error; the
// error (nil when fn returned nil) is sent on the returned channel.
func Go(what string, fn func() error) <-chan error {
	ch := make(chan error, 1)
	go func() {
		var err error
		defer func() { ch <- err }()
		defer Recover(what, func(e error) { err = e })
		err = fn()
	}()
	return ch
}

// panicFrame is the first frame of the stack below the runtime's panic
// machinery and this package: where the panic happened.
func panicFrame() string {
	lines := strings.Split(string(debug.Stack()), "\n")
	// Frames come in pairs: "pkg.func(...)" then "\tfile:line +0x..".
	seenPanic := false
	for i := 1; i+1 < len(lines); i += 2 {
		fn := lines[i]
		if strings.HasPrefix(fn, "panic(") {
			seenPanic = true
			continue
		}
		if !seenPanic || strings.HasPrefix(fn, "runtime.") {
			continue
		}
		loc := strings.TrimSpace(lines[i+1])
		if j := strings.LastIndex(loc, " +0x"); j > 0 {
			loc = loc[:j]
		}
		if j := strings.LastIndex(fn, "("); j > 0 {
			fn = fn[:j]
		}
		return fn + " " + loc
	}
	return "unknown"
}
