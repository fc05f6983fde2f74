package report

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// The mask works on the final bytes of every output: what a renderer writes
// has already been escaped for its format (JSON, a URL, the GitHub summary's
// Markdown and HTML, a workflow command), so a secret is looked for in each
// of the forms it can take there, not only as itself. See forms.
//
// # Short secrets
//
// A secret of 1 to 3 bytes (say a sensitive number "42") is masked too, but
// only as a whole token: where the bytes on either side of it (if any) are
// not ASCII letters, digits or '_'. So a secret "42" is masked in "port 42",
// "x=42," and "42", never inside "1424" or "v42a". The same holds for each
// form of a secret that is shorter than 4 bytes. Longer forms are masked
// wherever they occur.
//
// # Overlaps
//
// Every occurrence of every form is found, and each maximal run of bytes
// covered by one or more occurrences becomes a single "***": a secret that
// overlaps another is never half shown.

// shortLen is the length under which a form is masked only as a whole token.
const shortLen = 4

type form struct {
	s     string
	b     []byte // s
	token bool   // masked only as a whole token (len(s) < shortLen)
}

// secrets is the set of values that must never be printed: the ECR token,
// sensitive Terraform outputs and what a template derives from them. Every
// renderer writes through Mask.
var secrets = struct {
	sync.RWMutex
	vals   []string        // as registered, longest first
	forms  []form          // every form of every value, deduplicated
	seen   map[string]bool // forms already in forms
	maxLen int             // the longest form
}{seen: map[string]bool{}}

// AddSecret registers a value that must never be printed, in every form
// (forms) it may take in an output. Renderers replace it with "***". The
// empty string is ignored; values shorter than 4 bytes are masked only as
// whole tokens (see the package comment on short secrets).
func AddSecret(v string) {
	if v == "" {
		return
	}
	secrets.Lock()
	defer secrets.Unlock()
	for _, s := range secrets.vals {
		if s == v {
			return
		}
	}
	secrets.vals = append(secrets.vals, v)
	// Longest first, so a secret that contains another is masked whole.
	sort.Slice(secrets.vals, func(i, j int) bool { return len(secrets.vals[i]) > len(secrets.vals[j]) })
	for _, f := range forms(v) {
		if f == "" || secrets.seen[f] {
			continue
		}
		secrets.seen[f] = true
		secrets.forms = append(secrets.forms, form{s: f, b: []byte(f), token: len(f) < shortLen})
		if len(f) > secrets.maxLen {
			secrets.maxLen = len(f)
		}
	}
}

// forms returns the ways v can appear in ctjdeploy's outputs:
//   - v itself, and v with surrounding white space trimmed (a Markdown
//     table cell is trimmed);
//   - JSON string escaping ("\"", "\\", "\n", "\u0001"), with and without
//     HTML escaping ("\u003c": encoding/json's default), and JSON escaping
//     applied twice (a JSON document inside a JSON string, such as a diff
//     in the --json report);
//   - URL escaping: url.QueryEscape and url.PathEscape;
//   - HTML escaping (html.EscapeString: the GitHub summary's HTML parts);
//   - the GitHub summary's Markdown table cell and code escaping (newlines
//     to spaces, "|" to "\|", "`" to "'": render_github.go mdCell, mdCode);
//   - workflow command escaping ("%" "\r" "\n" to "%25" "%0D" "%0A", and
//     ":" "," to "%3A" "%2C" in properties: render_github.go);
//   - base64 of v, standard and URL alphabets, padded and raw. Only v's
//     own encoding: v encoded as part of a longer value (user:v in a Basic
//     auth header) is found only when it is 3-byte aligned in it.
func forms(v string) []string {
	jsonNoHTML := func(s string) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
		return string(out[1 : len(out)-1])
	}
	jsonHTML := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b[1 : len(b)-1])
	}
	md := strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "|", `\|`)
	ghData := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	ghProp := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
	cell := md.Replace(v)
	out := []string{
		v,
		strings.TrimSpace(v),
		jsonNoHTML(v),
		jsonHTML(v),
		jsonNoHTML(jsonNoHTML(v)),
		jsonHTML(jsonHTML(v)),
		url.QueryEscape(v),
		url.PathEscape(v),
		html.EscapeString(v),
		cell,
		strings.TrimSpace(cell),
		strings.ReplaceAll(strings.TrimSpace(cell), "`", "'"),
		ghData.Replace(v),
		ghProp.Replace(v),
		base64.StdEncoding.EncodeToString([]byte(v)),
		base64.URLEncoding.EncodeToString([]byte(v)),
		base64.RawStdEncoding.EncodeToString([]byte(v)),
		base64.RawURLEncoding.EncodeToString([]byte(v)),
	}
	// The escaped forms of a JSON-escaped value (a secret in a JSON
	// document that is itself shown HTML- or URL-escaped).
	j := jsonNoHTML(v)
	out = append(out, html.EscapeString(j), ghData.Replace(j), md.Replace(j))
	return out
}

// SecretValues returns the registered secrets as registered (for
// ::add-mask:: lines), not their escaped forms.
func SecretValues() []string {
	secrets.RLock()
	defer secrets.RUnlock()
	return append([]string(nil), secrets.vals...)
}

// Mask replaces every registered secret, in each of its forms, in s with
// "***".
func Mask(s string) string {
	secrets.RLock()
	defer secrets.RUnlock()
	if len(secrets.forms) == 0 {
		return s
	}
	out, _, _ := maskLocked([]byte(s), maskState{prev: -1}, true)
	return string(out)
}

