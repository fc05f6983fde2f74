// Command ctjdeploy deploys the Civic Tech Jobs stage (or any environment of
// its config file) from the commit at hand: build, push by digest, render the
// task definition from Terraform outputs, register, update, follow, verify.
//
// main is thin: it rewrites `ctjdeploy ENV [command]` into cobra's shape,
// installs signal handling, runs the command and maps its error to the exit
// codes of the contract.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/internal/safego"
	"github.com/hackforla/ctjdeploy/push"
)

func main() {
	if push.IsCredentialHelper() {
		// Invoked as docker-credential-ctjdeploy by `docker build
		// --cache-from`: answer with an ECR token fetched now, from memory.
		os.Exit(push.RunCredentialHelper(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs ctjdeploy with args and returns the exit code. Everything it
// prints goes through the secret mask.
func run(args []string, rawStdout, rawStderr io.Writer) (code int) {
	stdout := report.MaskWriter(rawStdout)
	stderr := report.MaskWriter(rawStderr)
	// The mask keeps back a tail that may begin a secret: write it out last
	// (this runs after the panic report below).
	defer func() {
		_ = report.Flush(stdout)
		_ = report.Flush(stderr)
	}()
	defer func() {
		// A panic must not print a secret either: report it through the mask.
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "ctjdeploy: internal error: %v\nPlease report this with the command you ran.\n", r)
			code = exitcode.Failed
		}
	}()

	ctx, sig, stop := signalContext(stderr)
	defer stop()

	root := newRootCmd(stdout, stderr, isTerminal(rawStderr))
	root.SetArgs(rewriteArgsFor(root, args))
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitcode.OK
	}
	code = exitcode.Of(err)
	if c := sig(); c != 0 {
		// The contract: 130 / 143 whatever phase the signal stopped; the
		// error says whether the service was changed.
		code = c
	}
	if !isReported(err) {
		fmt.Fprintf(stderr, "ctjdeploy: %v\n", err)
	}
	if os.Getenv("GITHUB_ACTIONS") == "true" {
		// One annotation with the outcome, so the run's summary page says why
		// it failed (guards refuse without a failed phase, for instance).
		fmt.Fprintf(stderr, "::error title=%s::%s\n",
			ghEscapeProperty(fmt.Sprintf("ctjdeploy: %s (exit %d)", exitcode.Name(code), code)), ghEscapeData(err.Error()))
	}
	return code
}

// signalContext is a context cancelled by the first SIGINT or SIGTERM. sig
// returns the exit code of the signal received (130, 143; 0 if none). A
// second signal ends the process at once with that code: the user insists.
func signalContext(stderr io.Writer) (ctx context.Context, sig func() int, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	var got atomic.Int32
	done := make(chan struct{})
	go func() {
		defer safego.Recover("handling a signal", nil) // nothing to fail: the run goes on
		select {
		case s := <-ch:
			got.Store(int32(signalCode(s)))
			fmt.Fprintf(stderr, "ctjdeploy: %s: stopping at the next safe point (send it again to quit at once)\n", s)
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-ch:
			fmt.Fprintf(stderr, "ctjdeploy: %s again: quitting now; whatever was in flight may have happened: check `ctjdeploy ENV status`\n", s)
			_ = report.Flush(stderr)
			os.Exit(signalCode(s))
		case <-done:
		}
	}()
	return ctx, func() int { return int(got.Load()) }, func() {
		signal.Stop(ch)
		close(done)
		cancel()
	}
}

func signalCode(s os.Signal) int {
	if s == syscall.SIGTERM {
		return exitcode.Terminated
	}
	return exitcode.Interrupted
}
