package main

import (
	"github.com/spf13/cobra"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// newDoctorCmd is `ctjdeploy ENV doctor`: a read-only preflight (contract,
// "Added 2026-12-04").
func newDoctorCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "doctor ENV",
		Short:             "Read-only preflight: what a truthful deploy of ENV needs, and what to change",
		Args:              envArg,
		ValidArgsFunction: g.completeEnvs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := g.loadEnv(args[0]); err != nil {
				return err
			}
			return exitcode.Invalidf("doctor: not built yet")
		},
	}
}
