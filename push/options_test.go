package push

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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
