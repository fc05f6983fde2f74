package main

import (
	"strings"
	"testing"
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
	}
	for _, c := range cases {
		got := strings.Join(rewriteArgs(strings.Fields(c.in)), " ")
		if got != c.want {
			t.Errorf("rewriteArgs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
