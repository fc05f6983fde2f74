// Package exitcode carries the contract's exit codes through error values.
//
// Phases return ordinary errors; the ones that mean something other than
// "failed" (1) are wrapped with a Code so that cmd/ctjdeploy can map any error
// to the exit code the contract promises.
package exitcode

import (
	"errors"
	"fmt"
)

// The exit codes of the contract.
const (
	OK         = 0 // done, or a dry run found no problem
	Failed     = 1 // an AWS, registry, build or Terraform error
	Invalid    = 2 // bad flags, config, template or missing Terraform output; nothing changed
	RolledBack = 3 // the deployment failed and the service is back on the previous revision
	TimedOut   = 4 // timed out waiting; the deployment may still complete
	Refused    = 5 // refused by a guard
	// NotRecovered: the deployment failed and the service is NOT back on a
	// working revision (no rollback configured, or the rollback failed too).
	NotRecovered = 6
	// Interrupted (SIGINT) and Terminated (SIGTERM), as shells report a
	// process ended by those signals (128 + signal number).
	Interrupted = 130
	Terminated  = 143
)

// Error is an error with an exit code.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Wrap gives err the exit code code. A nil err stays nil.
func Wrap(code int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err}
}

// Invalidf is an Invalid error (exit 2) with a formatted message.
func Invalidf(format string, args ...any) error {
	return &Error{Code: Invalid, Err: fmt.Errorf(format, args...)}
}

// Refusedf is a Refused error (exit 5) with a formatted message.
func Refusedf(format string, args ...any) error {
	return &Error{Code: Refused, Err: fmt.Errorf(format, args...)}
}

// Of returns the exit code for err: 0 for nil, the outermost Code found in the
// chain, or Failed.
func Of(err error) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Failed
}

// Name is a short word for a code, for JSON output and summaries.
func Name(code int) string {
	switch code {
	case OK:
		return "ok"
	case Failed:
		return "failed"
	case Invalid:
		return "invalid"
	case RolledBack:
		return "rolled-back"
	case TimedOut:
		return "timed-out"
	case Refused:
		return "refused"
	case NotRecovered:
		return "not-recovered"
	case Interrupted:
		return "interrupted"
	case Terminated:
		return "terminated"
	}
	return fmt.Sprintf("code-%d", code)
}
