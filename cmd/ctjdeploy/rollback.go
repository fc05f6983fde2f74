package main

import (
	"time"

	"github.com/spf13/cobra"
)

type rollbackFlags struct {
	to      string
	dryRun  bool
	noWait  bool
	timeout time.Duration
}

const rollbackLong = `Roll ENV back. Nothing is built or pushed.

Without --to, the service returns to the revision that was live before the
current deployment (recorded when ctjdeploy deployed; not "revision - 1").
With --to TAG (a full tag, or a commit prefix of at least 7 characters) it
deploys the images pushed under TAG, after checking they still exist in the
registry.

Rollback bypasses the stale-commit guard (that is its purpose) but not the
data guard. It follows and verifies the deployment exactly as a deploy does.`

func newRollbackCmd(g *globals) *cobra.Command {
	f := &rollbackFlags{}
	cmd := &cobra.Command{
		Use:   "rollback ENV",
		Short: "Return ENV to the previous revision, or to the images of an earlier tag",
		Long:  rollbackLong,
		Example: `  ctjdeploy stage rollback --dry-run
  ctjdeploy stage rollback
  ctjdeploy stage rollback --to 1a2b3c4`,
		Args:              envArg,
		ValidArgsFunction: g.completeEnvs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.loadEnv(args[0])
			if err != nil {
				return err
			}
			if f.to != "" && len(f.to) < 7 {
				return exitcodeInvalidf("--to %q: give a full tag or a commit prefix of at least 7 characters", f.to)
			}
			_ = env
			return notYet("rollback", 6)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.to, "to", "", "tag (or commit prefix of at least 7 characters) whose images to deploy")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the plan; write nothing")
	fl.BoolVar(&f.noWait, "no-wait", false, "stop after updating the service")
	fl.DurationVar(&f.timeout, "timeout", 15*time.Minute, "how long to follow the deployment before exiting 4")
	return cmd
}
