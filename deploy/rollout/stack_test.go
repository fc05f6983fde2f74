package rollout

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/ecsread"
	"github.com/hackforla/ctjdeploy/internal/ecssim"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// simEnv is a test's own service in moto behind a rollout simulator whose
// clock is manual: Follow's wait between two polls (fastFollow's Sleep) is
// one step of the model, so a rollout takes the same polls every run.
type simEnv struct {
	names teststack.Names
	res   teststack.Resources
	sim   *ecssim.Sim
	api   *ecs.Client // through the simulator
	moto  *ecs.Client // moto directly
	logs  *cloudwatchlogs.Client
	// updated is the service deployment ARN of start's update ("" before).
	updated string
	// steps counts the model's steps; atStep, if set, runs after each.
	steps  int
	atStep func(step int)
}

func newSimEnv(t *testing.T, sc ecssim.Scenario, opts ...func(*ecssim.Options)) *simEnv {
	t.Helper()
	st := teststack.Start(t)
	n := teststack.NewNames(t)
	res := st.CreateResources(t, n)
	moto := st.ECS(t)
	// The data guard refuses 200% with a shared postgres volume; these tests
	// use the setting it asks for.
	st.SetMaximumPercent(t, n, 100)
	so := ecssim.Options{Upstream: st.MotoEndpoint, Scenario: sc, Polls: 2, Step: 40 * time.Millisecond, ManualClock: true}
	for _, f := range opts {
		f(&so)
	}
	sim, err := ecssim.New(so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	api := ecs.NewFromConfig(st.AWSConfig(t), func(o *ecs.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		// The SDK's own retries as in production, without their waits of up
		// to seconds: nothing in the simulator moves while the SDK waits.
		o.Retryer = retry.AddWithMaxBackoffDelay(retry.NewStandard(), time.Millisecond)
	})
	logs := cloudwatchlogs.NewFromConfig(st.AWSConfig(t), func(o *cloudwatchlogs.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	return &simEnv{names: n, res: res, sim: sim, api: api, moto: moto, logs: logs}
}

// pinned is the live definition with its two built images pinned by digest.
func (e *simEnv) pinned(t *testing.T, live *Live, salt string) *ecs.RegisterTaskDefinitionInput {
	t.Helper()
	in := &ecs.RegisterTaskDefinitionInput{
		Family: live.TaskDefinition.Family, NetworkMode: live.TaskDefinition.NetworkMode,
		RequiresCompatibilities: live.TaskDefinition.RequiresCompatibilities,
		Cpu:                     live.TaskDefinition.Cpu, Memory: live.TaskDefinition.Memory,
		ExecutionRoleArn: live.TaskDefinition.ExecutionRoleArn, TaskRoleArn: live.TaskDefinition.TaskRoleArn,
		ContainerDefinitions: append([]ecstypes.ContainerDefinition(nil), live.TaskDefinition.ContainerDefinitions...),
		Volumes:              live.TaskDefinition.Volumes,
	}
	for i, c := range in.ContainerDefinitions {
		img := aws.ToString(c.Image)
		if strings.HasPrefix(img, "postgres") {
			continue
		}
		repo, _, _ := strings.Cut(img, ":"+teststack.InitialTag)
		in.ContainerDefinitions[i].Image = aws.String(repo + "@sha256:" + strings.Repeat(salt, 64/len(salt)))
	}
	return in
}

// fastFollow follows with one step of the model between two polls (and
// between a transient error and its retry) instead of a wait.
func fastFollow(e *simEnv, id, td string, rec report.Reporter) FollowOptions {
	return FollowOptions{Cluster: e.names.Cluster, Service: e.names.Service, DeploymentID: id, TaskDefinition: td, Env: "stage",
		Interval: 50 * time.Millisecond, Jitter: -1, Timeout: 5 * time.Second, Reporter: rec, Since: time.Now().Add(-time.Minute),
		ServiceDeploymentArn: e.updated, Sleep: func(ctx context.Context, _ time.Duration) error {
			e.sim.Advance(1)
			e.steps++
			if e.atStep != nil {
				e.atStep(e.steps)
			}
			return ctx.Err()
		}}
}

// start reads the live state, registers a pinned definition and updates the
// service, as a deploy does; it returns the new ARN and deployment id.
func (e *simEnv) start(t *testing.T) (live *Live, td *ecs.RegisterTaskDefinitionInput, arn, id string) {
	t.Helper()
	ctx := context.Background()
	live, err := ReadLive(ctx, e.api, e.names.Cluster, e.names.Service)
	if err != nil {
		t.Fatal(err)
	}
	if v := Refusal(Guards(GuardInput{Env: "stage", Service: live.Svc, Rendered: e.pinned(t, live, "ab")})); v != nil {
		t.Fatalf("guards refuse the test's own service: %v", v)
	}
	td = e.pinned(t, live, "ab")
	arn, err = Register(ctx, e.api, td, RegisterTags{Commit: "c0ffee", Env: "stage", Previous: live.ARN()})
	if err != nil {
		t.Fatal(err)
	}
	var svc *ecstypes.Service
	id, svc, err = Update(ctx, e.api, e.names.Cluster, e.names.Service, arn, false)
	if err != nil {
		t.Fatal(err)
	}
	// As deploy does: Follow gets the service deployment's ARN from the
	// update's answer (without it, it looks the record up by creation time,
	// which a test that has no UpdatedAt cannot do reliably under load).
	e.updated = aws.ToString(svc.CurrentServiceDeployment)
	return live, td, arn, id
}

func TestDeploySuccessAgainstSimulator(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, ecssim.Success)
	ctx := context.Background()
	live, td, arn, id := e.start(t)

	// The tags rollback relies on.
	got, err := ReadLive(ctx, e.moto, e.names.Cluster, e.names.Service)
	if err != nil {
		t.Fatal(err)
	}
	if got.ARN() != arn || got.Tags[ecsread.TagCommit] != "c0ffee" || got.Tags[ecsread.TagEnv] != "stage" || got.Tags[ecsread.TagPrevious] != live.ARN() {
		t.Fatalf("live after update: %s tags %v; want %s with previous %s", got.ARN(), got.Tags, arn, live.ARN())
	}

	var rec report.Recorder
	res, err := Follow(ctx, e.api, fastFollow(e, id, arn, &rec))
	if err != nil || res.State.Phase != Completed {
		t.Fatalf("Follow = %+v, %v", res.State, err)
	}
	var lines []string
	progress := 0
	for _, ev := range rec.All() {
		switch ev.Kind {
		case report.Line:
			lines = append(lines, ev.Message)
		case report.Progress:
			progress++
		}
	}
	all := strings.Join(lines, "\n")
	if !strings.Contains(all, "deployment completed") || progress == 0 {
		t.Errorf("events reported:\n%s\n(progress events %d)", all, progress)
	}
	if strings.Count(all, "has reached a steady state") != 1 {
		t.Errorf("each event must be reported once:\n%s", all)
	}
	v, err := Verify(ctx, e.api, e.names.Cluster, e.names.Service, arn, PinnedDigests(td.ContainerDefinitions), 1)
	if err != nil || v.Tasks != 1 {
		t.Fatalf("Verify = %+v, %v", v, err)
	}
}

func TestDeployRollbackExit3(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, ecssim.Rollback)
	_, _, arn, id := e.start(t)
	o := fastFollow(e, id, arn, nil)
	o.Logs = e.logs
	res, err := Follow(context.Background(), e.api, o)
	logOutcome(t, err)
	if exitcode.Of(err) != exitcode.RolledBack || res.State.Phase != RolledBack {
		t.Fatalf("Follow = %+v, %v (code %d), want exit 3 rolled back", res.State, err, exitcode.Of(err))
	}
	msg := err.Error()
	for _, want := range []string{"rolled the deployment back to", "Essential container in task exited", "django exit 1",
		"of django in task", "/ecs/" + e.names.Family + " ecs/django/", "| ecssim: container django of this EMULATED task exited 1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure message lacks %q:\n%s", want, msg)
		}
	}
	// In the model's time: the rollback's 2 steps (80 ms) and little more.
	if lag := e.sim.Now().Sub(e.sim.FailedAt(e.names.Cluster, e.names.Service)); lag > time.Second {
		t.Errorf("exit came %s (of the model's time) after the simulator reported the failure", lag)
	}
}

