// Command vulncheck reads `govulncheck -format json` on stdin and decides:
// a vulnerable symbol the code reaches in a module dependency fails (exit 1);
// one in the standard library is reported only (the release workflow builds
// with a Go that has the fix); vulnerabilities in packages or modules the
// code imports or requires but does not reach are counted.
//
//	govulncheck -db file://DIR -format json ./... | go run ./scripts/vulncheck
//
// The JSON stream is govulncheck's (golang.org/x/vuln/internal/govulncheck:
// a sequence of messages, each with one of config, progress, osv, finding);
// a finding whose first trace frame names a function is reached by the code.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
	Receiver string `json:"receiver"`
}

type message struct {
	Config *struct {
		ScannerVersion string `json:"scanner_version"`
		DB             string `json:"db"`
		DBLastModified string `json:"db_last_modified"`
	} `json:"config"`
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string   `json:"osv"`
		FixedVersion string   `json:"fixed_version"`
		Trace        []*frame `json:"trace"`
	} `json:"finding"`
}

type reached struct {
	id, module, version, fixed string
	symbols                    map[string]bool
	from                       map[string]bool
}

func main() {
	code, err := run(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulncheck:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func run(in io.Reader, out io.Writer) (int, error) {
	dec := json.NewDecoder(in)
	summaries := map[string]string{}
	found := map[string]*reached{}
	imported := map[string]bool{}
	msgs := 0
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return 0, fmt.Errorf("reading govulncheck's JSON: %w", err)
		}
		msgs++
		switch {
		case m.Config != nil:
			fmt.Fprintf(out, "govulncheck %s, database %s (modified %s)\n", m.Config.ScannerVersion, m.Config.DB, m.Config.DBLastModified)
		case m.OSV != nil:
			summaries[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil && len(m.Finding.Trace) > 0:
			f := m.Finding
			top := f.Trace[0]
			if top.Function == "" {
				imported[f.OSV+" "+top.Module] = true
				continue
			}
			key := f.OSV + " " + top.Module
			r := found[key]
			if r == nil {
				r = &reached{id: f.OSV, module: top.Module, version: top.Version, fixed: f.FixedVersion, symbols: map[string]bool{}, from: map[string]bool{}}
				found[key] = r
			}
			sym := top.Package + "." + top.Function
			if top.Receiver != "" {
				sym = top.Package + "." + strings.TrimPrefix(top.Receiver, "*") + "." + top.Function
			}
			r.symbols[sym] = true
			if last := f.Trace[len(f.Trace)-1]; last != top {
				r.from[last.Package+"."+last.Function] = true
			}
		}
	}
	if msgs == 0 {
		return 0, errors.New("no output from govulncheck")
	}
	keys := make([]string, 0, len(found))
	for k := range found {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	failed, std := 0, 0
	for _, k := range keys {
		r := found[k]
		kind := "FAIL"
		if r.module == "stdlib" || r.module == "toolchain" {
			kind, std = "std (reported only)", std+1
		} else {
			failed++
		}
		fixed := r.fixed
		if fixed == "" {
			fixed = "no fixed version"
		}
		fmt.Fprintf(out, "%s: %s %s@%s, fixed in %s: %s\n    reached: %s\n", kind, r.id, r.module, r.version, fixed, summaries[r.id], list(r.symbols, 4))
		if len(r.from) > 0 {
			fmt.Fprintf(out, "    from: %s\n", list(r.from, 3))
		}
	}
	notReached := map[string]bool{}
	for k := range imported {
		if found[k] == nil {
			notReached[k] = true
		}
	}
	fmt.Fprintf(out, "%d vulnerabilities reached in module dependencies, %d in the standard library (reported only), %d in imported or required code but not reached\n", failed, std, len(notReached))
	if failed > 0 {
		fmt.Fprintln(out, "vulncheck: update the modules above (go get MODULE@FIXED && go mod tidy)")
		return 1, nil
	}
	return 0, nil
}

func list(set map[string]bool, max int) string {
	s := make([]string, 0, len(set))
	for k := range set {
		s = append(s, k)
	}
	sort.Strings(s)
	if len(s) > max {
		return strings.Join(s[:max], ", ") + fmt.Sprintf(" and %d more", len(s)-max)
	}
	return strings.Join(s, ", ")
}
