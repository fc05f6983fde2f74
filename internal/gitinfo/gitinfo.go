// Package gitinfo asks the git repository holding the config two things: the
// commit at HEAD, and whether one commit is an ancestor of another. It runs
// the git CLI; it never fetches.
package gitinfo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
)

// Answer is what local history says about "is A an ancestor of B".
type Answer int

const (
	CannotTell  Answer = iota // shallow clone, unknown commit, not a commit id
	Ancestor                  // A is an ancestor of B (or A == B)
	NotAncestor               // A is not
)

func (a Answer) String() string {
	switch a {
	case Ancestor:
		return "ancestor"
	case NotAncestor:
		return "not-ancestor"
	}
	return "cannot-tell"
}

var shaRe = regexp.MustCompile(`^[0-9a-f]{7,64}$`)

// IsCommitID says whether s looks like a (possibly abbreviated) commit id.
func IsCommitID(s string) bool { return shaRe.MatchString(s) }

func git(ctx context.Context, dir string, args ...string) (string, int, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return strings.TrimSpace(out.String()), ee.ExitCode(), fmt.Errorf("git %s: %s", strings.Join(args, " "), strings.TrimSpace(errb.String()))
	}
	if err != nil {
		return "", -1, fmt.Errorf("running git (is it installed?): %w", err)
	}
	return strings.TrimSpace(out.String()), 0, nil
}

// Head returns the full commit SHA of HEAD of the repository holding dir.
// The error says when dir is not in a git repository (or git is missing).
func Head(ctx context.Context, dir string) (string, error) {
	out, _, err := git(ctx, dir, "rev-parse", "--verify", "HEAD^{commit}")
	if err != nil {
		return "", fmt.Errorf("reading HEAD of the git repository holding %s: %w", dir, err)
	}
	return out, nil
}

// Dirty says whether the work tree has uncommitted changes to tracked files.
func Dirty(ctx context.Context, dir string) (bool, error) {
	out, _, err := git(ctx, dir, "status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return false, err
	}
	return out != "", nil
}

// IsAncestor says whether commit a is an ancestor of commit b in the local
// history of the repository holding dir. When history cannot tell, it says
// why: a shallow clone, a commit it does not have, or a tag that is not a
// commit id. An error means git itself could not run.
func IsAncestor(ctx context.Context, dir, a, b string) (Answer, string, error) {
	if !IsCommitID(a) || !IsCommitID(b) {
		return CannotTell, fmt.Sprintf("%q or %q is not a commit id", a, b), nil
	}
	shallow := false
	if out, _, err := git(ctx, dir, "rev-parse", "--is-shallow-repository"); err == nil {
		shallow = out == "true"
	} else {
		return CannotTell, "", err
	}
	for _, c := range []string{a, b} {
		if _, _, err := git(ctx, dir, "cat-file", "-e", c+"^{commit}"); err != nil {
			why := fmt.Sprintf("commit %s is not in the local history", c)
			if shallow {
				why += " (shallow clone: fetch more history, e.g. actions/checkout with fetch-depth: 0)"
			}
			return CannotTell, why, nil
		}
	}
	_, code, err := git(ctx, dir, "merge-base", "--is-ancestor", a, b)
	switch {
	case code == 0 && err == nil:
		return Ancestor, "", nil
	case code == 1:
		if shallow {
			// The path between them may be cut off by the shallow boundary.
			return CannotTell, "shallow clone: the history between the two commits may be missing (fetch-depth: 0 fetches it)", nil
		}
		return NotAncestor, "", nil
	}
	return CannotTell, "", err
}

// RemoteURL is the URL of the repository's origin remote, without any
// credentials, or "" when there is none (for the OCI source label).
func RemoteURL(ctx context.Context, dir string) string {
	out, _, err := git(ctx, dir, "remote", "get-url", "origin")
	if err != nil || out == "" {
		return ""
	}
	if u, err := url.Parse(out); err == nil && u.User != nil {
		u.User = nil
		return u.String()
	}
	return out
}