func TestDeployFailedWithoutRollbackExit6(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, ecssim.Fail)
	_, _, arn, id := e.start(t)
	res, err := Follow(context.Background(), e.api, fastFollow(e, id, arn, nil))
	logOutcome(t, err)
	if exitcode.Of(err) != exitcode.NotRecovered || res.State.Phase != NotRecovered || !strings.Contains(err.Error(), "NOT back on a working revision") {
		t.Fatalf("Follow = %+v, %v", res.State, err)
	}
}

func TestDeployStuckExit4(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, ecssim.Stuck)
	_, _, arn, id := e.start(t)
	o := fastFollow(e, id, arn, nil)
	o.Timeout = 400 * time.Millisecond
	start := time.Now()
	_, err := Follow(context.Background(), e.api, o)
	if exitcode.Of(err) != exitcode.TimedOut || !strings.Contains(err.Error(), "may still finish") || !strings.Contains(err.Error(), "ctjdeploy stage status") {
		t.Fatalf("Follow = %v (code %d), want exit 4", err, exitcode.Of(err))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timeout of 400ms took %s", d)
	}
}

func TestInProgressGuardAgainstSimulator(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, ecssim.InProgress)
	live, err := ReadLive(context.Background(), e.api, e.names.Cluster, e.names.Service)
	if err != nil {
		t.Fatal(err)
	}
	v := InProgressGuard(live.Svc, false)
	if v.Outcome != Refuse {
		t.Fatalf("in-progress guard on a service with a rollout in progress: %+v", v)
	}
	if InProgressGuard(live.Svc, true).Outcome != Bypassed {
		t.Fatal("--force must bypass the in-progress guard")
	}
}

