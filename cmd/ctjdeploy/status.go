package main

import "github.com/spf13/cobra"

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status ENV",
		Short: "What runs in ENV now: revision, commit, images, rollout state, last events, drift",
		Long: `Show ENV's service: the live task definition revision and the commit it was
deployed from, its images by digest, the state of the current deployment
(desired/running/pending), the last service events, and drift: a live
revision that ctjdeploy did not register (e.g. re-registered by terraform
apply).`,
		Args:              envArg,
		ValidArgsFunction: g.completeEnvs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := g.loadEnv(args[0]); err != nil {
				return err
			}
			return notYet("status", 6)
		},
	}
}
