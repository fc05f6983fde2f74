package config

import (
	"strings"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

func TestValidTag(t *testing.T) {
	long128 := "a" + strings.Repeat("b", 127)
	tests := []struct {
		name string
		tag  string
		want []string // nil: valid; else the error holds each
	}{
		{"40-hex commit SHA", "0123456789abcdef0123456789abcdef01234567", nil},
		{"short SHA", "a1b2c3d", nil},
		{"semver", "v1.2.3", nil},
		{"leading underscore", "_x", nil},
		{"one character", "7", nil},
		{"dots dashes underscores", "release-2026.12_rc.1", nil},
		{"upper case", "Prod-V2", nil},
		{"128 characters", long128, nil},

		{"empty", "", []string{`--tag "":`, "the tag is empty"}},
		{"129 characters", long128 + "c", []string{"129 bytes long, more than 128", `--tag "abbb`, "… (129 bytes in all)"}},
		{"path traversal", "../x", []string{`--tag "../x":`, `starts with '.'`}},
		{"registry path", "../../other/manifests/x", []string{`--tag "../../other/manifests/x":`, `starts with '.'`}},
		{"slash", "a/b", []string{`--tag "a/b":`, `character 2 is '/'`}},
		{"leading dash", "-x", []string{`starts with '-'`}},
		{"leading dot", ".x", []string{`starts with '.'`}},
		{"colon", "a:b", []string{`character 2 is ':'`}},
		{"at sign (digest)", "a@b", []string{`character 2 is '@'`}},
		{"space", "a b", []string{`character 2 is ' '`}},
		{"unicode", "vé1", []string{`--tag "vé1":`, `character 2 is 'é'`}},
		{"fullwidth digit", "１", []string{`character 1 is '１'`}},
		{"newline", "abc\n", []string{`--tag "abc\n":`, `character 4 is '\n'`}},
		{"trailing newline after a SHA", "0123456789abcdef0123456789abcdef01234567\n", []string{`character 41 is '\n'`}},
		{"NUL", "a\x00b", []string{`--tag "a\x00b":`, `character 2 is '\x00'`}},
		{"invalid UTF-8", "a\xffb", []string{`--tag "a\xffb":`, "byte 2 is not valid UTF-8"}},
		{"plus (semver build metadata)", "v1.0.0+build", []string{`character 7 is '+'`}},
		{"shell variable not expanded", "$GITHUB_SHA", []string{`character 1 is '$'`}},
		{"long invalid value is cut", strings.Repeat("/", 200), []string{`--tag "` + strings.Repeat("/", 64) + `"… (200 bytes in all)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidTag(tc.tag)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("ValidTag(%q) = %v, want nil", tc.tag, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidTag(%q) = nil, want an error", tc.tag)
			}
			if code := exitcode.Of(err); code != exitcode.Invalid {
				t.Errorf("exit code %d, want %d", code, exitcode.Invalid)
			}
			msg := err.Error()
			for _, w := range append(tc.want, tagRule, "pass the commit SHA, e.g. --tag $GITHUB_SHA") {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.ContainsAny(msg, "\n\x00") {
				t.Errorf("error holds a raw newline or NUL: %q", msg)
			}
			if len(msg) > 600 {
				t.Errorf("error is %d bytes long (the value must be cut): %q", len(msg), msg)
			}
		})
	}
}

// ValidTag agrees with the grammar written out byte by byte, on every
// string of up to two bytes from a set of interesting ones.
func TestValidTagGrammar(t *testing.T) {
	alphabet := []string{"a", "Z", "0", "9", "_", ".", "-", "/", ":", "@", " ", "\n", "\x00", "é", "+", "~"}
	allowed := func(c byte, first bool) bool {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_':
			return true
		case c == '.' || c == '-':
			return !first
		}
		return false
	}
	want := func(s string) bool {
		if s == "" || len(s) > MaxTagLen {
			return false
		}
		for i := 0; i < len(s); i++ {
			if !allowed(s[i], i == 0) {
				return false
			}
		}
		return true
	}
	var inputs []string
	for _, a := range alphabet {
		inputs = append(inputs, a)
		for _, b := range alphabet {
			inputs = append(inputs, a+b)
		}
	}
	for _, s := range inputs {
		if got := ValidTag(s) == nil; got != want(s) {
			t.Errorf("ValidTag(%q) valid = %v, want %v", s, got, want(s))
		}
	}
}

// FuzzValidTag: whatever ValidTag accepts is a tag of the OCI grammar, and
// so a safe path element (no '/', no "..", no control byte).
func FuzzValidTag(f *testing.F) {
	for _, s := range []string{"v1.2.3", "../x", "a/b", "0123456789abcdef0123456789abcdef01234567", "", "-x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidTag(s) != nil {
			return
		}
		if !tagRE.MatchString(s) || strings.ContainsAny(s, "/\\:@ \t\n") || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "-") || len(s) > 128 {
			t.Fatalf("ValidTag accepted %q", s)
		}
	})
}