func TestVerifyWrongDigest(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, ecssim.WrongDigest)
	_, td, arn, id := e.start(t)
	if _, err := Follow(context.Background(), e.api, fastFollow(e, id, arn, nil)); err != nil {
		t.Fatal(err)
	}
	_, err := Verify(context.Background(), e.api, e.names.Cluster, e.names.Service, arn, PinnedDigests(td.ContainerDefinitions), 1)
	if err == nil || !strings.Contains(err.Error(), "not the pushed sha256:abab") {
		t.Fatalf("Verify with other digests running = %v", err)
	}
}

func TestFollowRollbackFailsExit6(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, ecssim.RollbackFails)
	live, _, arn, id := e.start(t)
	res, err := Follow(context.Background(), e.api, fastFollow(e, id, arn, nil))
	logOutcome(t, err)
	if exitcode.Of(err) != exitcode.NotRecovered || res.State.Phase != NotRecovered {
		t.Fatalf("Follow = %+v, %v (code %d), want exit 6", res.State, err, exitcode.Of(err))
	}
	for _, want := range []string{"rollback failed too", "NOT back on a working revision"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%v", want, err)
		}
	}
	if sd := res.ServiceDeployment; sd == nil || sd.Status != ecstypes.ServiceDeploymentStatusRollbackFailed {
		t.Errorf("followed record: %+v", sd)
	}
	_ = live
}

