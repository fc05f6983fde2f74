package main

import "github.com/spf13/cobra"

func newHistoryCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "history ENV",
		Short: "ENV's deployed revisions: commit, digests, when, which is live",
		Long: `List the task definition revisions of ENV's family, newest first: the commit
each was deployed from, its image digests, when it was registered, and which
one is live.`,
		Args:              envArg,
		ValidArgsFunction: g.completeEnvs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := g.loadEnv(args[0]); err != nil {
				return err
			}
			return notYet("history", 6)
		},
	}
}
