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
	"syscall"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/report"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs ctjdeploy with args and returns the exit code. Everything it
// prints goes through the secret mask.
func run(args []string, rawStdout, rawStderr io.Writer) (code int) {
	stdout := report.MaskWriter(rawStdout)
	stderr := report.MaskWriter(rawStderr)
	defer func() {
		// A panic must not print a secret either: report it through the mask.
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "ctjdeploy: internal error: %v\nPlease report this with the command you ran.\n", r)
			code = exitcode.Failed
		}
	}()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root := newRootCmd(stdout, stderr, isTerminal(rawStderr))
	root.SetArgs(rewriteArgs(args))
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitcode.OK
	}
	code = exitcode.Of(err)
	if ctx.Err() != nil && code == exitcode.Failed {
		fmt.Fprintln(stderr, "ctjdeploy: interrupted")
	}
	if !isReported(err) {
		fmt.Fprintf(stderr, "ctjdeploy: %v\n", err)
	}
	return code
}