// Breaker without rollback: exit 6, the service keeps the FAILED deployment;
// the in-progress guard lets the fix go, and the fix deploys (exit 0).
func TestFollowBreakerWithoutRollbackThenFix(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, ecssim.Fail)
	e.sim.Configure(e.names.Cluster, e.names.Service, ecssim.ServiceConfig{CircuitBreaker: true, Rollback: false, MaximumPercent: 100})
	_, _, arn, id := e.start(t)
	_, err := Follow(context.Background(), e.api, fastFollow(e, id, arn, nil))
	if exitcode.Of(err) != exitcode.NotRecovered {
		t.Fatalf("Follow = %v (code %d), want exit 6", err, exitcode.Of(err))
	}
	if cur := e.sim.Current(e.names.Cluster, e.names.Service); cur != arn {
		t.Fatalf("without rollback the service stays on the failed revision %s, runs %s", arn, cur)
	}
	live, err := ReadLive(context.Background(), e.api, e.names.Cluster, e.names.Service)
	if err != nil {
		t.Fatal(err)
	}
	if v := InProgressGuard(live.Svc, false); v.Outcome != Pass || !strings.Contains(v.Message, "FAILED") {
		t.Fatalf("in-progress guard after a failed deployment: %+v", v)
	}
	// The fix.
	e.sim.SetScenario(e.names.Cluster, e.names.Service, ecssim.Success)
	td := e.pinned(t, live, "cd")
	fix, err := Register(context.Background(), e.api, td, RegisterTags{Commit: "f1x", Env: "stage", Previous: live.ARN()})
	if err != nil {
		t.Fatal(err)
	}
	id2, svc, err := Update(context.Background(), e.api, e.names.Cluster, e.names.Service, fix, false)
	if err != nil {
		t.Fatal(err)
	}
	o := fastFollow(e, id2, fix, nil)
	o.ServiceDeploymentArn, o.Source = aws.ToString(svc.CurrentServiceDeployment), live.ARN()
	res, err := Follow(context.Background(), e.api, o)
	logOutcome(t, err)
	if err != nil || res.State.Phase != Completed {
		t.Fatalf("the fix: %+v, %v", res.State, err)
	}
	if cur := e.sim.Current(e.names.Cluster, e.names.Service); cur != fix {
		t.Errorf("after the fix the service runs %s, want %s", cur, fix)
	}
}

// An outside update mid-rollout (terraform apply pointing the service back
// at its own revision) is exit 1, naming that revision, never 3.
func TestFollowOutsideUpdateExit1(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, ecssim.Success, func(o *ecssim.Options) { o.Polls = 25 })
	live, _, arn, id := e.start(t)
	e.atStep = func(step int) { // mid-rollout: it takes 25 steps
		if step == 7 {
			if err := e.sim.OutsideUpdate(e.names.Cluster, e.names.Service, live.ARN()); err != nil {
				t.Errorf("outside update: %v", err)
			}
		}
	}
	o := fastFollow(e, id, arn, nil)
	o.Source = live.ARN()
	res, err := Follow(context.Background(), e.api, o)
	logOutcome(t, err)
	if exitcode.Of(err) != exitcode.Failed || res.State.Phase != Replaced {
		t.Fatalf("Follow = %+v, %v (code %d), want exit 1 replaced", res.State, err, exitcode.Of(err))
	}
	for _, want := range []string{ecsread.ShortARN(live.ARN()), "this run did not start", "not registered by ctjdeploy"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%v", want, err)
		}
	}
}

// The same through DescribeServices only (an account without the service
// deployment API).
func TestFollowOutsideUpdateWithoutAPIExit1(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, ecssim.Success, func(o *ecssim.Options) { o.Polls = 25 })
	e.sim.Configure(e.names.Cluster, e.names.Service, ecssim.ServiceConfig{CircuitBreaker: true, Rollback: true, NoDeploymentAPI: true, MaximumPercent: 100})
	live, _, arn, id := e.start(t)
	e.atStep = func(step int) { // mid-rollout: it takes 25 steps
		if step == 7 {
			_ = e.sim.OutsideUpdate(e.names.Cluster, e.names.Service, live.ARN())
		}
	}
	o := fastFollow(e, id, arn, nil)
	o.Source = live.ARN()
	res, err := Follow(context.Background(), e.api, o)
	logOutcome(t, err)
	if exitcode.Of(err) != exitcode.Failed || res.State.Phase != Replaced || res.ServiceDeployment != nil {
		t.Fatalf("Follow = %+v, %v (code %d), want exit 1 replaced from DescribeServices", res.State, err, exitcode.Of(err))
	}
}

