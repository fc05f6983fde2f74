package faults

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// UnixProxy forwards connections on a unix socket to another unix socket
// (a Docker engine's), byte for byte, and can play the engine dying: when
// a request whose request line matches a cut rule has been forwarded (and,
// with AfterBytes, once that much of its answer has gone back), every
// connection is closed and new ones are refused for a while, as by an
// engine that was killed and is restarting.
type UnixProxy struct {
	// Socket is the proxy's socket path; Host is DOCKER_HOST for it.
	Socket, Host string
	upstream     string

	mu       sync.Mutex
	ln       *net.UnixListener
	conns    map[net.Conn]bool
	cuts     []*Cut
	seen     []string // request lines seen, in order
	injected int
	closed   bool
	down     bool // refusing connections (an outage is under way)
}

// Cut is a rule of a UnixProxy.
type Cut struct {
	// Request matches an HTTP request line ("POST /v1.47/build?... HTTP/1.1").
	Request *regexp.Regexp
	// AfterBytes: cut once this many bytes of the matched request's
	// connection's answer have been forwarded (0: as soon as the request
	// line has been forwarded).
	AfterBytes int64
	// Delay: wait this long after the trigger before cutting.
	Delay time.Duration
	// Refuse: how long new connections are refused after the cut.
	Refuse time.Duration
	// OnCut runs when the cut happens (with the request line).
	OnCut func(line string)

	fired bool
}

// NewUnixProxy starts a proxy to the unix socket upstream in a short
// temporary directory (unix socket paths are limited to about 100 bytes);
// it is closed at the end of the test.
func NewUnixProxy(t testing.TB, upstream string) *UnixProxy {
	t.Helper()
	dir, err := os.MkdirTemp("", "fx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &UnixProxy{Socket: filepath.Join(dir, "d.sock"), upstream: upstream, conns: map[net.Conn]bool{}}
	p.Host = "unix://" + p.Socket
	if err := p.listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func (p *UnixProxy) listen() error {
	_ = os.Remove(p.Socket)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p.Socket, Net: "unix"})
	if err != nil {
		return err
	}
	// Keep the socket file on close: a client then gets "connection
	// refused", as from an engine whose socket is there but not served.
	ln.SetUnlinkOnClose(false)
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go p.serve(ln)
	return nil
}

func (p *UnixProxy) serve(ln *net.UnixListener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

// Add adds cut rules.
func (p *UnixProxy) Add(cs ...*Cut) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cuts = append(p.cuts, cs...)
}

// Injected is how many cuts happened.
func (p *UnixProxy) Injected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.injected
}

// Seen returns the request lines seen so far.
func (p *UnixProxy) Seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

// Close stops the proxy and closes every connection.
func (p *UnixProxy) Close() {
	p.dropAll(func() { p.closed = true })
	_ = os.Remove(p.Socket)
}

var requestLineRE = regexp.MustCompile(`(?m)^(GET|HEAD|POST|PUT|DELETE|PATCH) (\S+) HTTP/1\.[01]\r?$`)

func (p *UnixProxy) handle(c net.Conn) {
	up, err := net.Dial("unix", p.upstream)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.closed || p.down {
		p.mu.Unlock()
		_ = c.Close()
		_ = up.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()

	var armed struct {
		sync.Mutex
		cut  *Cut
		line string
	}
	// client → engine: watch the request lines.
	go func() {
		buf := make([]byte, 32*1024)
		var tail []byte // the bytes after the last newline, to find lines split across reads
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if _, werr := up.Write(buf[:n]); werr != nil {
					break
				}
				data := append(tail, buf[:n]...)
				for _, m := range requestLineRE.FindAllSubmatch(data, -1) {
					line := strings.TrimSpace(string(m[0]))
					if ct := p.matched(line); ct != nil {
						if ct.AfterBytes == 0 {
							p.fire(ct, line)
						} else {
							armed.Lock()
							armed.cut, armed.line = ct, line
							armed.Unlock()
						}
					}
				}
				if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
					data = data[i+1:]
				}
				if len(data) > 512 {
					data = data[len(data)-512:]
				}
				tail = append([]byte(nil), data...)
			}
			if err != nil {
				break
			}
		}
		if cw, ok := up.(*net.UnixConn); ok {
			_ = cw.CloseWrite()
		}
	}()
	// engine → client: count the armed request's answer.
	var sent int64
	buf := make([]byte, 32*1024)
	for {
		n, err := up.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				break
			}
			armed.Lock()
			if armed.cut != nil {
				sent += int64(n)
				if sent >= armed.cut.AfterBytes {
					p.fire(armed.cut, armed.line)
					armed.cut = nil
				}
			}
			armed.Unlock()
		}
		if err != nil {
			break
		}
	}
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
	_ = c.Close()
	_ = up.Close()
}

// matched records line and returns the first unfired cut matching it.
func (p *UnixProxy) matched(line string) *Cut {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, line)
	for _, ct := range p.cuts {
		if !ct.fired && ct.Request.MatchString(line) {
			return ct
		}
	}
	return nil
}

// fire cuts every connection (once per rule) and refuses new ones for
// ct.Refuse.
func (p *UnixProxy) fire(ct *Cut, line string) {
	p.mu.Lock()
	if ct.fired || p.closed {
		p.mu.Unlock()
		return
	}
	ct.fired = true
	p.mu.Unlock()
	if ct.Delay > 0 {
		go func() { time.Sleep(ct.Delay); p.cut(ct, line) }()
		return
	}
	p.cut(ct, line)
}

// dropAll closes the listener and every connection, after mark (which runs
// under the proxy's lock).
func (p *UnixProxy) dropAll(mark func()) {
	p.mu.Lock()
	mark()
	ln := p.ln
	conns := p.conns
	p.conns = map[net.Conn]bool{}
	p.mu.Unlock()
	_ = ln.Close()
	for c := range conns {
		_ = c.Close()
	}
}

func (p *UnixProxy) cut(ct *Cut, line string) {
	p.dropAll(func() { p.injected++; p.down = true })
	if ct.OnCut != nil {
		ct.OnCut(line)
	}
	go func() {
		time.Sleep(ct.Refuse)
		p.mu.Lock()
		closed := p.closed
		p.down = false
		p.mu.Unlock()
		if !closed {
			if err := p.listen(); err != nil && !errors.Is(err, net.ErrClosed) {
				return
			}
		}
	}()
}
