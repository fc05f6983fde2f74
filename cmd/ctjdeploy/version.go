package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set with -ldflags "-X main.version=...".
var version = ""

func versionInfo() (ver, commit string) {
	ver = version
	if bi, ok := debug.ReadBuildInfo(); ok {
		if ver == "" {
			ver = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	if ver == "" || ver == "(devel)" {
		ver = "dev"
	}
	return ver, commit
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print ctjdeploy's version",
		Args:  cobraNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ver, commit := versionInfo()
			if g.output == "json" {
				return json.NewEncoder(g.stdout).Encode(map[string]string{"version": ver, "commit": commit, "go": runtime.Version()})
			}
			s := "ctjdeploy " + ver
			if commit != "" {
				s += " (" + commit + ")"
			}
			fmt.Fprintf(g.stdout, "%s %s\n", s, runtime.Version())
			return nil
		},
	}
}
