package push

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hackforla/ctjdeploy/internal/netclient"
)

// TestOptionsThatCannotBeUsedFailNew: an option given a value the pusher
// cannot work with (WithJobs(0) would bound the blob lookups to nothing and
// block them forever) makes New fail with an error naming the option,
// instead of a pusher that hangs or misbehaves later.
func TestOptionsThatCannotBeUsedFailNew(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  Option
		want string
	}{
		{"jobs 0", WithJobs(0), "push.WithJobs(0)"},
		{"jobs negative", WithJobs(-3), "push.WithJobs(-3)"},
		{"nil reporter", WithReporter(nil), "push.WithReporter"},
		{"empty registry", WithRegistry(" "), "push.WithRegistry"},
		{"negative timeout", WithTimeouts(netclient.Timeouts{Dial: -time.Second}), "push.WithTimeouts"},
		{"no retry step", WithRetryBackoff(remote.Backoff{Duration: time.Second, Factor: 1.5}), "push.WithRetryBackoff"},
		{"negative backoff", WithRetryBackoff(remote.Backoff{Duration: -time.Second, Steps: 3}), "push.WithRetryBackoff"},
	} {
		p, err := New(context.Background(), aws.Config{Region: "us-west-2"}, WithCacheDir(""), c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New = %v, %v; want an error naming %s", c.name, p, err, c.want)
		}
	}
}

// TestOptionsApplied: valid options reach the pusher; the defaults hold
// for the rest.
func TestOptionsApplied(t *testing.T) {
	b := remote.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 2}
	p, err := New(context.Background(), aws.Config{Region: "us-west-2"}, WithJobs(1), WithCacheDir("/x"), WithRegistry("127.0.0.1:5055"), WithRetryBackoff(b))
	if err != nil {
		t.Fatal(err)
	}
	if p.jobs != 1 || p.cacheDir != "/x" || len(p.registries) != 1 || p.backoff != b || p.timeouts != netclient.Default {
		t.Errorf("options = %+v", p.options)
	}
	q, err := New(context.Background(), aws.Config{Region: "us-west-2"})
	if err != nil {
		t.Fatal(err)
	}
	if q.jobs < 4 || q.backoff != DefaultBackoff || q.rep == nil {
		t.Errorf("defaults = %+v", q.options)
	}
}

// TestBlobLookupsBoundedByJobs: WithJobs(2) lets at most two blob HEADs
// run at once (errgroup.SetLimit), and every answer lands at its digest's
// place.
func TestBlobLookupsBoundedByJobs(t *testing.T) {
	var inflight, most atomic.Int32
	present := map[string]bool{}
	var ds []v1.Hash
	for i := 0; i < 8; i++ {
		d := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%064x", i)}
		ds = append(ds, d)
		present[d.String()] = i%2 == 0
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		// A slow registry: unbounded lookups would overlap here.
		time.Sleep(20 * time.Millisecond) // real time: a registry that answers slowly, so lookups overlap
		if !present[path.Base(r.URL.Path)] {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	p, err := New(context.Background(), aws.Config{Region: "us-west-2"}, WithCacheDir(""), WithJobs(2))
	if err != nil {
		t.Fatal(err)
	}
	p.ecr = &tokenECR{}
	p.credentials.api = p.ecr
	repo, err := repository(Target{Registry: addr, Repository: "repo"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.digestsPresent(context.Background(), repo, addr, ds)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		if got[i] != present[d.String()] {
			t.Errorf("blob %d: present %v, want %v", i, got[i], present[d.String()])
		}
	}
	if m := most.Load(); m != 2 {
		t.Errorf("at most %d HEADs at once, want 2 (WithJobs(2))", m)
	}
}
