package report

import (
	"io"
	"sort"
	"strings"
	"sync"
)

// Secrets is the set of values that must never be printed: the ECR token,
// sensitive Terraform outputs. Every renderer writes through Mask.
var secrets = struct {
	sync.RWMutex
	vals []string
}{}

// minSecretLen keeps short, common strings ("1", "true") from being masked
// everywhere they appear; values that short are not secret in any useful
// sense.
const minSecretLen = 4

// AddSecret registers a value that must never be printed. Renderers replace it
// with "***".
func AddSecret(v string) {
	if len(v) < minSecretLen {
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
}

// SecretValues returns the registered secrets (for ::add-mask:: lines).
func SecretValues() []string {
	secrets.RLock()
	defer secrets.RUnlock()
	return append([]string(nil), secrets.vals...)
}

// Mask replaces every registered secret in s with "***".
func Mask(s string) string {
	secrets.RLock()
	defer secrets.RUnlock()
	for _, v := range secrets.vals {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, "***")
		}
	}
	return s
}

// MaskWriter returns a writer that masks secrets in each Write. Callers write
// whole lines or documents, so a secret is never split across two writes.
func MaskWriter(w io.Writer) io.Writer { return &maskWriter{w: w} }

type maskWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (m *maskWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := io.WriteString(m.w, Mask(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Unmasked returns the writer under a MaskWriter, or w itself. It exists for
// one caller only: the GitHub Actions renderer's "::add-mask::VALUE" lines,
// which must hand the raw value to the runner so that GitHub masks it in the
// job log. Everything else must be written through the mask.
func Unmasked(w io.Writer) io.Writer {
	if m, ok := w.(*maskWriter); ok {
		return m.w
	}
	return w
}