func isWord(b byte) bool {
	return b == '_' || ('0' <= b && b <= '9') || ('a' <= b && b <= 'z') || ('A' <= b && b <= 'Z')
}

// maskState is what a stream carries from one piece to the next.
type maskState struct {
	prev   int  // the byte written just before (-1: none, the start)
	forced int  // the first forced bytes are inside a secret found earlier
	inRun  bool // the output so far ends with the "***" of that secret
}

// maskLocked masks p. eof says nothing follows p. It returns the masked
// bytes of p[:n] and the state for p[n:], which the caller keeps (when
// !eof): it may be the start of a secret that the next write completes.
// Masking a text in pieces this way gives what masking it whole gives.
func maskLocked(p []byte, st maskState, eof bool) (out []byte, n int, next maskState) {
	covered := make([]bool, len(p))
	found := false
	for i := 0; i < st.forced && i < len(p); i++ {
		covered[i] = true
		found = true
	}
	for _, f := range secrets.forms {
		fs := f.b
		for off := 0; off <= len(p)-len(fs); {
			i := bytes.Index(p[off:], fs)
			if i < 0 {
				break
			}
			i += off
			end := i + len(fs)
			ok := true
			if f.token {
				if i > 0 {
					ok = !isWord(p[i-1])
				} else if st.prev >= 0 {
					ok = !isWord(byte(st.prev))
				}
				if end < len(p) {
					ok = ok && !isWord(p[end])
				} else if !eof {
					ok = false // the next byte decides; held back below
				}
			}
			if ok {
				for k := i; k < end; k++ {
					covered[k] = true
				}
				found = true
			}
			off = i + 1
		}
	}
	n = len(p)
	if !eof {
		n -= holdLocked(p)
	}
	// A secret found whole here may run on past n: the bytes of it that
	// are kept are masked when they are written (forced).
	next.forced = 0
	if n == 0 {
		next.forced = st.forced // nothing written: all is scanned again
	}
	for k := n; n > 0 && k < len(p) && covered[k] && covered[n-1]; k++ {
		next.forced++
	}
	next.prev = st.prev
	if n > 0 {
		next.prev = int(p[n-1])
	}
	next.inRun = st.inRun && n == 0
	if !found {
		return p[:n], n, next
	}
	out = make([]byte, 0, n)
	for i := 0; i < n; {
		if !covered[i] {
			out = append(out, p[i])
			i++
			continue
		}
		if !(i == 0 && st.inRun) {
			out = append(out, "***"...)
		}
		for i < n && covered[i] {
			i++
		}
	}
	if n > 0 && covered[n-1] {
		next.inRun = true
	}
	return out, n, next
}

// holdLocked returns the length of the longest suffix of p that may be the
// start of a form: a proper prefix of it, or a whole short form (whether it
// is a token depends on the next byte).
func holdLocked(p []byte) int {
	hold := 0
	for _, f := range secrets.forms {
		fs := f.b
		maxK := len(fs) - 1
		if f.token {
			maxK = len(fs)
		}
		if maxK > len(p) {
			maxK = len(p)
		}
		for k := maxK; k > hold; k-- {
			if p[len(p)-k] == fs[0] && bytes.HasPrefix(fs, p[len(p)-k:]) {
				hold = k
				break
			}
		}
	}
	return hold
}

// MaskWriter returns a writer that masks secrets in what is written through
// it, in every form (see AddSecret). A secret split across two or more
// Write calls is masked too: when what has been written so far ends with
// the start of a secret (in any form), those bytes are kept back until the
// next Write shows whether the secret follows. Output that ends with a
// newline is normally written at once (only a secret holding a newline can
// span one). Call Flush (or Close) at the end to write what is kept back.
func MaskWriter(w io.Writer) io.Writer { return &maskWriter{w: w, st: maskState{prev: -1}} }

type maskWriter struct {
	mu      sync.Mutex
	w       io.Writer
	pending []byte
	st      maskState
}

func (m *maskWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.write(p, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (m *maskWriter) write(p []byte, eof bool) error {
	buf := append(m.pending, p...)
	secrets.RLock()
	out, n, st := maskLocked(buf, m.st, eof)
	secrets.RUnlock()
	m.st = st
	m.pending = append([]byte(nil), buf[n:]...)
	if len(out) == 0 {
		return nil
	}
	_, err := m.w.Write(out)
	return err
}

// Flush writes (masked) what the writer keeps back.
func (m *maskWriter) Flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.write(nil, true)
}

// Close flushes; it does not close the writer under it.
func (m *maskWriter) Close() error { return m.Flush() }

// Flush flushes w if it is a MaskWriter (or anything with Flush() error).
func Flush(w io.Writer) error {
	if f, ok := w.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
}

// Unmasked returns the writer under a MaskWriter, or w itself. It exists for
// one caller only: the GitHub Actions renderer's "::add-mask::VALUE" lines,
// which must hand the raw value to the runner so that GitHub masks it in the
// job log. Everything else must be written through the mask. Each write to
// it first flushes what the MaskWriter keeps back, so the order of the
// output is kept.
func Unmasked(w io.Writer) io.Writer {
	if m, ok := w.(*maskWriter); ok {
		return rawWriter{m}
	}
	return w
}

type rawWriter struct{ m *maskWriter }

func (r rawWriter) Write(p []byte) (int, error) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	if err := r.m.write(nil, true); err != nil {
		return 0, err
	}
	if len(p) > 0 {
		r.m.st = maskState{prev: int(p[len(p)-1])}
	}
	return r.m.w.Write(p)
}
