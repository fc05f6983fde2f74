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
	"github.com/hackforla/ctjdeploy/internal/report"
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
	if os.Getenv("GITHUB_ACTIONS") == "true" {
		// One annotation with the outcome, so the run's summary page says why
		// it failed (guards refuse without a failed phase, for instance).
		fmt.Fprintf(stderr, "::error title=%s::%s\n",
			ghEscapeProperty(fmt.Sprintf("ctjdeploy: %s (exit %d)", exitcode.Name(code), code)), ghEscapeData(err.Error()))
	}
	return code
}
