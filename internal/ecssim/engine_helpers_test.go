package ecssim

// The engine's test helpers (internal/taskrun's engine_test.go has them
// too, with the engine's internals): an engine with a label of its own and
// a tiny image pushed to the stack's registry.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	dauth "github.com/moby/moby/api/pkg/authconfig"
	dreg "github.com/moby/moby/api/types/registry"
	dcli "github.com/moby/moby/client"
)

// The stack's loopback registry takes moto's ECR token for account
// 123456789012 (user AWS).
const (
	engTestUser     = "AWS"
	engTestPassword = "123456789012-auth-token"
	engTestBase     = "python:3.13-alpine" // a stack base image (busybox inside)
	engTestPage     = "hello from container A"
)

var (
	engTestOnce sync.Once
	engTestRef  string
	engTestErr  error
)

func engRand() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// engTestEngine skips without the stack and returns an engine whose
// containers carry a label of their own (so the test's Cleanup cannot touch
// containers of tests running at the same time), and the label.
func engTestEngine(t *testing.T) (*Engine, string, *engLogBuf) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs containers on the stack's Docker engine; not in -short")
	}
	if os.Getenv("DOCKER_HOST") == "" {
		t.Skip("DOCKER_HOST unset: start the stack (scripts/stack up) and source /tmp/ctjdeploy-stack/env")
	}
	logs := &engLogBuf{}
	label := "org.ctjdeploy.ecssim.test=" + engRand()
	e, err := NewEngine(EngineOptions{RegistryUser: engTestUser, RegistryPassword: engTestPassword, Label: label, Logf: logs.logf(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := e.Cleanup(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		_ = e.Close()
	})
	return e, label, logs
}

type engLogBuf struct {
	mu    sync.Mutex
	lines []string
}

func (b *engLogBuf) logf(t *testing.T) func(string, ...any) {
	return func(f string, a ...any) {
		s := fmt.Sprintf(f, a...)
		b.mu.Lock()
		b.lines = append(b.lines, s)
		b.mu.Unlock()
		t.Log(s)
	}
}

func (b *engLogBuf) has(sub string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// engTestImage builds a tiny image FROM a stack base image (a page in
// /www), pushes it to the loopback registry, removes it from the engine (so
// that the first Start has to pull it, with the registry auth) and returns
// its digest reference.
func engTestImage(t *testing.T, e *Engine) string {
	t.Helper()
	engTestOnce.Do(func() { engTestRef, engTestErr = engBuildPush(e) })
	if engTestErr != nil {
		t.Fatal(engTestErr)
	}
	return engTestRef
}

func engBuildPush(_ *Engine) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cli, err := dcli.New(dcli.FromEnv)
	if err != nil {
		return "", err
	}
	defer cli.Close()
	reg := os.Getenv("CTJDEPLOY_REGISTRY")
	if reg == "" {
		return "", fmt.Errorf("CTJDEPLOY_REGISTRY unset: source /tmp/ctjdeploy-stack/env")
	}
	if _, err := cli.ImageInspect(ctx, engTestBase); err != nil {
		return "", fmt.Errorf("base image %s not on the engine (scripts/stack up loads it): %w", engTestBase, err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range map[string]string{
		"Dockerfile":      "FROM " + engTestBase + "\nCOPY www /www\n",
		"www/index.html":  engTestPage + "\n",
		"www/health.html": "ok\n",
	} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			return "", err
		}
		if _, err := io.WriteString(tw, body); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	tag := reg + "/ecssim-engine-test:" + engRand()
	res, err := cli.ImageBuild(ctx, &buf, dcli.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	if err != nil {
		return "", fmt.Errorf("building %s: %w", tag, err)
	}
	out, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || bytes.Contains(out, []byte(`"error"`)) {
		return "", fmt.Errorf("building %s: %v %s", tag, err, out)
	}
	auth, err := dauth.Encode(dreg.AuthConfig{Username: engTestUser, Password: engTestPassword})
	if err != nil {
		return "", err
	}
	push, err := cli.ImagePush(ctx, tag, dcli.ImagePushOptions{RegistryAuth: auth})
	if err == nil {
		err = push.Wait(ctx)
	}
	if err != nil {
		return "", fmt.Errorf("pushing %s: %w", tag, err)
	}
	ins, err := cli.ImageInspect(ctx, tag)
	if err != nil {
		return "", err
	}
	ref := ""
	for _, d := range ins.RepoDigests {
		if strings.HasPrefix(d, reg+"/ecssim-engine-test@sha256:") {
			ref = d
		}
	}
	if ref == "" {
		return "", fmt.Errorf("pushed %s but the engine knows no digest for it: %v", tag, ins.RepoDigests)
	}
	if _, err := cli.ImageRemove(ctx, tag, dcli.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
		return "", fmt.Errorf("removing %s: %w", tag, err)
	}
	return ref, nil
}
