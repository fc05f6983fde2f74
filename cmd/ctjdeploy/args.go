package main

import (
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The contract's command line puts the environment first:
//
//	ctjdeploy [global] ENV [deploy flags]
//	ctjdeploy [global] ENV rollback|status|history|iam-policy [flags]
//
// Cobra wants the command first, so rewriteArgs turns `ENV rollback ...` into
// `rollback ENV ...` and a bare `ENV ...` into `deploy ENV ...`. Arguments
// that already start with a command (version, help, completion, cobra's
// __complete) pass through unchanged.
//
// Which commands follow ENV, which stand first, and which flags take a value
// all come from the command tree itself (newRootCmd), so a flag or command
// added there is understood here without a second list to keep.

// envAnnotation marks the commands that follow ENV (set by envUsage).
const envAnnotation = "ctjdeploy/env-command"

// rewriteArgs rewrites args for the command tree of newRootCmd.
func rewriteArgs(args []string) []string {
	return rewriteArgsFor(newRootCmd(io.Discard, io.Discard, false), args)
}

// argTree is what rewriteArgsFor needs to know of a command tree.
type argTree struct {
	top   map[string]bool // names (and aliases) that may stand first
	env   map[string]bool // commands that follow ENV
	flags []*pflag.FlagSet
}

func treeOf(root *cobra.Command) argTree {
	t := argTree{
		top: map[string]bool{"help": true, "completion": true,
			cobra.ShellCompRequestCmd: true, cobra.ShellCompNoDescRequestCmd: true},
		env:   map[string]bool{},
		flags: []*pflag.FlagSet{root.PersistentFlags(), root.Flags()},
	}
	for _, c := range root.Commands() {
		for _, n := range append([]string{c.Name()}, c.Aliases...) {
			t.top[n] = true
			if c.Annotations[envAnnotation] != "" && c.Name() != "deploy" {
				t.env[n] = true
			}
		}
		t.flags = append(t.flags, c.PersistentFlags(), c.LocalNonPersistentFlags())
	}
	return t
}

// takesValue says whether the flag argument a (such as "--tag", "-o") is
// followed by its value as the next argument: it names a flag of the tree
// that has no default for a bare flag (pflag's NoOptDefVal, which bool
// flags have), and it does not carry its value itself (--tag=x, -ojson).
func (t argTree) takesValue(a string) bool {
	var f *pflag.Flag
	switch {
	case strings.HasPrefix(a, "--"):
		name := a[2:]
		if strings.Contains(name, "=") {
			return false
		}
		for _, fs := range t.flags {
			if f = fs.Lookup(name); f != nil {
				break
			}
		}
	case len(a) == 2: // -o
		for _, fs := range t.flags {
			if f = fs.ShorthandLookup(a[1:]); f != nil {
				break
			}
		}
	}
	return f != nil && f.NoOptDefVal == ""
}

// positionals returns the indexes of the positional arguments of args,
// skipping flags and the values of flags that take one. Everything after
// "--" is positional.
func (t argTree) positionals(args []string) []int {
	var idx []int
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			for j := i + 1; j < len(args); j++ {
				idx = append(idx, j)
			}
			return idx
		case strings.HasPrefix(a, "-") && a != "-":
			if t.takesValue(a) {
				i++
			}
		default:
			idx = append(idx, i)
		}
	}
	return idx
}

func rewriteArgsFor(root *cobra.Command, args []string) []string {
	t := treeOf(root)
	pos := t.positionals(args)
	if len(pos) == 0 {
		return args
	}
	first := pos[0]
	if t.top[args[first]] {
		return args
	}
	out := make([]string, 0, len(args)+1)
	if len(pos) > 1 && t.env[args[pos[1]]] {
		cmd := pos[1]
		out = append(out, args[cmd])
		for i, a := range args {
			if i != cmd {
				out = append(out, a)
			}
		}
		return out
	}
	out = append(out, "deploy")
	return append(out, args...)
}
