package report

import (
	"bytes"
	"strings"
	"testing"
)

// withSecrets runs f with only vals registered, and restores the set.
func withSecrets(vals []string, f func()) {
	secrets.Lock()
	saved := secrets.vals
	savedForms, savedSeen, savedMax := secrets.forms, secrets.seen, secrets.maxLen
	secrets.vals, secrets.forms, secrets.seen, secrets.maxLen = nil, nil, map[string]bool{}, 0
	secrets.Unlock()
	defer func() {
		secrets.Lock()
		secrets.vals, secrets.forms, secrets.seen, secrets.maxLen = saved, savedForms, savedSeen, savedMax
		secrets.Unlock()
	}()
	for _, v := range vals {
		AddSecret(v)
	}
	f()
}

// FuzzMaskWriter: whatever the text and however it is split into writes,
// a MaskWriter (flushed) writes what Mask gives for the whole text, and
// that never holds a secret of 4 bytes or more in any of its forms.
//
//	go test -run '^$' -fuzz '^FuzzMaskWriter$' -fuzztime 30s ./internal/report/
func FuzzMaskWriter(f *testing.F) {
	f.Add("hunter22", "ab", "token hunter22\n and \"hunter22\" aHVudGVyMjI=", uint8(3), uint8(7))
	f.Add(`q"u\o<te`, "7", `{"v":"q\"u\\o\u003cte"} 7 17 x7`, uint8(1), uint8(2))
	f.Add("abcabc", "bca", "abcabcabcabca", uint8(4), uint8(1))
	f.Fuzz(func(t *testing.T, s1, s2, text string, a, b uint8) {
		withSecrets([]string{s1, s2}, func() {
			want := Mask(text)
			var out bytes.Buffer
			w := MaskWriter(&out)
			// Split text at a and b (mod its length) and every 13 bytes.
			cuts := map[int]bool{}
			if len(text) > 0 {
				cuts[int(a)%len(text)] = true
				cuts[int(b)%len(text)] = true
			}
			for i := 13; i < len(text); i += 13 {
				cuts[i] = true
			}
			last := 0
			for i := 0; i <= len(text); i++ {
				if i == len(text) || cuts[i] {
					if _, err := w.Write([]byte(text[last:i])); err != nil {
						t.Fatal(err)
					}
					last = i
				}
			}
			if err := Flush(w); err != nil {
				t.Fatal(err)
			}
			if out.String() != want {
				t.Fatalf("MaskWriter wrote %q, Mask gives %q", out.String(), want)
			}
			for _, s := range []string{s1, s2} {
				if len(s) < shortLen {
					continue
				}
				for _, form := range forms(s) {
					if len(form) >= shortLen && strings.Contains(want, form) && !strings.Contains(want, "***") {
						t.Fatalf("form %q of %q shown: %q", form, s, want)
					}
				}
				if strings.Contains(want, s) {
					t.Fatalf("secret %q shown: %q", s, want)
				}
			}
		})
	})
}
