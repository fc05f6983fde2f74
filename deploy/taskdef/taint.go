package taskdef

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"unicode/utf8"

	"github.com/hackforla/ctjdeploy/internal/report"
)

// Following a secret through the template (see Render): the template is
// rendered twice more for each secret it used, each time with that secret
// replaced by another random value of the same type and byte length in which every byte
// differs (and which is valid UTF-8 where the secret is). Whatever differs
// between the two documents depends on the secret. The replacement is
// random, never registered, never printed: nothing rendered with it leaves
// this file except the positions where it differs.
//
// What this cannot see: a value that depends on the secret but comes out
// the same for the secret and both other values: its length, or a
// comparison that is false for the secret and happens to be false for the
// others too (`{{ if eq (tf "x") "guess" }}` with a wrong guess). A
// comparison true for the secret is always seen (every byte differs).
// What passes unseen tells at most a few bits.

// alternatives is how many other values each secret is tried with: a
// comparison on the value (`{{ if lt (index (tf "x") 0) 100 }}`) that
// comes out the same for one of them rarely does for both.
const alternatives = 2

// perturbed is one rendering with one secret replaced.
type perturbed struct {
	src      source
	execErr  error
	parseErr error
	v        any // the parsed document, when both errors are nil
}

// perturb renders tmpl once for each source with it replaced.
func (r *renderer) perturb(tmpl []byte, sources []source) []*perturbed {
	var out []*perturbed
	for _, src := range sources {
		for range alternatives {
			alt, ok := r.alternative(src)
			if !ok {
				break // an empty value: nothing can differ
			}
			p := &perturbed{src: src}
			b, err := r.newRun(map[source]string{src: alt}).execute(tmpl)
			if err != nil {
				p.execErr = err
			} else if p.v, err = parseJSON(b); err != nil {
				p.parseErr = fmt.Errorf("%s:%w (line:column of the rendered template; the template must render RegisterTaskDefinition JSON)", r.name, err)
			}
			out = append(out, p)
		}
	}
	return out
}

// alternative returns another value for src, of the same type.
func (r *renderer) alternative(src source) (string, bool) {
	switch src.kind {
	case "tf":
		v, err := r.in.Outputs.Scalar(src.name)
		if err != nil || v == "" {
			return "", false
		}
		raw := strings.TrimSpace(string(r.in.Outputs[src.name].Value))
		switch {
		case strings.HasPrefix(raw, `"`):
			return otherString(v), true
		case v == "true":
			return "false", true
		case v == "false":
			return "true", true
		default:
			return otherNumber(v), true
		}
	case "env":
		v, _ := r.in.Env(src.name)
		if v == "" {
			return "", false
		}
		return otherString(v), true
	}
	return "", false
}

// otherString returns a string of s's length in which every byte differs
// from s's: for each ASCII character a random printable one (not " \ or ',
// which JSON or js would escape), of any class, so that a test of the class
// (`{{ if ge (index (tf "x") 0) 97 }}`) is likely to change too; and for
// each valid multi-byte rune another rune of the same length.
func otherString(s string) string {
	b := []byte(s)
	pick := func(set string, not byte) byte {
		for {
			if c := set[rand.IntN(len(set))]; c != not {
				return c
			}
		}
	}
	var printable []byte
	for c := byte(0x20); c < 0x7f; c++ {
		// Not the characters JSON or js would escape with a backslash:
		// `{{ js (tf "x") }}` must render with the replacement when it
		// renders with the value.
		if c != '"' && c != '\\' && c != '\'' {
			printable = append(printable, c)
		}
	}
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			b[i] = pick(string(printable), c)
			i++
			continue
		}
		_, size := utf8.DecodeRune(b[i:])
		if size == 1 { // not UTF-8: any other byte of the same kind
			b[i] ^= 1
			i++
			continue
		}
		// A lead byte and continuation bytes that make a valid rune of the
		// same length: U+0080.., U+1000.., U+40000.. and their neighbours.
		lead := map[int][2]byte{2: {0xC2, 0xC3}, 3: {0xE1, 0xE2}, 4: {0xF1, 0xF2}}[size]
		if b[i] == lead[0] {
			b[i] = lead[1]
		} else {
			b[i] = lead[0]
		}
		for k := 1; k < size; k++ {
			if b[i+k] == 0x80 {
				b[i+k] = 0x81
			} else {
				b[i+k] = 0x80
			}
		}
		i += size
	}
	return string(b)
}

