package main

import "strings"

// The contract's command line puts the environment first:
//
//	ctjdeploy [global] ENV [deploy flags]
//	ctjdeploy [global] ENV rollback|status|history|iam-policy [flags]
//
// Cobra wants the command first, so rewriteArgs turns `ENV rollback ...` into
// `rollback ENV ...` and a bare `ENV ...` into `deploy ENV ...`. Arguments
// that already start with a command (version, help, completion, cobra's
// __complete) pass through unchanged.

// envCommands are the commands that follow ENV.
var envCommands = map[string]bool{"rollback": true, "status": true, "history": true, "iam-policy": true, "doctor": true, "local": true}

// topCommands are the commands that stand first.
var topCommands = map[string]bool{
	"version": true, "help": true, "completion": true, "deploy": true,
	"__complete": true, "__completeNoDesc": true,
	"rollback": true, "status": true, "history": true, "iam-policy": true,
	"doctor": true, "local": true,
}

// valueFlags are the long flags that take a separate value.
var valueFlags = map[string]bool{"--config": true, "--output": true, "-o": true, "--tag": true, "--timeout": true, "--to": true, "--limit": true, "--port": true, "--account": true, "--format": true}

// positionals returns the indexes of the positional arguments of args,
// skipping flags and the values of flags that take one. Everything after
// "--" is positional.
func positionals(args []string) []int {
	var idx []int
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			for j := i + 1; j < len(args); j++ {
				idx = append(idx, j)
			}
			return idx
		case strings.HasPrefix(a, "-"):
			if valueFlags[a] && !strings.Contains(a, "=") {
				i++
			}
		default:
			idx = append(idx, i)
		}
	}
	return idx
}

func rewriteArgs(args []string) []string {
	pos := positionals(args)
	if len(pos) == 0 {
		return args
	}
	first := pos[0]
	if topCommands[args[first]] {
		return args
	}
	out := make([]string, 0, len(args)+1)
	if len(pos) > 1 && envCommands[args[pos[1]]] {
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
