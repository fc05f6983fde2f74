package rollback

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/lease"
)

// A rollback holds the deploy lock a deploy holds: while a deploy holds it
// (taken here by the test, as a deploy takes it, in the stack's SSM) the
// rollback is exit 5 naming the holder, and changes nothing; once the
// deploy released it, the rollback takes it, rolls back and releases it.
func TestStackRollbackRefusedWhileADeployHoldsTheLock(t *testing.T) {
	f := newFixture(t, 100)
	revA, _ := f.deployCommit(commitA)
	revB, _ := f.deployCommit(commitB)
	ctx := context.Background()
	s := ssm.NewFromConfig(f.s.AWSConfig(t))
	name := f.env.LockParameter()
	deploy, err := lease.Acquire(ctx, s, lease.Options{Name: name, Region: f.env.Region, Env: "stage", TTL: 30 * time.Minute,
		Holder: lease.Holder{Run: "deploy-run-7", Command: "deploy", Tag: commitC, Host: "ci-runner-9"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.plan("")
	if err != nil {
		t.Fatal(err)
	}
	f.sim.ResetCalls()
	o := RunOptions{SSM: s, Sleep: func(context.Context, time.Duration) error { return nil }}
	res, err := Run(ctx, f.ecs, f.env, p, o)
	if exitcode.Of(err) != exitcode.Refused || res.Outcome != "refused" {
		t.Fatalf("want exit 5 refused, got exit %d %q: %v", exitcode.Of(err), res.Outcome, err)
	}
	for _, want := range []string{"lock held", name, "deploy-run-7", "deploy of tag " + commitC, "ci-runner-9", "--force-unlock"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, err)
		}
	}
	if got := f.live(); got.ARN != revB {
		t.Fatalf("the service changed: %s, want %s", got.ARN, revB)
	}
	if c := f.sim.Calls(); c["ecs:UpdateService"] != 0 || c["ecs:RegisterTaskDefinition"] != 0 || c["ecs:StopServiceDeployment"] != 0 {
		t.Errorf("a refused rollback wrote: %v", c)
	}
	if st, err := lease.Read(ctx, s, name); err != nil || !st.Held || st.Holder.Run != "deploy-run-7" {
		t.Fatalf("the deploy's lock: %+v %v", st, err)
	}

	// The deploy ends: the rollback runs, holding the lock, and releases it.
	if !deploy.Release() {
		t.Fatal("the deploy's release failed")
	}
	o.Run = "rollback-run-1"
	res, err = Run(ctx, f.ecs, f.env, p, o)
	if err != nil || res.Outcome != "deployed" || res.Lock != name || !res.LockReleased {
		t.Fatalf("after the deploy: %+v %v", res, err)
	}
	if got := f.live(); got.ARN != revA {
		t.Fatalf("live after rollback: %s, want %s", got.ARN, revA)
	}
	st, err := lease.Read(ctx, s, name)
	if err != nil || st.Held || st.Holder.Run != "rollback-run-1" || st.Holder.Command != "rollback" {
		t.Fatalf("after the rollback, the lock: %+v %v", st, err)
	}
}
