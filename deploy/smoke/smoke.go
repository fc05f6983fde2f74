// Package smoke checks, after a completed rollout, that the environment's URLs
// answer as expected: each check GETs its URL until the status matches and the
// body holds the expected text, or its timeout passes. It never prints: every
// try is reported as an event of phase "smoke".
package smoke

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/report"
)

// Defaults for a check's optional keys.
const (
	DefaultStatus   = 200
	DefaultTimeout  = 2 * time.Minute
	DefaultInterval = 3 * time.Second
	// BodyExcerpt is how many bytes of a failing answer's body are kept.
	BodyExcerpt = 300
	// maxBody bounds how much of a body is read to look for Contains.
	maxBody = 1 << 20
)

// Check is one smoke check (the config's smoke: entry).
type Check struct {
	URL      string
	Status   int           // 0: DefaultStatus
	Contains string        // "" : any body
	Timeout  time.Duration // 0: DefaultTimeout
}

// Options tune Run.
type Options struct {
	Reporter report.Reporter
	// Interval between tries (0: DefaultInterval).
	Interval time.Duration
	// RootCAs replaces the system roots (tests); certificates are always verified.
	RootCAs *x509.CertPool
	// Mask is applied to every body excerpt (nil: report.Mask).
	Mask func(string) string
	// TryTimeout bounds one request (0: 10s, and never past the check's deadline).
	TryTimeout time.Duration
}

// Result is what one check found.
type Result struct {
	URL      string        `json:"url"`
	OK       bool          `json:"ok"`
	Want     int           `json:"want_status"`
	Contains string        `json:"contains,omitempty"`
	Status   int           `json:"status"`          // the last answer's status (0: none)
	Body     string        `json:"body,omitempty"`  // failure: the last answer's first bytes, masked
	Error    string        `json:"error,omitempty"` // failure: why
	Tries    int           `json:"tries"`
	Elapsed  time.Duration `json:"elapsed_ns"`
}

// Failed is returned by Run when a check did not pass.
type Failed struct{ Results []Result }

func (f *Failed) Error() string {
	var b strings.Builder
	for _, r := range f.Results {
		if r.OK {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "smoke check %s failed after %d tries in %s: %s", r.URL, r.Tries, r.Elapsed.Round(time.Second), r.Error)
		if r.Status != 0 {
			fmt.Fprintf(&b, " (last answer: %d %q)", r.Status, r.Body)
		}
	}
	return b.String()
}

// errOtherHost marks a redirect that leaves the checked URL's host.
var errOtherHost = errors.New("redirect to another host refused")

// errScheme marks a URL that is neither http nor https.
var errScheme = errors.New("not an http(s) URL")

// errBlockedAddr marks a connection refused to a link-local or metadata
// address (config.BlockedSmokeIP).
var errBlockedAddr = errors.New("link-local or instance metadata address refused")

// refuseBlocked is the dialer's Control: it runs with the address the
// connection is about to reach, after name resolution, so a name that
// resolves to the instance metadata service is refused too.
func refuseBlocked(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", errBlockedAddr, address)
	}
	ip := net.ParseIP(host)
	if ip == nil || config.BlockedSmokeIP(ip) {
		return fmt.Errorf("%w: %s (a smoke check connects to the environment's public address only)", errBlockedAddr, host)
	}
	return nil
}

// Client returns the HTTP client Run uses: http and https only, TLS
// verified, redirects followed on the same host (and never from https down
// to http) only, and no connection to a link-local or metadata address,
// whatever name leads there. It connects directly (no HTTP_PROXY): the
// address checked is the address reached.
func Client(roots *x509.CertPool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: refuseBlocked}).DialContext
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			from := via[0].URL
			if !strings.EqualFold(req.URL.Host, from.Host) || (req.URL.Scheme != from.Scheme && req.URL.Scheme != "https") {
				return fmt.Errorf("%w: %s://%s -> %s://%s", errOtherHost, from.Scheme, from.Host, req.URL.Scheme, req.URL.Host)
			}
			return nil
		},
	}
}

