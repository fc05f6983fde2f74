package main

import (
	"encoding/json"
	"io"

	"github.com/spf13/cobra"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

func exitcodeInvalidf(format string, args ...any) error { return exitcode.Invalidf(format, args...) }

// cobraNoArgs is cobra.NoArgs with exit code 2.
func cobraNoArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return exitcode.Wrap(exitcode.Invalid, err)
	}
	return nil
}

// writeJSON writes v as one indented JSON document: the --output json
// document of every command (deploy, rollback, status, history).
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
