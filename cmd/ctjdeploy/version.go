package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is set with -ldflags "-X main.version=..." (the Makefile and
// .goreleaser.yaml do). When it is empty, the module version recorded in the
// build info is used: `go install
// github.com/hackforla/ctjdeploy/cmd/ctjdeploy@v1.2.3` records v1.2.3.
var version = ""

// buildInfo is runtime/debug.ReadBuildInfo; tests replace it.
var buildInfo = debug.ReadBuildInfo

// versionDoc is what `ctjdeploy version` prints: the version, and, when the
// binary was built from a git checkout (go build stamps the vcs.revision,
// vcs.time and vcs.modified settings: -buildvcs in `go help build`; `go
// install pkg@version` builds from the module zip and stamps none), the
// commit, its time and whether the tree had uncommitted changes, and the
// Go toolchain that built it.
type versionDoc struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Time     string `json:"commitTime,omitempty"`
	Modified bool   `json:"modified"`
	Go       string `json:"go"`
	Module   string `json:"module,omitempty"`
}

// versionInfo reads the version: the -X main.version ldflag wins, then the
// main module's version in the build info ("(devel)" for a plain `go build`
// in a checkout, which becomes "dev"), then "dev".
func versionInfo() versionDoc {
	v := versionDoc{Version: version, Go: runtime.Version()}
	if bi, ok := buildInfo(); ok && bi != nil {
		if v.Version == "" {
			v.Version = bi.Main.Version
		}
		v.Module = bi.Main.Path
		if bi.GoVersion != "" {
			v.Go = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" || v.Version == "(devel)" {
		v.Version = "dev"
	}
	return v
}

// writeVersion prints v as one line:
//
//	ctjdeploy v1.2.3 (commit 0123456789abcdef0123456789abcdef01234567, 2026-12-02T14:00:00Z, modified) go1.26.8
func writeVersion(w io.Writer, v versionDoc) error {
	s := "ctjdeploy " + v.Version
	var about []string
	if v.Commit != "" {
		about = append(about, "commit "+v.Commit)
	}
	if v.Time != "" {
		about = append(about, v.Time)
	}
	if v.Modified {
		about = append(about, "modified")
	}
	if len(about) > 0 {
		s += " (" + strings.Join(about, ", ") + ")"
	}
	_, err := fmt.Fprintf(w, "%s %s\n", s, v.Go)
	return err
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print ctjdeploy's version, the commit it was built from and its Go version",
		Long: `Print ctjdeploy's version: the one set at build time (make build, a release),
else the module version of ` + "`go install github.com/hackforla/ctjdeploy/cmd/ctjdeploy@VERSION`" + `,
else "dev"; the commit, its time and whether the tree was modified, when it
was built from a git checkout; and the Go version that built it.`,
		Args: cobraNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := versionInfo()
			if g.output == "json" {
				return json.NewEncoder(g.stdout).Encode(v)
			}
			return writeVersion(g.stdout, v)
		},
	}
}
