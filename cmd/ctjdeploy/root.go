package main

import (
	"errors"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
)

// globals are the flags every command takes.
type globals struct {
	configPath string
	output     string
	noColor    bool
	verbose    bool // every build line on a terminal (--verbose)
	stdout     io.Writer
	stderr     io.Writer
	stderrTTY  bool // stderr is a terminal
}

const rootLong = `ctjdeploy makes a deployed environment of Civic Tech Jobs track a commit.

One run builds the Django and Next images, pushes them to ECR pinned by
digest, renders the three-container ECS task definition from its template and
Terraform outputs, registers it only if something changed, updates the
service, follows the deployment it started to the end, and checks that the
running tasks run the pushed digests.

ENV is a key under "environments:" in the config file (ctjdeploy.yaml in the
working directory, or --config PATH).

Exit codes:
  0    done (or a dry run found no problem)
  1    failed: an AWS, registry, build or Terraform error
  2    invalid flags, config, template or Terraform output; nothing changed
  3    the deployment failed, ECS rolled it back (or ctjdeploy did, at
       failure_threshold) and the rollback completed:
       the service runs the previous revision again
  4    timed out waiting; the deployment may still complete
  5    refused by a guard (deployment in progress, stale commit, data guard,
       the deploy lock held by another run or lost)
  6    the deployment failed and the service is NOT back on a working
       revision (no rollback configured, or the rollback failed too): act now
  130  interrupted (SIGINT); 143 terminated (SIGTERM): before the service
       update nothing was changed, after it the message names the deployment
       that goes on in ECS`

const rootExample = `  ctjdeploy stage --dry-run        # show what a deploy would do; change nothing
  ctjdeploy stage                  # deploy HEAD to stage and wait for it
  ctjdeploy stage status           # what runs now, from which commit
  ctjdeploy stage history          # the revisions deployed, newest first
  ctjdeploy stage rollback         # back to what was live before the last deploy
  ctjdeploy stage rollback --to 1a2b3c4
  ctjdeploy stage iam-policy       # the IAM policy the tool needs for stage`

func newRootCmd(stdout, stderr io.Writer, stderrTTY bool) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr, stderrTTY: stderrTTY}
	root := &cobra.Command{
		Use:           "ctjdeploy [global flags] ENV [command] [flags]",
		Short:         "Build, push and deploy Civic Tech Jobs to ECS, and tell the truth about it",
		Long:          rootLong,
		Example:       rootExample,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if g.output != "text" && g.output != "json" {
				return exitcode.Invalidf("--output %q: use text or json", g.output)
			}
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return exitcode.Invalidf("%v (see %s --help)", err, c.CommandPath())
	})
	pf := root.PersistentFlags()
	pf.StringVar(&g.configPath, "config", config.DefaultFile, "config file; relative paths inside it resolve against its folder")
	pf.StringVarP(&g.output, "output", "o", "text", "output format: text or json (json: one document on stdout, logs on stderr)")
	pf.BoolVar(&g.noColor, "no-color", false, "no colors (also when NO_COLOR is set or output is not a terminal)")
	pf.BoolVar(&g.verbose, "verbose", false, "print every build line (a terminal otherwise folds each image's build to one live line)")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))

	root.AddCommand(
		envUsage(newDeployCmd(g), "ctjdeploy [global flags] ENV [flags]"),
		envUsage(newRollbackCmd(g), "ctjdeploy [global flags] ENV rollback [--to TAG] [flags]"),
		envUsage(newStatusCmd(g), "ctjdeploy [global flags] ENV status"),
		envUsage(newHistoryCmd(g), "ctjdeploy [global flags] ENV history"),
		envUsage(newIAMPolicyCmd(g), "ctjdeploy [global flags] ENV iam-policy"),
		envUsage(newDoctorCmd(g), "ctjdeploy [global flags] ENV doctor"),
		envUsage(newLocalCmd(g), "ctjdeploy [global flags] ENV local [flags]"),
		newVersionCmd(g),
	)
	root.CompletionOptions.HiddenDefaultCmd = false
	return root
}

// loadEnv loads the config and picks ENV. Errors have exit code 2.
func (g *globals) loadEnv(name string) (*config.Environment, error) {
	f, err := config.Load(g.configPath)
	if err != nil {
		return nil, err
	}
	return f.Env(name)
}

// completeEnvs completes ENV from the config file.
func (g *globals) completeEnvs(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	f, err := config.Load(g.configPath)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, n := range f.Names() {
		if strings.HasPrefix(n, toComplete) {
			out = append(out, n)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// envArg is the Args validator of the commands that take ENV.
func envArg(cmd *cobra.Command, args []string) error {
	switch len(args) {
	case 1:
		return nil
	case 0:
		return exitcode.Invalidf("name the environment: ctjdeploy ENV %s (ENV is a key under environments: in the config)", strings.TrimPrefix(cmd.Name(), "deploy"))
	}
	return exitcode.Invalidf("unexpected arguments %q after %s (see ctjdeploy ENV %s --help)", args[1:], args[0], cmd.Name())
}

// color says whether to color what goes to stderr.
func (g *globals) color() bool {
	if g.noColor || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return g.stderrTTY
}

// isTerminal says whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// reporter returns the renderer of events for this run: GitHub Actions
// workflow commands when GITHUB_ACTIONS=true, a live progress line on a
// terminal, plain lines otherwise. All of them write to stderr through the
// secret mask; only the GitHub renderer's ::add-mask:: lines bypass it
// (report.Unmasked), because they must carry the raw value to the runner.
func (g *globals) reporter() report.Reporter {
	return recording(g.renderer())
}

func (g *globals) renderer() report.Reporter {
	switch {
	case os.Getenv("GITHUB_ACTIONS") == "true":
		gr := newGitHubRenderer(g.stderr, report.Unmasked(g.stderr))
		gr.verbose = g.verbose
		o := newSayOnce(gr)
		o.keepWarnings = true
		return o
	case g.stderrTTY && os.Getenv("TERM") != "dumb":
		lr := newLiveRenderer(g.stderr, g.color(), nil)
		lr.verbose = g.verbose
		return newSayOnce(lr)
	default:
		tr := newTextRenderer(g.stderr, g.color())
		tr.verbose = g.verbose
		return newSayOnce(tr)
	}
}

// envUsage makes the usage line of a command that follows ENV read as the
// contract writes it: "ctjdeploy [global flags] ENV rollback [flags]".
func envUsage(cmd *cobra.Command, line string) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[envAnnotation] = "1"
	cmd.SetUsageTemplate(strings.Replace(cmd.UsageTemplate(), "{{.UseLine}}", line, 1))
	return cmd
}

// reportedError marks an error the renderer has already shown in full, so
// main does not print it twice.
type reportedError struct{ error }

func (e reportedError) Unwrap() error { return e.error }

func isReported(err error) bool {
	var r reportedError
	return errors.As(err, &r)
}

// closeReporter ends a renderer that holds a live display, so that what is
// printed next starts on a clean line.
func closeReporter(r report.Reporter) {
	if c, ok := r.(io.Closer); ok {
		_ = c.Close()
	}
}
