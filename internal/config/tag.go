package config

import (
	"fmt"
	"regexp"
	"unicode/utf8"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// MaxTagLen is the longest tag the OCI distribution spec allows.
const MaxTagLen = 128

// tagRE is the tag grammar of the OCI Distribution Specification ("Pulling
// manifests": a tag MUST be at most 128 characters and match
// [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}), which `docker tag` enforces too.
var tagRE = regexp.MustCompile(`\A[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}\z`)

// tagRule is the grammar in words, for error messages.
const tagRule = "a tag is 1 to 128 characters from a-z A-Z 0-9 _ . - and does not start with . or - (OCI distribution spec)"

// ValidTag checks the value of --tag (the image tag deployed, normally the
// commit SHA) against the OCI tag grammar before anything is built or
// pushed: the tag goes into registry paths (/v2/REPO/manifests/TAG), so a
// tag such as ../../other/manifests/x must never get that far. The error
// (exit code 2) quotes the value (at most 64 characters of it), says what
// is wrong with it and what to pass instead.
func ValidTag(tag string) error {
	if tagRE.MatchString(tag) {
		return nil
	}
	return exitcode.Invalidf("--tag %s: %s; %s; pass the commit SHA, e.g. --tag $GITHUB_SHA (or leave --tag out: it defaults to the SHA of HEAD)",
		quoteTag(tag), tagProblem(tag), tagRule)
}

// tagProblem says what is wrong with a tag that does not match tagRE.
func tagProblem(tag string) string {
	switch {
	case tag == "":
		return "the tag is empty"
	case len(tag) > MaxTagLen:
		return fmt.Sprintf("the tag is %d bytes long, more than %d", len(tag), MaxTagLen)
	case tag[0] == '.' || tag[0] == '-':
		return fmt.Sprintf("the tag starts with %q", tag[0])
	}
	for i, r := range tag {
		if r < utf8.RuneSelf && (r == '_' || r == '.' || r == '-' ||
			'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			continue
		}
		if r == utf8.RuneError {
			return fmt.Sprintf("byte %d is not valid UTF-8", i+1)
		}
		return fmt.Sprintf("character %d is %q, which a tag may not hold", utf8.RuneCountInString(tag[:i])+1, r)
	}
	return "the tag does not match the tag grammar"
}

// quoteTag quotes tag with %q, cut after its first 64 characters (runes;
// the bytes are kept as they are, invalid UTF-8 included).
func quoteTag(tag string) string {
	const max = 64
	n := 0
	for i := range tag {
		if n == max {
			return fmt.Sprintf("%q… (%d bytes in all)", tag[:i], len(tag))
		}
		n++
	}
	return fmt.Sprintf("%q", tag)
}
