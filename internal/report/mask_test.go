package report

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"html"
	"net/url"
	"strings"
	"testing"
)

// Each test registers secrets of its own: the set is global to the process.

func TestMaskEscapedForms(t *testing.T) {
	secret := "pa\"ss\\wo<rd>&%|x`y ü\n2nd line\u0001"
	AddSecret(secret)
	jsonHTML, _ := json.Marshal(secret)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(secret)
	jsonPlain := strings.TrimSuffix(b.String(), "\n")
	jsonTwice, _ := json.Marshal(string(jsonHTML))
	for name, shown := range map[string]string{
		"raw":             secret,
		"JSON":            string(jsonPlain[1 : len(jsonPlain)-1]),
		"JSON+HTML":       string(jsonHTML[1 : len(jsonHTML)-1]),
		"JSON twice":      string(jsonTwice[1 : len(jsonTwice)-1]),
		"QueryEscape":     url.QueryEscape(secret),
		"PathEscape":      url.PathEscape(secret),
		"html":            html.EscapeString(secret),
		"markdown cell":   strings.NewReplacer("\n", " ", "|", `\|`).Replace(secret),
		"markdown code":   strings.NewReplacer("\n", " ", "|", `\|`, "`", "'").Replace(secret),
		"workflow cmd":    strings.NewReplacer("%", "%25", "\n", "%0A").Replace(secret),
		"base64 std":      base64.StdEncoding.EncodeToString([]byte(secret)),
		"base64 url":      base64.URLEncoding.EncodeToString([]byte(secret)),
		"base64 raw std":  base64.RawStdEncoding.EncodeToString([]byte(secret)),
		"base64 raw url":  base64.RawURLEncoding.EncodeToString([]byte(secret)),
		"html of JSON":    html.EscapeString(string(jsonPlain[1 : len(jsonPlain)-1])),
		"JSON doc (diff)": string(mustJSON(t, map[string]string{"diff": "- old\n+ " + secret})),
	} {
		got := Mask("before " + shown + " after")
		if strings.Contains(got, shown) || !strings.Contains(got, "***") {
			t.Errorf("%s: form %q not masked: %q", name, shown, got)
		}
		if !strings.HasPrefix(got, "before ") && name != "JSON doc (diff)" {
			t.Errorf("%s: text around the secret changed: %q", name, got)
		}
		for _, part := range []string{"wo<rd", `wo\u003crd`, "2nd line"} {
			if strings.Contains(got, part) {
				t.Errorf("%s: %q still shows %q", name, got, part)
			}
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMaskShortSecretsAsTokens(t *testing.T) {
	AddSecret("Zq")
	AddSecret("7")
	for in, want := range map[string]string{
		"Zq":               "***",
		"port Zq,":         "port ***,",
		`{"v":"Zq"}`:       `{"v":"***"}`,
		"aZqb Zq_ _Zq 9Zq": "aZqb Zq_ _Zq 9Zq",
		"x=7 17 7.5 v7":    "x=*** 17 ***.5 v7",
		"":                 "",
	} {
		if got := Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
	AddSecret("") // ignored: never masks everything
	if got := Mask("abc"); got != "abc" {
		t.Errorf("empty secret masked something: %q", got)
	}
}

func TestMaskOverlappingSecrets(t *testing.T) {
	AddSecret("abcdef12")
	AddSecret("ef12ghij")
	if got := Mask("<abcdef12ghij>"); got != "<***>" {
		t.Errorf("overlap: %q", got)
	}
}

func TestMaskWriterSplitWrites(t *testing.T) {
	secret := "Spl1t-s3cret-vAlue"
	AddSecret(secret)
	esc := `q"u\ote-s3cret`
	AddSecret(esc)
	escJSON := `q\"u\\ote-s3cret`
	for _, s := range []string{secret, escJSON} {
		for i := 1; i < len(s); i++ {
			var b bytes.Buffer
			w := MaskWriter(&b)
			if _, err := w.Write([]byte("token " + s[:i])); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(b.String(), s[:i]) && i > 0 {
				// What was written must not yet show the secret's start.
				t.Fatalf("split %d: %q written before the rest came", i, b.String())
			}
			if _, err := w.Write([]byte(s[i:] + " end\n")); err != nil {
				t.Fatal(err)
			}
			if b.String() != "token *** end\n" {
				t.Errorf("split %q at %d: wrote %q", s, i, b.String())
			}
		}
	}
	// One byte at a time.
	var b bytes.Buffer
	w := MaskWriter(&b)
	for _, c := range []byte("a " + secret + " b " + escJSON + "\n") {
		if _, err := w.Write([]byte{c}); err != nil {
			t.Fatal(err)
		}
	}
	if b.String() != "a *** b ***\n" {
		t.Errorf("byte at a time: %q", b.String())
	}
}

func TestMaskWriterShortTokenSplit(t *testing.T) {
	AddSecret("Kw")
	var b bytes.Buffer
	w := MaskWriter(&b)
	w.Write([]byte("x K"))
	w.Write([]byte("w\n"))
	w.Write([]byte("y Kw"))
	w.Write([]byte("r\n"))
	if b.String() != "x ***\ny Kwr\n" {
		t.Errorf("wrote %q", b.String())
	}
}

func TestMaskWriterWritesAtOnce(t *testing.T) {
	AddSecret("Immed1ate-secret")
	var b bytes.Buffer
	w := MaskWriter(&b)
	w.Write([]byte("a line\n"))
	if b.String() != "a line\n" {
		t.Fatalf("a line was kept back: %q", b.String())
	}
	w.Write([]byte("progress 50% "))
	if b.String() != "a line\nprogress 50% " {
		t.Fatalf("text that cannot start a secret was kept back: %q", b.String())
	}
	w.Write([]byte("Immed1"))
	if strings.Contains(b.String(), "Immed") {
		t.Fatalf("a secret's start was written: %q", b.String())
	}
	if err := Flush(w); err != nil {
		t.Fatal(err)
	}
	if b.String() != "a line\nprogress 50% Immed1" {
		t.Errorf("Flush wrote %q", b.String())
	}
}

func TestUnmaskedKeepsOrder(t *testing.T) {
	AddSecret("Order-secret-value")
	var b bytes.Buffer
	w := MaskWriter(&b)
	w.Write([]byte("before Order-"))
	Unmasked(w).Write([]byte("::add-mask::raw\n"))
	if b.String() != "before Order-::add-mask::raw\n" {
		t.Errorf("wrote %q", b.String())
	}
}
