package push

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/report"
)

func TestIAMActions(t *testing.T) {
	for _, c := range []struct{ method, path, want string }{
		{"HEAD", "/v2/repo/blobs/sha256:ab", "ecr:BatchCheckLayerAvailability"},
		{"GET", "/v2/repo/blobs/sha256:ab", "ecr:GetDownloadUrlForLayer"},
		{"POST", "/v2/repo/blobs/uploads/", "ecr:InitiateLayerUpload"},
		{"PATCH", "/v2/repo/blobs/uploads/x", "ecr:UploadLayerPart"},
		{"PUT", "/v2/repo/blobs/uploads/x", "ecr:CompleteLayerUpload"},
		{"PUT", "/v2/repo/manifests/c1", "ecr:PutImage"},
		{"HEAD", "/v2/repo/manifests/c1", "ecr:BatchGetImage"},
		{"GET", "/v2/repo/tags/list", "ecr:ListImages"},
	} {
		if got := strings.Join(iamActions(c.method, c.path), ","); got != c.want {
			t.Errorf("iamActions(%s %s) = %s, want %s", c.method, c.path, got, c.want)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for reg, want := range map[string]bool{
		"127.0.0.1:5055": true, "localhost:5000": true, "[::1]:5000": true, "127.0.0.2": true,
		"10.0.0.5:5000": false, "192.168.1.2:5000": false, "123456789012.dkr.ecr.us-west-2.amazonaws.com": false,
		"localhost.example.com:5000": false,
	} {
		if got := config.IsLoopbackHost(reg); got != want {
			t.Errorf("isLoopback(%s) = %v, want %v", reg, got, want)
		}
	}
}

func TestLoopbackOnlyHTTP(t *testing.T) {
	rt := &loopbackOnlyHTTP{next: roundTripFunc(func(*http.Request) (*http.Response, error) { return &http.Response{StatusCode: 200}, nil })}
	for u, ok := range map[string]bool{
		"http://127.0.0.1:5055/v2/": true, "https://10.0.0.5/v2/": true, "http://10.0.0.5:5000/v2/": false, "http://registry.example.com/v2/": false,
	} {
		req, _ := http.NewRequest("GET", u, nil)
		_, err := rt.RoundTrip(req)
		if (err == nil) != ok {
			t.Errorf("%s: err = %v, want allowed=%v", u, err, ok)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestECRRegistryID(t *testing.T) {
	for reg, want := range map[string]string{
		"123456789012.dkr.ecr.us-west-2.amazonaws.com":      "123456789012",
		"123456789012.dkr.ecr-fips.us-east-1.amazonaws.com": "123456789012",
		"127.0.0.1:5055":                        "",
		"12345.dkr.ecr.us-west-2.amazonaws.com": "",
	} {
		if got := config.ECRRegistryID(reg); got != want {
			t.Errorf("ecrRegistryID(%s) = %q, want %q", reg, got, want)
		}
	}
}

func TestMissingBytes(t *testing.T) {
	ls := []Layer{
		{Digest: "sha256:a", Size: 10, Missing: true},
		{Digest: "sha256:b", Size: 20, Missing: false},
		{Digest: "sha256:a", Size: 10, Missing: true}, // the same blob twice is uploaded once
		{Digest: "sha256:c", Size: 5, Missing: true},
	}
	if got := missingBytes(ls); got != 15 {
		t.Errorf("missingBytes = %d, want 15", got)
	}
	if got := missingBytes(nil); got != 0 {
		t.Errorf("missingBytes(nil) = %d", got)
	}
}

func TestTokenExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	past, later := now.Add(-time.Hour), now.Add(12*time.Hour)
	for _, c := range []struct {
		in   *time.Time
		want time.Time
	}{{nil, now.Add(10 * time.Minute)}, {&past, now.Add(10 * time.Minute)}, {&later, later}} {
		if got := tokenExpiry(now, c.in); !got.Equal(c.want) {
			t.Errorf("tokenExpiry(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestDecodeTokenRegistersSecrets(t *testing.T) {
	tok := base64.StdEncoding.EncodeToString([]byte("AWS:s3cret-password-xyz"))
	u, p, _, err := decodeToken(ecrtypes.AuthorizationData{AuthorizationToken: aws.String(tok)})
	if err != nil || u != "AWS" || p != "s3cret-password-xyz" {
		t.Fatalf("decodeToken = %q, %q, %v", u, p, err)
	}
	if got := report.Mask("x s3cret-password-xyz " + tok); got != "x *** ***" {
		t.Errorf("token not registered as a secret: %q", got)
	}
	for _, bad := range []string{"!!!", base64.StdEncoding.EncodeToString([]byte("nocolon"))} {
		if _, _, _, err := decodeToken(ecrtypes.AuthorizationData{AuthorizationToken: aws.String(bad)}); err == nil || strings.Contains(err.Error(), bad) {
			t.Errorf("decodeToken(%q) err = %v", bad, err)
		}
	}
}

func TestRegistryErr(t *testing.T) {
	req := func(method, path string) *http.Request {
		return &http.Request{Method: method, URL: &url.URL{Scheme: "https", Host: "r", Path: path}}
	}
	for _, c := range []struct {
		name string
		err  error
		want []string
	}{
		{"401", &transport.Error{StatusCode: 401, Request: req("HEAD", "/v2/repo/blobs/x")}, []string{"rejected the credentials", "ecr:GetAuthorizationToken"}},
		{"403 put manifest", &transport.Error{StatusCode: 403, Request: req("PUT", "/v2/repo/manifests/c1")}, []string{"ecr:PutImage", "iam-policy", "repo"}},
		{"403 upload", &transport.Error{StatusCode: 403, Request: req("POST", "/v2/repo/blobs/uploads/")}, []string{"ecr:InitiateLayerUpload"}},
		{"name unknown", &transport.Error{StatusCode: 404, Errors: []transport.Diagnostic{{Code: transport.NameUnknownErrorCode}}}, []string{"repository repo not found", "Terraform"}},
		{"tag invalid", &transport.Error{StatusCode: 400, Errors: []transport.Diagnostic{{Code: transport.TagInvalidErrorCode}}}, []string{"immutable"}},
		{"503", &transport.Error{StatusCode: 503}, []string{"after retries"}},
		{"net", &url.Error{Op: "Get", URL: "https://r/v2/", Err: errors.New("connection refused")}, []string{"cannot reach registry r"}},
	} {
		got := registryErr("pushing django", "r", "repo", c.err).Error()
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", c.name, got, w)
			}
		}
		if !strings.HasPrefix(got, "pushing django") {
			t.Errorf("%s: %q does not say what failed", c.name, got)
		}
	}
}

func TestIsImmutableTagErr(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&transport.Error{StatusCode: 400, Errors: []transport.Diagnostic{{Code: transport.TagInvalidErrorCode}}}, true},
		{&transport.Error{StatusCode: 400, Errors: []transport.Diagnostic{{Code: transport.ManifestInvalidErrorCode, Message: "The image tag 'stage' already exists in the 'x' repository and cannot be overwritten because the repository is immutable."}}}, true},
		{&transport.Error{StatusCode: 500}, false},
		{errors.New("immutable"), false},
	} {
		if got := isImmutableTagErr(c.err); got != c.want {
			t.Errorf("isImmutableTagErr(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestCredentialHelperActions(t *testing.T) {
	var out, errb strings.Builder
	if code := RunCredentialHelper([]string{"list"}, strings.NewReader(""), &out, &errb); code != 0 || strings.TrimSpace(out.String()) != "{}" {
		t.Errorf("list: %d %q", code, out.String())
	}
	if code := RunCredentialHelper([]string{"store"}, strings.NewReader(`{"Secret":"x"}`), &out, &errb); code != 0 {
		t.Errorf("store: %d", code)
	}
	if code := RunCredentialHelper([]string{"bogus"}, strings.NewReader(""), &out, &errb); code == 0 {
		t.Error("unknown action succeeded")
	}
}
