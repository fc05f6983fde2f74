package smoke

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Issue 20, finding 6: no connection to a link-local or instance metadata
// address, whatever the URL says (the dialer checks the address a name
// resolves to).
func TestSmokeRefusesMetadataAddress(t *testing.T) {
	for _, u := range []string{
		"http://169.254.169.254/latest/meta-data/iam/security-credentials/",
		"http://169.254.170.2/v2/credentials",
		"http://[fe80::1]/",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://[::ffff:169.254.169.254]/",
	} {
		start := time.Now()
		res, err := Run(context.Background(), []Check{{URL: u, Timeout: 5 * time.Second}}, fast())
		if err == nil || res[0].OK || res[0].Tries != 1 || !strings.Contains(res[0].Error, "link-local or instance metadata address refused") {
			t.Errorf("%s: err %v, result %+v", u, err, res[0])
		}
		if time.Since(start) > 2*time.Second {
			t.Errorf("%s: took %s", u, time.Since(start))
		}
	}
	for addr, blocked := range map[string]bool{
		"169.254.169.254:80": true, "[fe80::1%eth0]:443": true, "[fd00:ec2::254]:80": true, "[fd00:ec2::23]:80": true,
		"127.0.0.1:8080": false, "[::1]:80": false, "203.0.113.7:443": false, "[2001:db8::1]:443": false,
	} {
		if err := refuseBlocked("tcp", addr, nil); (err != nil) != blocked {
			t.Errorf("refuseBlocked(%s) = %v, want blocked %v", addr, err, blocked)
		}
	}
}

// A redirect from https down to http, even on the same host, is refused.
func TestSmokeRedirectDowngradeRefused(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+r.Host+"/plain", http.StatusFound)
	}))
	defer srv.Close()
	o := fast()
	o.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	res, err := Run(context.Background(), []Check{{URL: srv.URL + "/", Timeout: 5 * time.Second}}, o)
	if err == nil || res[0].Tries != 1 || !strings.Contains(res[0].Error, "redirect to another host refused") {
		t.Fatalf("err %v, result %+v", err, res[0])
	}
}

// The echoed body is masked before it is cut to BodyExcerpt bytes: a secret
// across the cut leaves no prefix.
func TestSmokeBodyMaskedBeforeCut(t *testing.T) {
	body := strings.Repeat("x", BodyExcerpt-4) + "hunter2" + strings.Repeat("y", 500)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	res, _ := Run(context.Background(), []Check{{URL: srv.URL, Timeout: 50 * time.Millisecond}}, fast())
	b := res[0].Body
	if strings.Contains(b, "hunt") || len(b) > BodyExcerpt+len("…") || !strings.HasPrefix(b, "xxxx") {
		t.Fatalf("body %q (%d bytes)", b, len(b))
	}
}
