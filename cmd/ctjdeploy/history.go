package main

import (
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/spf13/cobra"

	"github.com/hackforla/ctjdeploy/deploy/inspect"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

func newHistoryCmd(g *globals) *cobra.Command {
	limit := inspect.DefaultLimit
	cmd := &cobra.Command{
		Use:   "history ENV",
		Short: "ENV's deployed revisions: commit, digests, when, which is live",
		Long: `List the task definition revisions of ENV's family, newest first: the commit
each was deployed from, its image digests, when it was registered, who
registered it (ctjdeploy or something else, such as terraform apply), and
which one is live. Only ACTIVE revisions are listed: those a rollback can
return to.`,
		Args:              envArg,
		ValidArgsFunction: g.completeEnvs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.loadEnv(args[0])
			if err != nil {
				return err
			}
			if limit < 1 || limit > 100 {
				return exitcode.Invalidf("--limit %d: give a number from 1 to 100", limit)
			}
			ctx := cmd.Context()
			cfg, err := loadAWSForEnv(ctx, env)
			if err != nil {
				return err
			}
			h, err := inspect.GetHistory(ctx, ecs.NewFromConfig(cfg), env, limit)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return writeJSON(g.stdout, h)
			}
			return inspect.WriteHistory(g.stdout, h)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", inspect.DefaultLimit, "how many revisions to show, newest first (1-100)")
	return cmd
}
