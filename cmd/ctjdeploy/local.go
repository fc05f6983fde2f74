package main

import (
	"github.com/spf13/cobra"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// newLocalCmd is `ctjdeploy ENV local`: ENV's own task definition on the
// local Docker engine (contract, "Added 2026-12-04").
func newLocalCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "local ENV",
		Short:             "Run ENV's own task definition on the local Docker engine, behind a local load balancer",
		Args:              envArg,
		ValidArgsFunction: g.completeEnvs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := g.loadEnv(args[0]); err != nil {
				return err
			}
			return exitcode.Invalidf("local: not built yet")
		},
	}
}
