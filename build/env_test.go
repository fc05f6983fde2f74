package build

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hackforla/ctjdeploy/internal/config"
)

func TestEnvSpecs(t *testing.T) {
	env := &config.Environment{Name: "stage", Images: map[string]*config.Image{
		"next":   {Name: "next", Repository: "civic-tech-jobs-frontend", Context: "/app/frontend", Dockerfile: "/app/stage/next.dockerfile"},
		"django": {Name: "django", Repository: "civic-tech-jobs-backend", Context: "/app/backend", Dockerfile: "/app/stage/django.dockerfile", Target: "runtime", BuildArgs: map[string]string{"A": "1"}},
	}}
	got := EnvSpecs(env, "abc123", "https://github.com/hackforla/CivicTechJobs", "127.0.0.1:5055")
	want := []Spec{
		{Name: "django", Context: "/app/backend", Dockerfile: "/app/stage/django.dockerfile", Target: "runtime", BuildArgs: map[string]string{"A": "1"},
			Labels: map[string]string{"org.opencontainers.image.revision": "abc123", "org.opencontainers.image.source": "https://github.com/hackforla/CivicTechJobs"},
			Tag:    "ctjdeploy/django:abc123", CacheFrom: []string{"127.0.0.1:5055/civic-tech-jobs-backend:stage"}},
		{Name: "next", Context: "/app/frontend", Dockerfile: "/app/stage/next.dockerfile",
			Labels: map[string]string{"org.opencontainers.image.revision": "abc123", "org.opencontainers.image.source": "https://github.com/hackforla/CivicTechJobs"},
			Tag:    "ctjdeploy/next:abc123", CacheFrom: []string{"127.0.0.1:5055/civic-tech-jobs-frontend:stage"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("EnvSpecs:\n got %+v\nwant %+v", got, want)
	}
	// No cache registry, no source: no --cache-from, no source label.
	for _, s := range EnvSpecs(env, "abc123", "", "") {
		if s.CacheFrom != nil || len(s.Labels) != 1 {
			t.Errorf("%s: cache %v, labels %v", s.Name, s.CacheFrom, s.Labels)
		}
	}
}

func TestRegistryAnswers(t *testing.T) {
	// A 401 is an answer.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/" {
			t.Errorf("asked %s, want /v2/", r.URL.Path)
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	if err := RegistryAnswers(context.Background(), strings.TrimPrefix(srv.URL, "http://"), time.Second); err != nil {
		t.Errorf("a registry answering 401: %v", err)
	}
	// Accepts connections, never answers: an error within the timeout.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	if err := RegistryAnswers(context.Background(), ln.Addr().String(), 300*time.Millisecond); err == nil {
		t.Error("a registry that never answers answered")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("gave up after %v, want about the 300ms timeout", d)
	}
}