// Run runs the checks one after the other and returns every result; the error
// is a *Failed when any check failed (all checks run), or ctx's error.
func Run(ctx context.Context, checks []Check, o Options) ([]Result, error) {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Mask == nil {
		o.Mask = report.Mask
	}
	if o.TryTimeout <= 0 {
		o.TryTimeout = 10 * time.Second
	}
	ph := report.Begin(o.Reporter, "smoke")
	client := Client(o.RootCAs)
	defer client.CloseIdleConnections()
	var results []Result
	failed := false
	for _, c := range checks {
		r := one(ctx, client, c, o, ph)
		results = append(results, r)
		if ctx.Err() != nil {
			return results, ph.End(ctx.Err())
		}
		if !r.OK {
			failed = true
		}
		ph.Fields(summary(r), map[string]any{"smoke": r})
	}
	if failed {
		return results, ph.End(&Failed{Results: results})
	}
	return results, ph.End(nil)
}

func summary(r Result) string {
	if r.OK {
		return fmt.Sprintf("%s: %d in %s (%d tries)", r.URL, r.Status, r.Elapsed.Round(time.Millisecond), r.Tries)
	}
	return fmt.Sprintf("%s: FAILED after %s (%d tries): %s", r.URL, r.Elapsed.Round(time.Millisecond), r.Tries, r.Error)
}

func one(ctx context.Context, client *http.Client, c Check, o Options, ph *report.Phase) Result {
	if c.Status == 0 {
		c.Status = DefaultStatus
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	r := Result{URL: c.URL, Want: c.Status, Contains: c.Contains}
	start := time.Now()
	deadline := start.Add(c.Timeout)
	// answered is why the last real answer failed: when the try at the
	// deadline gets no answer (its own timeout cut it), that reason, not
	// "context deadline exceeded", is the truth about the URL.
	var answered string
	for {
		r.Tries++
		status, body, err := try(ctx, client, c.URL, min(o.TryTimeout, time.Until(deadline)))
		if status != 0 {
			// Status and Body keep the last real answer, even when a later
			// try gets none (a timeout at the deadline): that answer is what
			// a person needs to see.
			r.Status = status
		}
		r.Elapsed = time.Since(start)
		var why string
		switch {
		case err != nil:
			why = err.Error()
		case status != c.Status:
			why = fmt.Sprintf("status %d, want %d", status, c.Status)
		case c.Contains != "" && !strings.Contains(body, c.Contains):
			why = fmt.Sprintf("body does not hold %q", c.Contains)
		default:
			ph.Line(c.URL, fmt.Sprintf("try %d: %d ok (%s)", r.Tries, status, r.Elapsed.Round(time.Millisecond)))
			r.OK = true
			return r
		}
		ph.Line(c.URL, o.Mask(fmt.Sprintf("try %d: %s", r.Tries, why)))
		if status != 0 {
			// Masked whole, then cut: a cut first could leave a secret's
			// prefix that the mask no longer recognises.
			r.Body = excerpt(o.Mask(body))
			answered = why
		}
		r.Error = o.Mask(why)
		// A redirect off the host, a refused address or a bad certificate
		// will not fix itself.
		if errors.Is(err, errOtherHost) || errors.Is(err, errBlockedAddr) || errors.Is(err, errScheme) || isTLS(err) {
			return r
		}
		wait := o.Interval
		if time.Until(deadline) <= 0 {
			if status == 0 && answered != "" && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				why = answered
			}
			r.Error = o.Mask(fmt.Sprintf("timed out after %s: %s", c.Timeout, why))
			return r
		}
		wait = min(wait, time.Until(deadline))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			r.Error = ctx.Err().Error()
			return r
		case <-t.C:
		}
	}
}

func isTLS(err error) bool {
	var ce *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	return errors.As(err, &ce) || errors.As(err, &ua) || errors.As(err, &hn)
}

// excerpt keeps at most BodyExcerpt bytes of body, cut on a character
// boundary.
func excerpt(body string) string {
	if len(body) <= BodyExcerpt {
		return body
	}
	cut := BodyExcerpt
	for cut > 0 && !utf8.RuneStart(body[cut]) {
		cut--
	}
	return body[:cut] + "…"
}

func try(ctx context.Context, client *http.Client, url string, timeout time.Duration) (int, string, error) {
	if timeout <= 0 {
		timeout = time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return 0, "", fmt.Errorf("%w: %s", errScheme, url)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, string(b), fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, string(b), nil
}
