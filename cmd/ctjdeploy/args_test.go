package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestRewriteArgs(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"stage", "deploy stage"},
		{"stage --dry-run", "deploy stage --dry-run"},
		{"--config x.yaml stage --tag abc", "deploy --config x.yaml stage --tag abc"},
		{"--output json stage rollback --to abc1234", "rollback --output json stage --to abc1234"},
		{"stage status", "status stage"},
		{"stage --output json history", "history stage --output json"},
		{"--config=x stage iam-policy", "iam-policy --config=x stage"},
		{"stage --tag status", "deploy stage --tag status"}, // a tag value is not a command
		{"version", "version"},
		{"help stage", "help stage"},
		{"completion bash", "completion bash"},
		{"__complete stage ''", "__complete stage ''"},
		{"--help", "--help"},
		{"stage rollback --help", "rollback stage --help"},
		// docs/adopting.md's form: a command's own flag before the command
		{"stage --account 123456789012 iam-policy", "iam-policy stage --account 123456789012"},
		{"stage iam-policy --account 123456789012", "iam-policy stage --account 123456789012"},
		{"-o json stage status", "status -o json stage"},
		{"-ojson stage status", "status -ojson stage"},
		{"stage --no-wait --timeout 5m rollback --to abc", "rollback stage --no-wait --timeout 5m --to abc"},
		{"stage --verbose history", "history stage --verbose"}, // a bool flag takes no value
		{"stage --limit 3 history", "history stage --limit 3"},
		{"stage --to rollback", "deploy stage --to rollback"}, // a flag's value is not a command
		{"deploy stage", "deploy stage"},
	}
	for _, c := range cases {
		got := strings.Join(rewriteArgs(strings.Fields(c.in)), " ")
		if got != c.want {
			t.Errorf("rewriteArgs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// Every flag of every command is understood by rewriteArgs from the command
// tree: a flag that takes a value, written before the command's name, keeps
// its value and the command is found.
func TestRewriteArgsEveryFlagFromTree(t *testing.T) {
	root := newRootCmd(io.Discard, io.Discard, false)
	kind := map[string]bool{} // flag name -> takes a value
	n := 0
	for _, c := range root.Commands() {
		if c.Annotations[envAnnotation] == "" || c.Name() == "deploy" {
			continue
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			valued := f.NoOptDefVal == ""
			if k, ok := kind[f.Name]; ok && k != valued {
				t.Errorf("flag --%s takes a value in one command and not in another: rewriteArgs could not tell", f.Name)
			}
			kind[f.Name] = valued
			args := []string{"stage", "--" + f.Name}
			if valued {
				args = append(args, "VALUE")
			}
			args = append(args, c.Name())
			got := rewriteArgs(args)
			if len(got) == 0 || got[0] != c.Name() {
				t.Errorf("rewriteArgs(%q) = %q: the command %s is not found", args, got, c.Name())
			}
			n++
		})
	}
	if n < 5 {
		t.Errorf("only %d flags checked: the command tree looks empty", n)
	}
}

// `ctjdeploy stage --account 123456789012 iam-policy`, as docs/adopting.md
// writes it, runs iam-policy with the account (it exited 2 "unknown flag"
// when the flags came from a hand-kept list).
func TestAccountBeforeCommand(t *testing.T) {
	noAWS(t)
	dir := writeIAMFixture(t, `{"family": "fam",
  "executionRoleArn": "arn:aws:iam::111122223333:role/exec",
  "containerDefinitions": [{"name": "web", "image": "{{ image "web" }}"}]}`)
	code, out, errOut := runCLI(t, dir, "stage", "--account", "111122223333", "iam-policy")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, `"arn:aws:ecs:us-west-2:111122223333:service/c1/s1"`) {
		t.Errorf("the policy does not use --account 111122223333:\n%s", out)
	}
}

// --help lists every exit code of the contract.
func TestHelpListsEveryExitCode(t *testing.T) {
	var out bytes.Buffer
	root := newRootCmd(&out, io.Discard, false)
	root.SetArgs([]string{"--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, code := range []string{"0", "1", "2", "3", "4", "5", "6", "130", "143"} {
		found := false
		for _, ln := range strings.Split(text, "\n") {
			f := strings.Fields(ln)
			if len(f) > 0 && f[0] == code || strings.Contains(ln, "; "+code+" ") {
				found = true
			}
		}
		if !found {
			t.Errorf("--help does not list exit code %s:\n%s", code, text)
		}
	}
}
