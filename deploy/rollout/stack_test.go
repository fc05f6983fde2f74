package rollout

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/ecssim"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// simEnv is a test's own service in moto behind a rollout simulator.
type simEnv struct {
	names teststack.Names
	res   teststack.Resources
	sim   *ecssim.Sim
	api   *ecs.Client // through the simulator
	moto  *ecs.Client // moto directly
}

func newSimEnv(t *testing.T, sc ecssim.Scenario) *simEnv {
	t.Helper()
	st := teststack.Start(t)
	n := teststack.NewNames(t)
	res := st.CreateResources(t, n)
	moto := st.ECS(t)
	// The data guard refuses 200% with a shared postgres volume; these tests
	// use the setting it asks for.
	st.SetMaximumPercent(t, n, 100)
	sim, err := ecssim.New(ecssim.Options{Upstream: st.MotoEndpoint, Scenario: sc, Polls: 2})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	api := ecs.NewFromConfig(st.AWSConfig(t), func(o *ecs.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	return &simEnv{names: n, res: res, sim: sim, api: api, moto: moto}
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

func fastFollow(e *simEnv, id, td string, rec report.Reporter) FollowOptions {
	return FollowOptions{Cluster: e.names.Cluster, Service: e.names.Service, DeploymentID: id, TaskDefinition: td, Env: "stage",
		Interval: 50 * time.Millisecond, Jitter: -1, Timeout: 5 * time.Second, Reporter: rec, Since: time.Now().Add(-time.Minute)}
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
	id, _, err = Update(ctx, e.api, e.names.Cluster, e.names.Service, arn, false)
	if err != nil {
		t.Fatal(err)
	}
	return live, td, arn, id
}

func TestDeploySuccessAgainstSimulator(t *testing.T) {
	e := newSimEnv(t, ecssim.Success)
	ctx := context.Background()
	live, td, arn, id := e.start(t)

	// The tags rollback relies on.
	got, err := ReadLive(ctx, e.moto, e.names.Cluster, e.names.Service)
	if err != nil {
		t.Fatal(err)
	}
	if got.ARN() != arn || got.Tags[TagCommit] != "c0ffee" || got.Tags[TagEnv] != "stage" || got.Tags[TagPrevious] != live.ARN() {
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
	e := newSimEnv(t, ecssim.Rollback)
	_, _, arn, id := e.start(t)
	res, err := Follow(context.Background(), e.api, fastFollow(e, id, arn, nil))
	if exitcode.Of(err) != exitcode.RolledBack || res.State.Phase != RolledBack {
		t.Fatalf("Follow = %+v, %v (code %d), want exit 3 rolled back", res.State, err, exitcode.Of(err))
	}
	msg := err.Error()
	for _, want := range []string{"rolled the deployment back to", "Essential container in task exited", "django exit 1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure message lacks %q:\n%s", want, msg)
		}
	}
	if lag := time.Since(e.sim.FailedAt(e.names.Cluster, e.names.Service)); lag > time.Second {
		t.Errorf("exit came %s after the simulator reported the failure", lag)
	}
}

func TestDeployFailedWithoutRollbackExit6(t *testing.T) {
	e := newSimEnv(t, ecssim.Fail)
	_, _, arn, id := e.start(t)
	res, err := Follow(context.Background(), e.api, fastFollow(e, id, arn, nil))
	if exitcode.Of(err) != exitcode.NotRecovered || res.State.Phase != NotRecovered || !strings.Contains(err.Error(), "NOT back on a working revision") {
		t.Fatalf("Follow = %+v, %v", res.State, err)
	}
}

func TestDeployStuckExit4(t *testing.T) {
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