// Without the service deployment API, ECS's rollback is still told from a
// failure: exit 3 once it completed.
func TestFollowRollbackWithoutAPIExit3(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, ecssim.Rollback)
	e.sim.Configure(e.names.Cluster, e.names.Service, ecssim.ServiceConfig{CircuitBreaker: true, Rollback: true, NoDeploymentAPI: true, MaximumPercent: 100})
	live, _, arn, id := e.start(t)
	var rec report.Recorder
	o := fastFollow(e, id, arn, &rec)
	o.Source = live.ARN()
	res, err := Follow(context.Background(), e.api, o)
	logOutcome(t, err)
	if exitcode.Of(err) != exitcode.RolledBack || res.State.Phase != RolledBack {
		t.Fatalf("Follow = %+v, %v (code %d), want exit 3", res.State, err, exitcode.Of(err))
	}
	if cur := e.sim.Current(e.names.Cluster, e.names.Service); cur != live.ARN() {
		t.Errorf("after the rollback the service runs %s, want %s", cur, live.ARN())
	}
	warned := false
	for _, ev := range rec.All() {
		warned = warned || strings.Contains(ev.Message, "service deployment API is not available")
	}
	if !warned {
		t.Error("no warning that the service deployment API is not available")
	}
}

// Reads that lag behind the update are eventual consistency, not failure.
func TestFollowLaggingReadExit0(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, ecssim.Success)
	e.sim.SetFaults(e.names.Cluster, e.names.Service, ecssim.Faults{LagReads: 6})
	live, _, arn, id := e.start(t)
	o := fastFollow(e, id, arn, nil)
	o.Source = live.ARN()
	res, err := Follow(context.Background(), e.api, o)
	logOutcome(t, err)
	if err != nil || res.State.Phase != Completed {
		t.Fatalf("Follow with lagging reads = %+v, %v", res.State, err)
	}
}

// A storm of throttling during the wait is retried until it passes.
func TestFollowThrottleStormExit0(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, ecssim.Success, func(o *ecssim.Options) { o.Polls = 6 })
	live, _, arn, id := e.start(t)
	e.sim.SetFaults(e.names.Cluster, e.names.Service, ecssim.Faults{Throttle: 9})
	o := fastFollow(e, id, arn, nil)
	o.Source, o.Timeout = live.ARN(), 60*time.Second
	res, err := Follow(context.Background(), e.api, o)
	logOutcome(t, err)
	if err != nil || res.State.Phase != Completed {
		t.Fatalf("Follow through throttling = %+v, %v", res.State, err)
	}
	if res.Retries == 0 {
		t.Errorf("no retry counted: the throttles did not reach Follow (the SDK retried them all?)")
	}
	t.Logf("%d polls, %d retried by Follow", res.Polls, res.Retries)
}

// logOutcome logs the exit code and the first line of the message (the
// closing notes' situation → exit → message table is read from these).
func logOutcome(t *testing.T, err error) {
	t.Helper()
	msg := "deployed"
	if err != nil {
		msg, _, _ = strings.Cut(err.Error(), "\n")
	}
	t.Logf("OUTCOME exit %d: %s", exitcode.Of(err), msg)
}

// Without the ARN from the update's answer (a rerun that lost it), Follow
// finds its record among the service's deployments: the first created since
// the update, the previous current one left out.
func TestFollowFindsItsRecordWithoutTheARN(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, ecssim.Success)
	before := e.sim.Now()
	live, _, arn, id := e.start(t)
	o := fastFollow(e, id, arn, nil)
	o.ServiceDeploymentArn, o.UpdatedAt = "", before
	o.PreviousServiceDeploymentArn = aws.ToString(live.Svc.CurrentServiceDeployment)
	res, err := Follow(context.Background(), e.api, o)
	if err != nil || res.State.Phase != Completed {
		t.Fatalf("Follow = %+v, %v", res.State, err)
	}
	if res.ServiceDeployment == nil || aws.ToString(res.ServiceDeployment.ServiceDeploymentArn) != e.updated {
		t.Fatalf("followed %v, want the update's record %s", res.ServiceDeployment, e.updated)
	}
}
