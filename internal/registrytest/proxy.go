// Package registrytest puts a counting reverse proxy on 127.0.0.1 in front
// of a real registry, so tests can assert what a push sent: how many blob
// bytes were uploaded, which requests were made, and what a registry says to
// a wrong password.
package registrytest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards to a registry and counts.
type Proxy struct {
	Addr string // 127.0.0.1:PORT, usable as a registry host

	srv           *httptest.Server
	uploadedBytes atomic.Int64
	mu            sync.Mutex
	requests      []string // "METHOD kind" per request
	auth          []string // Authorization headers seen (to prove what was sent)
	wrongPassword atomic.Bool
}

// Start starts a proxy in front of the registry at upstream (host:port,
// plain HTTP) and stops it when the test ends.
func Start(t testing.TB, upstream string) *Proxy {
	t.Helper()
	u := &url.URL{Scheme: "http", Host: upstream}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &Proxy{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests = append(p.requests, r.Method+" "+kind(r.URL.Path))
		if a := r.Header.Get("Authorization"); a != "" {
			p.auth = append(p.auth, a)
		}
		p.mu.Unlock()
		if p.wrongPassword.Load() && r.Header.Get("Authorization") != "" {
			r.SetBasicAuth("AWS", "not-the-password")
		}
		if (r.Method == http.MethodPatch || r.Method == http.MethodPut) && strings.Contains(r.URL.Path, "/blobs/uploads/") && r.Body != nil {
			r.Body = &countingBody{ReadCloser: r.Body, n: &p.uploadedBytes}
		}
		rp.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
	p.srv.Start()
	p.Addr = ln.Addr().String()
	t.Cleanup(p.srv.Close)
	return p
}

// kind classifies a registry API path: blob, upload, manifest, tags, base.
func kind(path string) string {
	switch {
	case strings.Contains(path, "/blobs/uploads"):
		return "upload"
	case strings.Contains(path, "/blobs/"):
		return "blob"
	case strings.Contains(path, "/manifests/"):
		return "manifest"
	case strings.Contains(path, "/tags/list"):
		return "tags"
	}
	return "base"
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// UploadedBytes is the number of request-body bytes sent to blob uploads.
func (p *Proxy) UploadedBytes() int64 { return p.uploadedBytes.Load() }

// Requests returns "METHOD kind" for every request so far.
func (p *Proxy) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

// Count returns how many requests matched "METHOD kind".
func (p *Proxy) Count(methodKind string) int {
	n := 0
	for _, r := range p.Requests() {
		if r == methodKind {
			n++
		}
	}
	return n
}

// AuthHeaders returns the Authorization headers clients sent.
func (p *Proxy) AuthHeaders() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.auth...)
}

// Reset zeroes the counters.
func (p *Proxy) Reset() {
	p.uploadedBytes.Store(0)
	p.mu.Lock()
	p.requests, p.auth = nil, nil
	p.mu.Unlock()
}

// WrongPassword makes the proxy replace the password of every
// authenticated request, so the real registry answers as it would to a
// wrong one.
func (p *Proxy) WrongPassword(on bool) { p.wrongPassword.Store(on) }
