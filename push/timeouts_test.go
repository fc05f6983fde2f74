package push

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hackforla/ctjdeploy/internal/netclient"
)

var fastRetry = remote.Backoff{Duration: 100 * time.Millisecond, Factor: 1.5, Steps: 10}

// seeded is an in-memory registry (no auth) holding repo:tag.
func seeded(t *testing.T) (http.Handler, string) {
	t.Helper()
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(h)
	defer srv.Close()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.NewTag(strings.TrimPrefix(srv.URL, "http://")+"/repo:tag", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return h, d.String()
}

func TestRegistryBlackHoleEndsWithinTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c) // accepted, never answered
		}
	}()
	addr := ln.Addr().String()
	p, err := New(context.Background(), aws.Config{Region: "us-west-2"}, WithCacheDir(""), WithRetryBackoff(fastRetry),
		WithTimeouts(netclient.Timeouts{Dial: time.Second, TLS: time.Second, ResponseHeader: 300 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = p.Resolve(context.Background(), addr, "repo", "tag")
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("Resolve against a black-holed registry took %s", el)
	}
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "timeout awaiting response headers") {
		t.Fatalf("want an error naming %s and the timeout, got %v", addr, err)
	}
}

func TestRegistryRetries503(t *testing.T) {
	t.Parallel()
	h, digest := seeded(t)
	var failing atomic.Int32
	failing.Store(4)
	var heads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") {
			heads.Add(1)
			if failing.Add(-1) >= 0 {
				http.Error(w, "unavailable", http.StatusServiceUnavailable)
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	p, err := New(context.Background(), aws.Config{Region: "us-west-2"}, WithCacheDir(""), WithRetryBackoff(fastRetry))
	if err != nil {
		t.Fatal(err)
	}
	p.ecr = &tokenECR{}
	p.credentials.api = p.ecr // the token comes from the fake too
	ref, err := p.Resolve(context.Background(), addr, "repo", "tag")
	if err != nil {
		t.Fatalf("four 503s in a row are not ridden out: %v", err)
	}
	if !strings.HasSuffix(ref, "@"+digest) || heads.Load() != 5 {
		t.Errorf("ref %s (want @%s), %d manifest requests (want 5)", ref, digest, heads.Load())
	}
}

// Not parallel: it frees a port and listens on it again 1.2 s later, which
// another test's listener could take meanwhile.
func TestRegistryRetriesRefusedConnection(t *testing.T) {
	h, digest := seeded(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refused until the registry comes back
	up := make(chan *http.Server, 1)
	go func() {
		// The outage outlasts the first retries (fastRetry: 100 ms × 1.5ⁿ),
		// which must ride it out.
		time.Sleep(1200 * time.Millisecond) // real time: a registry down for 1.2 s
		l, err := net.Listen("tcp", addr)
		if err != nil {
			up <- nil
			return
		}
		s := &http.Server{Handler: h}
		go s.Serve(l)
		up <- s
	}()
	p, err := New(context.Background(), aws.Config{Region: "us-west-2"}, WithCacheDir(""), WithRetryBackoff(fastRetry))
	if err != nil {
		t.Fatal(err)
	}
	p.ecr = &tokenECR{}
	p.credentials.api = p.ecr // the token comes from the fake too
	start := time.Now()
	ref, err := p.Resolve(context.Background(), addr, "repo", "tag")
	if s := <-up; s != nil {
		defer s.Close()
	} else {
		t.Skip("the port was taken meanwhile")
	}
	if err != nil {
		t.Fatalf("a registry refusing connections for 1.2 s is not ridden out: %v", err)
	}
	if !strings.HasSuffix(ref, "@"+digest) || time.Since(start) < time.Second {
		t.Errorf("ref %s after %s", ref, time.Since(start))
	}
}
