package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/lease"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// `ctjdeploy ENV rollback` (the process) holds the deploy lock: while a
// deploy holds it (taken here by the test, as a deploy takes it) the
// rollback is exit 5 naming the holder, and the service, its revisions
// and the lock are as they were; --dry-run takes no lock; once the deploy
// released it, the rollback runs and releases it.
func TestRollbackProcessRefusedWhileADeployHoldsTheLock(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs the local stack")
	}
	cfg, n := e2eEnv(t)
	for _, tag := range []string{"first-" + n.Prefix, "second-" + n.Prefix} {
		if code, _, errText := runProc(t, "--config", cfg, "stage", "--tag", tag); code != 0 {
			t.Fatalf("deploy %s: exit %d\n%s", tag, code, errText)
		}
	}
	deployed := readState(t, n)

	ctx := context.Background()
	s := ssm.NewFromConfig(teststack.Start(t).AWSConfig(t))
	name := config.DefaultLockParameter(n.Cluster, n.Service)
	held, err := lease.Acquire(ctx, s, lease.Options{Name: name, Region: teststack.Region, Env: "stage", TTL: 30 * time.Minute,
		Holder: lease.Holder{Run: "deploy-in-ci", Command: "deploy", Tag: "third-" + n.Prefix, Host: "runner-4"}})
	if err != nil {
		t.Fatal(err)
	}
	code, _, errText := runProc(t, "--config", cfg, "stage", "rollback")
	if code != 5 || !strings.Contains(errText, "lock held") || !strings.Contains(errText, "deploy-in-ci") || !strings.Contains(errText, "runner-4") {
		t.Fatalf("rollback while a deploy holds the lock: exit %d, want 5 naming the holder\n%s", code, errText)
	}
	if st := readState(t, n); st.svcTD != deployed.svcTD || st.revs != deployed.revs || !strings.Contains(st.lock, "deploy-in-ci") {
		t.Fatalf("after the refused rollback: %+v, want %+v with the deploy's lock", st, deployed)
	}
	if code, _, errText := runProc(t, "--config", cfg, "stage", "rollback", "--dry-run"); code != 0 {
		t.Fatalf("rollback --dry-run takes no lock: exit %d\n%s", code, errText)
	}

	if !held.Release() {
		t.Fatal("the deploy's release failed")
	}
	if code, _, errText := runProc(t, "--config", cfg, "stage", "rollback"); code != 0 {
		t.Fatalf("rollback after the deploy: exit %d\n%s", code, errText)
	}
	if st := readState(t, n); st.svcTD == deployed.svcTD || st.lock != "" {
		t.Fatalf("after the rollback: %+v (before %+v): want rolled back and the lock released", st, deployed)
	}
}
