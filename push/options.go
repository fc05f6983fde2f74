package push

import (
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hackforla/ctjdeploy/internal/netclient"
	"github.com/hackforla/ctjdeploy/internal/report"
)

// options are what New's Options set.
type options struct {
	rep      report.Reporter
	jobs     int
	cacheDir string
	// registries are the only hosts the ECR token goes to (WithRegistry);
	// empty: any ECR or loopback registry (config.AllowedRegistry).
	registries []string
	// timeouts bound each registry request (netclient.Default); backoff is
	// how long a failing request is retried.
	timeouts netclient.Timeouts
	backoff  remote.Backoff
}

// Option configures New; an option given a value it cannot use makes New
// fail with an error that names it.
type Option func(*options) error

// option is the Option that fails with bad (when not nil) and else sets.
func option(bad error, set func(*options)) Option {
	return func(o *options) error {
		if bad != nil {
			return bad
		}
		set(o)
		return nil
	}
}

// refuse is an error naming the option (opt) when bad.
func refuse(bad bool, opt, why string) error {
	if bad {
		return fmt.Errorf("%s: %s", opt, why)
	}
	return nil
}

// WithReporter sends the pusher's events (progress, warnings) to r.
func WithReporter(r report.Reporter) Option {
	return option(refuse(r == nil, "push.WithReporter(nil)", "no reporter (use report.Discard for none)"),
		func(o *options) { o.rep = r })
}

// WithJobs sets how many blobs upload (and are looked up) at once (default:
// the CPUs, at least 4); it must be 1 or more.
func WithJobs(n int) Option {
	return option(refuse(n < 1, fmt.Sprintf("push.WithJobs(%d)", n), "at least 1 blob must be allowed at once"),
		func(o *options) { o.jobs = n })
}

// WithCacheDir sets where compressed-layer digests are remembered per image
// id (default: the user cache folder, ctjdeploy/push); "" turns the cache
// off. The cache holds digests and image configs, never a credential.
func WithCacheDir(dir string) Option {
	return option(nil, func(o *options) { o.cacheDir = dir })
}

// WithRegistry names the registry (host[:port], the environment's
// `registry:`) that alone is sent the ECR token: any other registry gets
// anonymous requests, and Push and Plan refuse it. Without it, any registry
// config.AllowedRegistry accepts (ECR or loopback) is served.
func WithRegistry(host string) Option {
	return option(refuse(normalHost(host) == "", fmt.Sprintf("push.WithRegistry(%q)", host), "no registry host; pass the environment's registry (host[:port])"),
		func(o *options) { o.registries = append(o.registries, host) })
}

// WithTimeouts sets the registry requests' connect, TLS and response-header
// timeouts (default netclient.Default); none may be negative.
func WithTimeouts(t netclient.Timeouts) Option {
	return option(refuse(t.Dial < 0 || t.TLS < 0 || t.ResponseHeader < 0 || t.Total < 0, fmt.Sprintf("push.WithTimeouts(%+v)", t), "a timeout is negative"),
		func(o *options) { o.timeouts = t })
}

// WithRetryBackoff sets how a failing registry request is retried (default
// DefaultBackoff): at least one step, no negative wait or factor.
func WithRetryBackoff(b remote.Backoff) Option {
	return option(refuse(b.Steps < 1 || b.Duration < 0 || b.Factor < 0 || b.Jitter < 0, fmt.Sprintf("push.WithRetryBackoff(%+v)", b), "needs Steps of 1 or more and no negative Duration, Factor or Jitter"),
		func(o *options) { o.backoff = b })
}

// DefaultBackoff tries a registry request 8 times, waiting 1 s, 1.5 s,
// 2.3 s, 3.4 s, 5.1 s, 7.6 s and 11.4 s between (up to 20 % more with
// jitter): about 32 s in all, which rides out a registry restart or a 30 s
// outage. (No Cap: go-containerregistry's backoff stops at the first step
// that reaches its cap.)
var DefaultBackoff = remote.Backoff{Duration: time.Second, Factor: 1.5, Jitter: 0.2, Steps: 8}
