package teststack

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

// BaseImage is a base image the stack loads (busybox inside); PageText is
// what PageImage serves at /www/index.html (/www/health.html answers "ok").
const (
	BaseImage = "python:3.13-alpine"
	PageText  = "hello from container A"
)

var page struct {
	once sync.Once
	ref  string
	err  error
}

// PageImage builds, once per test binary, a tiny image FROM BaseImage with
// a page in /www, pushes it to the stack's loopback registry, removes it
// from the engine (so that the first container of it has to pull it, with
// the registry's auth) and returns its digest reference. The tests of a
// task runner (internal/taskrun, the simulator's real tasks) start it.
func PageImage(t testing.TB) string {
	t.Helper()
	page.once.Do(func() { page.ref, page.err = buildPushPage() })
	if page.err != nil {
		t.Fatal(page.err)
	}
	return page.ref
}

func buildPushPage() (string, error) {
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
	if _, err := cli.ImageInspect(ctx, BaseImage); err != nil {
		return "", fmt.Errorf("base image %s not on the engine (scripts/stack up loads it): %w", BaseImage, err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range map[string]string{
		"Dockerfile":      "FROM " + BaseImage + "\nCOPY www /www\n",
		"www/index.html":  PageText + "\n",
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
	tag := reg + "/ecssim-engine-test:" + RandHex(4)
	res, err := cli.ImageBuild(ctx, &buf, dcli.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	if err != nil {
		return "", fmt.Errorf("building %s: %w", tag, err)
	}
	out, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || bytes.Contains(out, []byte(`"error"`)) {
		return "", fmt.Errorf("building %s: %v %s", tag, err, out)
	}
	auth, err := dauth.Encode(dreg.AuthConfig{Username: RegistryUser, Password: RegistryPassword})
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

// RandHex is n random bytes in hex, for names of a test's own.
func RandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// LogBuf records the lines a component logs (a Logf option) and passes
// each to the test's log.
type LogBuf struct {
	mu    sync.Mutex
	lines []string
}

// Logf is a Logf option that records into b and logs to t.
func (b *LogBuf) Logf(t testing.TB) func(string, ...any) {
	return func(f string, a ...any) {
		s := fmt.Sprintf(f, a...)
		b.mu.Lock()
		b.lines = append(b.lines, s)
		b.mu.Unlock()
		t.Log(s)
	}
}

// Count is how many recorded lines hold sub.
func (b *LogBuf) Count(sub string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, l := range b.lines {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// Has says whether a recorded line holds sub.
func (b *LogBuf) Has(sub string) bool { return b.Count(sub) > 0 }

// Lines are the recorded lines.
func (b *LogBuf) Lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.lines...)
}
