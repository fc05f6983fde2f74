package push

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/hackforla/ctjdeploy/build"
)

// tokenECR answers GetAuthorizationToken with a fixed token and counts calls.
type tokenECR struct {
	ecrAPI
	calls atomic.Int32
}

const scopeSecret = "s3cret-token-for-the-configured-registry"

func (f *tokenECR) GetAuthorizationToken(context.Context, *ecr.GetAuthorizationTokenInput, ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	f.calls.Add(1)
	tok := base64.StdEncoding.EncodeToString([]byte("AWS:" + scopeSecret))
	exp := time.Now().Add(12 * time.Hour)
	return &ecr.GetAuthorizationTokenOutput{AuthorizationData: []ecrtypes.AuthorizationData{{AuthorizationToken: aws.String(tok), ExpiresAt: &exp}}}, nil
}

func TestServesCredentials(t *testing.T) {
	const ecrHost = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
	for _, c := range []struct {
		registry string
		allowed  []string
		want     bool
	}{
		{ecrHost, nil, true},
		{ecrHost, []string{ecrHost}, true},
		{"https://" + ecrHost + ":443/v2/", []string{ecrHost}, true},
		{strings.ToUpper(ecrHost), []string{ecrHost}, true},
		{"210987654321.dkr.ecr.us-west-2.amazonaws.com", []string{ecrHost}, false}, // another account's ECR
		{ecrHost + ".evil.example.com", nil, false},
		{"evil.example.com", nil, false},
		{"evil.example.com", []string{"evil.example.com"}, false}, // never outside the allow-list, even if configured
		{"127.0.0.1:5055", nil, true},
		{"127.0.0.1:5055", []string{"127.0.0.1:5055"}, true},
		{"127.0.0.1:9999", []string{"127.0.0.1:5055"}, false},
		{"10.0.0.5:5000", nil, false},
		{"", nil, false},
	} {
		if got := servesCredentials(c.registry, c.allowed); got != c.want {
			t.Errorf("servesCredentials(%q, %q) = %v, want %v", c.registry, c.allowed, got, c.want)
		}
	}
}

// TestAuthOnlyForConfiguredRegistry: the pusher's authenticator for any
// registry but the configured one is anonymous, and asks ECR for nothing;
// Push and Plan refuse such a target before any request.
func TestAuthOnlyForConfiguredRegistry(t *testing.T) {
	api := &tokenECR{}
	p := newECR(api, options{registries: []string{"127.0.0.1:5055"}})
	for _, reg := range []string{"127.0.0.1:9999", "evil.example.com", "210987654321.dkr.ecr.us-west-2.amazonaws.com"} {
		a := p.auth(reg)
		if a != authn.Anonymous {
			t.Errorf("auth(%s) = %T, want anonymous", reg, a)
		}
		ac, err := a.Authorization()
		if err != nil || ac.Password != "" || ac.Username != "" || ac.RegistryToken != "" {
			t.Errorf("auth(%s).Authorization() = %+v, %v; want no credentials", reg, ac, err)
		}
		if _, err := p.Push(context.Background(), build.Image{Name: "django", LocalRef: "x"}, Target{Registry: reg, Repository: "r", Tags: []string{"c1"}}); err == nil || !strings.Contains(err.Error(), "not the configured registry 127.0.0.1:5055") {
			t.Errorf("Push to %s: err = %v, want refused as not the configured registry", reg, err)
		}
		if _, err := p.Plan(context.Background(), build.Image{Name: "django", LocalRef: "x"}, Target{Registry: reg, Repository: "r"}); err == nil || !strings.Contains(err.Error(), "not the configured registry") {
			t.Errorf("Plan to %s: err = %v, want refused", reg, err)
		}
	}
	if n := api.calls.Load(); n != 0 {
		t.Errorf("ecr:GetAuthorizationToken called %d times for other registries", n)
	}
	ac, err := p.auth("127.0.0.1:5055").Authorization()
	if err != nil || ac.Username != "AWS" || ac.Password != scopeSecret {
		t.Errorf("the configured registry got %+v, %v; want the ECR token", ac, err)
	}
	// Without WithRegistry: ECR and loopback only.
	q := newECR(api, options{})
	if q.auth("evil.example.com") != authn.Anonymous || q.auth("127.0.0.1:1234") == authn.Anonymous {
		t.Error("without a configured registry: want anonymous for evil.example.com, the token for a loopback registry")
	}
}

// TestCredentialHelperOnlyForConfiguredRegistry asserts on the helper's
// output bytes: another host gets the protocol's "not found" and no secret,
// and AWS is not asked.
func TestCredentialHelperOnlyForConfiguredRegistry(t *testing.T) {
	api := &tokenECR{}
	newAPI := func(context.Context) (ecrAPI, error) { return api, nil }
	env := map[string]string{RegistryEnv: "127.0.0.1:5055", RegionEnv: "us-west-2"}
	getenv := func(k string) string { return env[k] }
	for _, server := range []string{"evil.example.com", "https://evil.example.com/v1/", "127.0.0.1:9999", "210987654321.dkr.ecr.us-west-2.amazonaws.com", ""} {
		var out, errb bytes.Buffer
		code := runCredentialHelper([]string{"get"}, strings.NewReader(server+"\n"), &out, &errb, getenv, newAPI)
		if code != 1 || out.String() != notFound+"\n" {
			t.Errorf("get %q: exit %d, stdout %q; want 1 and %q", server, code, out.String(), notFound+"\n")
		}
		if strings.Contains(out.String()+errb.String(), scopeSecret) || strings.Contains(out.String(), "Secret") {
			t.Errorf("get %q: a secret in the output", server)
		}
	}
	if n := api.calls.Load(); n != 0 {
		t.Errorf("ecr:GetAuthorizationToken called %d times for other servers", n)
	}
	var out, errb bytes.Buffer
	if code := runCredentialHelper([]string{"get"}, strings.NewReader("127.0.0.1:5055\n"), &out, &errb, getenv, newAPI); code != 0 {
		t.Fatalf("get the configured registry: exit %d: %s", code, errb.String())
	}
	var got struct{ ServerURL, Username, Secret string }
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.Username != "AWS" || got.Secret != scopeSecret || got.ServerURL != "127.0.0.1:5055" {
		t.Errorf("get the configured registry: %q (%v)", out.String(), err)
	}
	// The environment the build passes names the registry.
	if e := HelperEnv("us-west-2", "127.0.0.1:5055"); len(e) != 2 || e[1] != RegistryEnv+"=127.0.0.1:5055" {
		t.Errorf("HelperEnv = %q", e)
	}
}
