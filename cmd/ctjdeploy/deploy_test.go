package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// writeMinimalConfig writes a config whose registry (127.0.0.1:1) and AWS
// answer nothing: a test using it must end before any call.
func writeMinimalConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"backend/x", "frontend/x", "stage/django.dockerfile", "stage/next.dockerfile", "stage/td.json", "infra/x"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "ctjdeploy.yaml")
	if err := os.WriteFile(cfg, []byte(`environments:
  stage:
    region: us-west-2
    cluster: c
    service: s
    task_definition: stage/td.json
    registry: 127.0.0.1:1
    terraform: {dir: infra}
    images:
      django: {repository: b, context: backend, dockerfile: stage/django.dockerfile}
      next: {repository: f, context: frontend, dockerfile: stage/next.dockerfile}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_CEILING_DIRECTORIES", filepath.Dir(dir))
	return cfg
}

// A --tag outside the OCI tag grammar is invalid (exit 2) before any AWS
// call or build: AWS_ENDPOINT_URL points at a closed port, so a call would
// fail with exit 1 instead.
func TestDeployBadTagRefusedFirst(t *testing.T) {
	cfg := writeMinimalConfig(t)
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	for _, tag := range []string{"../../other/manifests/x", "a/b", "-x", "has space", "x\n"} {
		var out, errb bytes.Buffer
		code := run([]string{"--config", cfg, "stage", "--dry-run", "--tag", tag}, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), "tag") || strings.Contains(errb.String(), "127.0.0.1:1") {
			t.Errorf("--tag %q: exit %d, want 2 naming the tag before any call; stderr: %s", tag, code, errb.String())
		}
	}
}

// Outside a git repository and without --tag, deploy is invalid (exit 2),
// and --output json still prints one document saying so.
func TestDeployNoGitNoTagJSON(t *testing.T) {
	cfg := writeMinimalConfig(t)
	var out, errb bytes.Buffer
	code := run([]string{"--config", cfg, "--output", "json", "stage"}, &out, &errb)
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr: %s", code, errb.String())
	}
	var doc map[string]any
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, out.String())
	}
	if doc["outcome"] != "invalid" || doc["exitCode"] != float64(2) || doc["error"] == "" {
		t.Errorf("document: %s", out.String())
	}
}

// silentAWS is an AWS endpoint that accepts connections and never answers;
// connected is closed when the first connection comes in.
func silentAWS(t *testing.T) (url string, connected <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	first := make(chan struct{})
	go func() {
		var once sync.Once
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, answer nothing
			once.Do(func() { close(first) })
		}
	}()
	return "http://" + ln.Addr().String(), first
}

// A SIGINT (SIGTERM) while the plan waits on AWS ends the deploy with exit
// 130 (143), saying that the service was not changed. The AWS endpoint
// accepts connections and never answers, so only the signal can end it;
// it is sent when the run's first AWS connection comes in (the run handles
// signals from its start: it is then waiting on AWS). Each run has its own
// endpoint, so that a late connection of the first cannot signal the second.
func TestDeploySignalExitCodes(t *testing.T) {
	cfg := writeMinimalConfig(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	for _, c := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		var out, errb bytes.Buffer
		url, connected := silentAWS(t)
		t.Setenv("AWS_ENDPOINT_URL", url)
		go func() {
			<-connected
			_ = syscall.Kill(os.Getpid(), c.sig)
		}()
		start := time.Now()
		code := run([]string{"--config", cfg, "stage", "--dry-run", "--tag", "0123456789abcdef0123456789abcdef01234567"}, &out, &errb)
		if code != c.code {
			t.Errorf("%s: exit %d, want %d; stderr: %s", c.sig, code, c.code, errb.String())
		}
		if el := time.Since(start); el > 20*time.Second {
			t.Errorf("%s: took %s to stop", c.sig, el)
		}
		if !strings.Contains(errb.String(), "stopping") || !strings.Contains(errb.String(), "service s was not changed") {
			t.Errorf("%s: stderr does not say it is stopping: %s", c.sig, errb.String())
		}
	}
}
