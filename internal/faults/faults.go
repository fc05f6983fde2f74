// Package faults injects failures on loopback for tests: a reverse proxy in
// front of a registry (or any HTTP endpoint) whose rules answer chosen
// requests with an error status, reset their connection, never answer
// them, or forward them and then never answer; and a black hole (a listener that accepts and never answers).
package faults

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Rule matches requests and says what happens to them.
type Rule struct {
	Method string // "" matches any
	// Path: the request path must contain it ("" matches any).
	Path string
	// Target: the X-Amz-Target header (AWS JSON protocols, e.g.
	// "AmazonEC2ContainerServiceV20141113.UpdateService") must contain it.
	Target string
	// UserAgent: the User-Agent header must contain it (e.g. "ctjdeploy":
	// the tool's own registry requests, not the docker engine's).
	UserAgent string
	// OnMatch runs when the rule takes a request (e.g. start an outage).
	OnMatch func()
	// Times is how many matching requests the rule takes (0: all).
	Times int
	// Status answers the request with this status (and a registry error
	// body) instead of forwarding it.
	Status int
	// Header is added to the answer (e.g. Retry-After).
	Header http.Header
	// Reset closes the connection without an answer.
	Reset bool
	// Hang holds the request until the client gives up (or the proxy closes).
	Hang bool
	// ForwardThenHang forwards the request upstream (so it is applied),
	// discards the answer and then holds the request like Hang: a call
	// that succeeded but whose answer never came back.
	ForwardThenHang bool

	hits int
}

// Proxy forwards to an upstream unless a rule takes the request.
type Proxy struct {
	Addr string // host:port of the proxy
	srv  *http.Server
	ln   net.Listener
	up   *httputil.ReverseProxy

	mu      sync.Mutex
	rules   []*Rule
	counts  map[string]int // injected, by a rule's description
	seen    []string       // METHOD PATH of every request
	closing chan struct{}
}

// NewProxy starts a proxy to upstream (host:port, plain HTTP) on loopback;
// it is closed at the end of the test.
func NewProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &url.URL{Scheme: "http", Host: upstream}
	p := &Proxy{Addr: ln.Addr().String(), ln: ln, up: httputil.NewSingleHostReverseProxy(u), counts: map[string]int{}, closing: make(chan struct{})}
	p.srv = &http.Server{Handler: p}
	go func() { _ = p.srv.Serve(ln) }()
	t.Cleanup(p.Close)
	return p
}

// Close stops the proxy and releases held requests.
func (p *Proxy) Close() {
	p.mu.Lock()
	select {
	case <-p.closing:
	default:
		close(p.closing)
	}
	p.mu.Unlock()
	_ = p.srv.Close()
}

// Add adds rules (first match wins).
func (p *Proxy) Add(rs ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range rs {
		r := rs[i]
		p.rules = append(p.rules, &r)
	}
}

// Clear removes every rule.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// Injected is how many requests rules took.
func (p *Proxy) Injected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.counts {
		n += c
	}
	return n
}

// Seen returns "METHOD PATH" of every request so far.
func (p *Proxy) Seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

func (p *Proxy) match(r *http.Request) *Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+r.Header.Get("X-Amz-Target")))
	for _, ru := range p.rules {
		if ru.Method != "" && ru.Method != r.Method || ru.Path != "" && !strings.Contains(r.URL.Path, ru.Path) ||
			ru.Target != "" && !strings.Contains(r.Header.Get("X-Amz-Target"), ru.Target) ||
			ru.UserAgent != "" && !strings.Contains(r.UserAgent(), ru.UserAgent) {
			continue
		}
		if ru.Times > 0 && ru.hits >= ru.Times {
			continue
		}
		ru.hits++
		p.counts[ru.Method+" "+ru.Path+" "+ru.Target]++
		c := *ru
		if c.OnMatch != nil {
			go c.OnMatch()
		}
		return &c
	}
	return nil
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ru := p.match(r)
	switch {
	case ru == nil:
		p.up.ServeHTTP(w, r)
	case ru.ForwardThenHang:
		p.up.ServeHTTP(&discard{h: http.Header{}}, r)
		select {
		case <-r.Context().Done():
		case <-p.closing:
		}
	case ru.Hang:
		select {
		case <-r.Context().Done():
		case <-p.closing:
		}
	case ru.Reset:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // RST, not FIN
				}
				_ = c.Close()
				return
			}
		}
		http.Error(w, "reset", http.StatusBadGateway)
	default:
		for k, vs := range ru.Header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		if ru.Target != "" {
			// An AWS JSON-protocol error ("x-amzn-ErrorType"/"__type").
			typ := "ServiceUnavailableException"
			if ru.Status == http.StatusInternalServerError {
				typ = "ServerException"
			}
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(ru.Status)
			_, _ = w.Write([]byte(`{"__type":"` + typ + `","message":"injected fault"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ru.Status)
		code := "UNKNOWN"
		switch ru.Status {
		case http.StatusUnauthorized:
			code = "UNAUTHORIZED"
		case http.StatusForbidden:
			code = "DENIED"
		}
		_, _ = w.Write([]byte(`{"errors":[{"code":"` + code + `","message":"injected fault ` + http.StatusText(ru.Status) + `"}]}`))
	}
}

// discard is a ResponseWriter that drops the answer.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// BlackHole listens on loopback, accepts every connection and never
// answers. It returns host:port; it is closed at the end of the test.
func BlackHole(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// RefusedAddr returns a loopback host:port nothing listens on (connections
// are refused).
func RefusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Outage makes the proxy refuse connections for d starting now: it stops
// listening and listens again on the same address afterwards.
func (p *Proxy) Outage(t testing.TB, d time.Duration) {
	t.Helper()
	_ = p.ln.Close()
	go func() {
		time.Sleep(d)
		ln, err := net.Listen("tcp", p.Addr)
		if err != nil {
			return
		}
		p.mu.Lock()
		p.ln = ln
		p.mu.Unlock()
		go func() { _ = p.srv.Serve(ln) }()
	}()
}
