// Package netclient bounds every network call ctjdeploy makes: the AWS SDK's
// HTTP client and retryer, and the registry transport's timeouts and retry
// rule. No call may hang on a black-holed endpoint (one that accepts a
// connection and never answers), and transient failures (throttling, 5xx, a
// refused connection during a short outage) are retried with backoff.
package netclient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
)

// Timeouts bound one request.
type Timeouts struct {
	Dial           time.Duration // TCP connect
	TLS            time.Duration // TLS handshake
	ResponseHeader time.Duration // from the request written to the response's headers
	// Total bounds a whole request, body included (AWS calls only; 0: none).
	// Registry uploads are long, so the registry transport has no total.
	Total time.Duration
}

// Default are the timeouts of every client: connect 10 s, TLS 10 s,
// response headers 30 s, an AWS call 2 min in all.
var Default = Timeouts{Dial: 10 * time.Second, TLS: 10 * time.Second, ResponseHeader: 30 * time.Second, Total: 2 * time.Minute}

// AWSMaxAttempts is how many times an AWS call is tried. The standard
// retryer retries throttling, 5xx and connection errors with exponential
// backoff and jitter, 3 attempts and a 20 s backoff cap by default ("Retries
// and Timeouts", AWS SDK for Go v2 developer guide): an ECS throttling burst
// outlasts 3 attempts.
const AWSMaxAttempts = 6

// AWSMaxBackoff caps the wait between two attempts of an AWS call.
const AWSMaxBackoff = 20 * time.Second

// AWSHTTPClient is the SDK's buildable client with t's timeouts.
func AWSHTTPClient(t Timeouts) *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithTimeout(t.Total).
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = t.Dial }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.TLSHandshakeTimeout = t.TLS
			tr.ResponseHeaderTimeout = t.ResponseHeader
		})
}

// AWSRetryer is the standard retryer with attempts tries, backoff capped at
// AWSMaxBackoff, and no client-side retry quota: the default token bucket
// gives up after a few throttled calls in a row ("retry quota exceeded"),
// exactly when ECS asks clients to back off and try again.
func AWSRetryer(attempts int) func() aws.Retryer {
	return AWSRetryerBackoff(attempts, AWSMaxBackoff)
}

// AWSRetryerBackoff is AWSRetryer with another backoff cap (tests).
func AWSRetryerBackoff(attempts int, maxBackoff time.Duration) func() aws.Retryer {
	return func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = attempts
			o.MaxBackoff = maxBackoff
			o.RateLimiter = ratelimit.None
		})
	}
}

// AWSOptions are the LoadDefaultConfig options of every AWS client:
// t's timeouts and attempts tries per call.
func AWSOptions(t Timeouts, attempts int) []func(*awsconfig.LoadOptions) error {
	return []func(*awsconfig.LoadOptions) error{
		awsconfig.WithHTTPClient(AWSHTTPClient(t)),
		awsconfig.WithRetryer(AWSRetryer(attempts)),
	}
}

// RegistryTransport is an HTTP transport for registry requests with t's
// connect, TLS and response-header timeouts (no total: a layer upload takes
// as long as it takes, but a registry that stops answering is noticed).
func RegistryTransport(base *http.Transport, t Timeouts) *http.Transport {
	tr := base.Clone()
	d := &net.Dialer{Timeout: t.Dial, KeepAlive: 30 * time.Second}
	tr.DialContext = d.DialContext
	tr.TLSHandshakeTimeout = t.TLS
	tr.ResponseHeaderTimeout = t.ResponseHeader
	return tr
}

// RegistryRetryable says whether a registry request that failed with err is
// tried again: an answer go-containerregistry marks temporary (a status of
// the retried list: 408, 429, 5xx), a refused or reset connection (a
// registry restarting, a load balancer draining), a connection closed early,
// a failed dial. A response that did not come within the response-header
// timeout is not: the endpoint is black-holed, and trying again would
// multiply the wait. Nor is a cancelled or expired context.
func RegistryRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		// A connect that timed out is a dial error (retry); awaiting headers
		// is not.
		var oe *net.OpError
		return errors.As(err, &oe) && oe.Op == "dial"
	}
	var tmp interface{ Temporary() bool }
	return errors.As(err, &tmp) && tmp.Temporary()
}