// otherNumber returns a decimal number of the same shape as s (a plain
// decimal, as tfvars.Outputs.Scalar gives) with every digit different and
// no leading zero.
func otherNumber(s string) string {
	b := []byte(s)
	first := true
	for i, c := range b {
		if c < '0' || c > '9' {
			if c == '.' || c == 'e' || c == 'E' {
				first = false
			}
			continue
		}
		for {
			d := byte('0' + rand.IntN(10))
			if first {
				d = byte('1' + rand.IntN(9))
			}
			if d != c {
				b[i] = d
				break
			}
		}
		first = false
	}
	return string(b)
}

// checkDerived compares the document v with each perturbed rendering:
// every string that differs is registered as a secret, and a difference
// caused by a secret (a sensitive Terraform output or a masked environment
// variable) anywhere but in the value of a secret reference (located by
// structure, pos.isSecretRef) is refused, naming the secret; so is a
// derived secret reference that does not look like one.
func (r *renderer) checkDerived(tmpl []byte, v any, perts []*perturbed) error {
	var refusal error
	for _, p := range perts {
		if p.execErr != nil || p.parseErr != nil {
			if refusal == nil {
				refusal = fmt.Errorf("%s: the rendered document depends on %s in a way that cannot be checked: with another value of it the template does not render (the error is not shown: it would show a value derived from it); a sensitive value may only be passed by reference: store it in SSM Parameter Store (SecureString) or Secrets Manager, export the parameter's ARN as a Terraform output, and use it in secrets[].valueFrom",
					r.name, p.src.describe())
			}
			continue
		}
		d := &docDiff{}
		// A leaf under a part whose shape changed is not necessarily
		// derived from the secret (`{{ if }}` around constant text): it
		// is registered unless the other document holds it too, or it is
		// text of the template itself.
		inB := leafStrings(p.v, map[string]bool{})
		derived := func(s string, changed bool) bool {
			return changed || (!inB[s] && !strings.Contains(string(tmpl), s))
		}
		d.f = func(path pos, leaf any, isKey, changed bool) {
			if s, ok := leaf.(string); ok && derived(s, changed) {
				report.AddSecret(s)
			} else if n, ok := leaf.(json.Number); ok && derived(n.String(), changed) {
				report.AddSecret(n.String())
			}
			if refusal == nil {
				if isKey {
					refusal = r.refuse(path, true, p.src, "is derived from")
				} else if err := r.placed(path, leaf, p.src, "is derived from"); err != nil {
					refusal = err
				}
			}
		}
		d.diff(nil, v, p.v)
	}
	return refusal
}

// docDiff finds what differs between two documents: each leaf (and key)
// of a whose value differs from b's (changed), or that lies under a part
// whose shape (keys, length, type) differs (!changed: then it is
// registered as a secret only if b does not hold the same string anywhere,
// so that text the template writes whatever the secret is not masked).
type docDiff struct {
	f func(path pos, leaf any, isKey, changed bool)
}

func leafStrings(v any, into map[string]bool) map[string]bool {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			into[k] = true
			leafStrings(e, into)
		}
	case []any:
		for _, e := range v {
			leafStrings(e, into)
		}
	case string:
		into[v] = true
	case json.Number:
		into[v.String()] = true
	}
	return into
}

func (d *docDiff) diff(path pos, a, b any) {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			d.taintAll(path, a)
			return
		}
		for _, k := range sortedKeys(av) {
			if be, ok := bv[k]; ok {
				d.diff(path.key(k), av[k], be)
				continue
			}
			d.f(path, k, true, false)
			d.taintAll(path.key(k), av[k])
		}
		for k := range bv {
			if _, ok := av[k]; !ok {
				// A key only the other value writes: its absence here
				// depends on the secret (its name is not shown: it was
				// rendered with the replacement).
				d.f(path, nil, true, false)
			}
		}
	case []any:
		bv, ok := b.([]any)
		for i, e := range av {
			p := path.at(i)
			if ok && len(av) == len(bv) {
				d.diff(p, e, bv[i])
			} else {
				d.taintAll(p, e)
			}
		}
		if ok && len(av) == 0 && len(bv) > 0 {
			d.f(path, nil, false, false)
		}
	default:
		if !sameLeaf(a, b) {
			d.f(path, a, false, true)
			if as, ok := a.(string); ok {
				if bs, ok := b.(string); ok {
					// The part that changed, on its own too: it may be shown
					// apart from the rest of the string.
					// (Not when it is short: as a token of its own it
					// would be masked wherever it stands.)
					if mid := differingMiddle(as, bs); len(mid) >= 4 && mid != as {
						report.AddSecret(mid)
					}
					// And the run of letters and digits around it: an
					// encoding of the secret (hex, base64) may begin or end
					// with what the other value's encoding shares by chance
					// (the first nibble of "t" and "q"), which the middle
					// alone would leave out.
					if w := wordAround(as, bs); len(w) >= 4 && w != as {
						report.AddSecret(w)
					}
				}
			}
		}
	}
}

