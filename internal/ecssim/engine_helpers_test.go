package ecssim

// engTestEngine is internal/taskrun's test engine again: teststack, which
// holds the shared helpers (PageImage, LogBuf), cannot import taskrun, whose
// own tests import teststack.

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/hackforla/ctjdeploy/internal/taskrun"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// engTestEngine skips without the stack and returns an engine whose
// containers carry a label of their own (so the test's Cleanup cannot touch
// containers of tests running at the same time), and the label.
func engTestEngine(t *testing.T) (*taskrun.Engine, string, *teststack.LogBuf) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs containers on the stack's Docker engine; not in -short")
	}
	if os.Getenv("DOCKER_HOST") == "" {
		t.Skip("DOCKER_HOST unset: start the stack (scripts/stack up) and source /tmp/ctjdeploy-stack/env")
	}
	logs := &teststack.LogBuf{}
	label := "org.ctjdeploy.ecssim.test=" + teststack.RandHex(4)
	e, err := taskrun.NewEngine(taskrun.EngineOptions{RegistryUser: teststack.RegistryUser, RegistryPassword: teststack.RegistryPassword, Label: label, Logf: logs.Logf(t)})
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
