package smoke

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hackforla/ctjdeploy/internal/report"
)

func fast() Options {
	return Options{Interval: 10 * time.Millisecond, Mask: func(s string) string { return strings.ReplaceAll(s, "hunter2", "***") }}
}

func TestPassAfterRetriesOverTLS(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"revision":"abc123","uptime":4}`))
	}))
	defer srv.Close()
	o := fast()
	rec := &report.Recorder{}
	o.Reporter = rec
	o.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	res, err := Run(context.Background(), []Check{{URL: srv.URL + "/api/healthcheck", Contains: "abc123", Timeout: 5 * time.Second}}, o)
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].OK || res[0].Tries != 3 || res[0].Status != 200 {
		t.Fatalf("result %+v", res[0])
	}
	var lines []string
	for _, e := range rec.All() {
		if e.Kind == report.Line {
			lines = append(lines, e.Message)
		}
	}
	if len(lines) != 3 || !strings.Contains(lines[0], "status 503, want 200") || !strings.Contains(lines[2], "200 ok") {
		t.Fatalf("tries reported: %q", lines)
	}
}

func TestTLSVerified(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	res, err := Run(context.Background(), []Check{{URL: srv.URL, Timeout: 5 * time.Second}}, fast())
	if err == nil || res[0].OK || res[0].Tries != 1 || !strings.Contains(res[0].Error, "certificate") {
		t.Fatalf("an untrusted certificate must fail at once: %v %+v", err, res[0])
	}
}

func TestWrongStatusTimesOutWithAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("db password hunter2 refused " + strings.Repeat("x", 1000)))
	}))
	defer srv.Close()
	start := time.Now()
	res, err := Run(context.Background(), []Check{{URL: srv.URL, Timeout: 200 * time.Millisecond}}, fast())
	var f *Failed
	if !errors.As(err, &f) {
		t.Fatalf("want *Failed, got %v", err)
	}
	r := res[0]
	if r.OK || r.Status != 502 || r.Tries < 2 || time.Since(start) > 2*time.Second {
		t.Fatalf("result %+v", r)
	}
	if strings.Contains(r.Body, "hunter2") || !strings.Contains(r.Body, "***") || len(r.Body) > BodyExcerpt+10 {
		t.Fatalf("body not masked or not cut: %q", r.Body)
	}
	if !strings.Contains(r.Error, "timed out") || !strings.Contains(err.Error(), "502") {
		t.Fatalf("error %q / %v", r.Error, err)
	}
}

func TestMissingSubstring(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"revision":"old"}`))
	}))
	defer srv.Close()
	res, err := Run(context.Background(), []Check{{URL: srv.URL, Contains: "new", Timeout: 100 * time.Millisecond}}, fast())
	if err == nil || res[0].OK || res[0].Status != 200 || !strings.Contains(res[0].Error, `does not hold "new"`) || res[0].Body != `{"revision":"old"}` {
		t.Fatalf("%v %+v", err, res[0])
	}
}

// The try at the deadline gets no answer (the server hangs): the result
// still says why the last real answer failed, not "context deadline
// exceeded" (CI once saw this race in TestMissingSubstring).
func TestHangAtDeadlineKeepsLastAnswer(t *testing.T) {
	var n atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 1 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		_, _ = w.Write([]byte(`{"revision":"old"}`))
	}))
	defer srv.Close()
	defer close(release)
	res, err := Run(context.Background(), []Check{{URL: srv.URL, Contains: "new", Timeout: 300 * time.Millisecond}}, fast())
	if err == nil || res[0].OK || res[0].Status != 200 || res[0].Tries < 2 || res[0].Body != `{"revision":"old"}` ||
		!strings.Contains(res[0].Error, `does not hold "new"`) || strings.Contains(res[0].Error, "deadline") {
		t.Fatalf("%v %+v", err, res[0])
	}
}

func TestRedirects(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("elsewhere"))
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/final", http.StatusFound)
		case "/final":
			_, _ = w.Write([]byte("here"))
		default:
			http.Redirect(w, r, other.URL+"/", http.StatusFound)
		}
	}))
	defer srv.Close()
	res, err := Run(context.Background(), []Check{{URL: srv.URL + "/same", Contains: "here", Timeout: time.Second}}, fast())
	if err != nil || !res[0].OK {
		t.Fatalf("same-host redirect: %v %+v", err, res[0])
	}
	res, err = Run(context.Background(), []Check{{URL: srv.URL + "/away", Contains: "elsewhere", Timeout: 5 * time.Second}}, fast())
	if err == nil || res[0].OK || res[0].Tries != 1 || !strings.Contains(res[0].Error, "another host") {
		t.Fatalf("other-host redirect must be refused at once: %v %+v", err, res[0])
	}
}

func TestConnectionRefusedTimesOut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	url := srv.URL
	srv.Close()
	start := time.Now()
	res, err := Run(context.Background(), []Check{{URL: url, Timeout: 150 * time.Millisecond}}, fast())
	if err == nil || res[0].OK || res[0].Status != 0 || res[0].Tries < 2 || time.Since(start) > 2*time.Second {
		t.Fatalf("%v %+v", err, res[0])
	}
}