func (d *docDiff) taintAll(path pos, a any) {
	switch av := a.(type) {
	case map[string]any:
		if len(av) == 0 {
			d.f(path, nil, false, false)
		}
		for _, k := range sortedKeys(av) {
			d.f(path, k, true, false)
			d.taintAll(path.key(k), av[k])
		}
	case []any:
		if len(av) == 0 {
			d.f(path, nil, false, false)
		}
		for i, e := range av {
			d.taintAll(path.at(i), e)
		}
	default:
		d.f(path, a, false, false)
	}
}

func sameLeaf(a, b any) bool {
	switch av := a.(type) {
	case string:
		bv, ok := b.(string)
		return ok && av == bv
	case json.Number:
		bv, ok := b.(json.Number)
		return ok && av == bv
	case bool:
		bv, ok := b.(bool)
		return ok && av == bv
	case nil:
		return b == nil
	}
	return false
}

// differingMiddle returns a without the prefix and suffix it shares with b.
// wordAround is the part of a that differs from b, widened on both sides
// over letters and digits.
func wordAround(a, b string) string {
	mid := differingMiddle(a, b)
	if mid == "" {
		return ""
	}
	start := 0 // the first difference: the common prefix's end
	for start < len(a) && start < len(b) && a[start] == b[start] {
		start++
	}
	end := start + len(mid)
	alnum := func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	for start > 0 && alnum(a[start-1]) {
		start--
	}
	for end < len(a) && alnum(a[end]) {
		end++
	}
	return a[start:end]
}

func differingMiddle(a, b string) string {
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	return a[p : len(a)-s]
}

// maskDerived returns err with what in its message depends on a secret the
// template used replaced by ***: the message is compared with the one the
// same stage gives (stageErr) in each perturbed rendering. When
// another value makes the stage succeed, the message depends on the secret
// as a whole and is withheld.
func (r *renderer) maskDerived(err error, perts []*perturbed, stageErr func(*perturbed) error) error {
	if len(perts) == 0 {
		return err
	}
	msg := err.Error()
	mask := make([]bool, len(msg))
	changed := false
	for _, p := range perts {
		perr := stageErr(p)
		if perr == nil {
			what := "the sensitive Terraform output"
			if p.src.kind == "env" {
				what = "the secret environment variable"
			}
			return fmt.Errorf("%s: the template fails with this value of %s %q and not with another; the error is not shown, as it would show a value derived from it: check how the template uses %q",
				r.name, what, p.src.name, p.src.name)
		}
		pm := perr.Error()
		if pm == msg {
			continue
		}
		pre := 0
		for pre < len(msg) && pre < len(pm) && msg[pre] == pm[pre] {
			pre++
		}
		suf := 0
		for suf < len(msg)-pre && suf < len(pm)-pre && msg[len(msg)-1-suf] == pm[len(pm)-1-suf] {
			suf++
		}
		for i := pre; i < len(msg)-suf; i++ {
			mask[i] = true
		}
		changed = true
	}
	if !changed {
		return err
	}
	var b strings.Builder
	for i := 0; i < len(msg); {
		if !mask[i] {
			b.WriteByte(msg[i])
			i++
			continue
		}
		start := i
		for i < len(msg) && mask[i] {
			i++
		}
		if i-start >= 4 { // (a short run, as a token, would mask too much)
			report.AddSecret(msg[start:i])
		}
		b.WriteString("***")
	}
	return errors.New(b.String())
}
