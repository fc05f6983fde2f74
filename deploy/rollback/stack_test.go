package rollback

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hackforla/ctjdeploy/deploy/inspect"
	"github.com/hackforla/ctjdeploy/deploy/rollout"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
	"github.com/hackforla/ctjdeploy/internal/ecssim"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/teststack"
	"github.com/hackforla/ctjdeploy/push"
)

// fixture is a test's own service in moto behind the rollout simulator,
// with its own ECR repositories in the stack's registry.
type fixture struct {
	t       *testing.T
	s       *teststack.Stack
	n       teststack.Names
	sim     *ecssim.Sim
	ecs     *ecs.Client // through the simulator
	moto    *ecs.Client // straight to moto
	reg     *push.ECR
	env     *config.Environment
	initial string // the revision registered outside ctjdeploy
}

func newFixture(t *testing.T, maxPercent int32, simOpts ...func(*ecssim.Options)) *fixture {
	t.Helper()
	s := teststack.Start(t)
	n := teststack.NewNames(t)
	res := s.CreateResources(t, n)
	ctx := context.Background()
	f := &fixture{t: t, s: s, n: n, moto: s.ECS(t), initial: res.TaskDefinitionArn}
	s.SetMaximumPercent(t, n, maxPercent)
	so := ecssim.Options{Upstream: s.MotoEndpoint, Polls: 2}
	for _, o := range simOpts {
		o(&so)
	}
	sim, err := ecssim.New(so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	f.sim = sim
	cfg, err := awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRegion(teststack.Region),
		awsconfig.WithBaseEndpoint(srv.URL),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
		awsconfig.WithSharedConfigFiles([]string{}),
		awsconfig.WithSharedCredentialsFiles([]string{}),
	)
	if err != nil {
		t.Fatal(err)
	}
	f.ecs = ecs.NewFromConfig(cfg)
	f.reg, err = push.New(ctx, cfg, push.WithCacheDir(""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.reg.Close() })

	tmpl, err := os.ReadFile(filepath.Join(s.ExampleDir(), "stage", "ecs-task-def.json"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ecs-task-def.json")
	body := strings.Replace(string(tmpl), `"family": "`+teststack.ExampleFamily+`"`, `"family": "`+n.Family+`"`, 1)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	f.env = &config.Environment{
		Name: "stage", Region: teststack.Region, Cluster: n.Cluster, Service: n.Service, Registry: s.Registry,
		TaskDefinition: path,
		Terraform:      &config.Terraform{Dir: filepath.Join(s.ExampleDir(), "infra", "stage")},
		Images: map[string]*config.Image{
			"django": {Name: "django", Repository: n.BackendRepo},
			"next":   {Name: "next", Repository: n.FrontendRepo},
		},
	}
	return f
}

var regAuth = remote.WithAuth(&authn.Basic{Username: teststack.RegistryUser, Password: teststack.RegistryPassword})

// push puts a random image into repo under tags and returns its digest.
func (f *fixture) push(repo string, tags ...string) string {
	f.t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, tag := range tags {
		ref, err := name.NewTag(f.s.Registry+"/"+repo+":"+tag, name.Insecure)
		if err != nil {
			f.t.Fatal(err)
		}
		if err := remote.Write(ref, img, regAuth); err != nil {
			f.t.Fatalf("pushing %s: %v", ref, err)
		}
	}
	d, _ := img.Digest()
	return d.String()
}

// remove deletes a manifest from the registry (as a lifecycle policy would).
func (f *fixture) remove(repo, digest string) {
	f.t.Helper()
	ref, err := name.NewDigest(f.s.Registry+"/"+repo+"@"+digest, name.Insecure)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := remote.Delete(ref, regAuth); err != nil {
		f.t.Fatalf("deleting %s: %v", ref, err)
	}
}

type pushed struct{ django, next string }

// pushCommit pushes both images under commit (and the env tag).
func (f *fixture) pushCommit(commit string) pushed {
	return pushed{django: f.push(f.n.BackendRepo, commit, "stage"), next: f.push(f.n.FrontendRepo, commit, "stage")}
}

// deployCommit does what a deploy leaves behind: images pushed under
// commit, a revision pinned to them and tagged like ctjdeploy tags it, the
// service updated through the simulator and the rollout completed.
func (f *fixture) deployCommit(commit string) (string, pushed) {
	f.t.Helper()
	ctx := context.Background()
	p := f.pushCommit(commit)
	live, err := rollout.ReadLive(ctx, f.moto, f.n.Cluster, f.n.Service)
	if err != nil {
		f.t.Fatal(err)
	}
	in := teststack.ExampleTaskDefinition(f.n, f.s.Registry, "x")
	in.ContainerDefinitions[0].Image = aws.String(f.s.Registry + "/" + f.n.FrontendRepo + "@" + p.next)
	in.ContainerDefinitions[1].Image = aws.String(f.s.Registry + "/" + f.n.BackendRepo + "@" + p.django)
	arn, err := rollout.Register(ctx, f.moto, in, rollout.RegisterTags{Commit: commit, Env: "stage", Previous: live.ARN()})
	if err != nil {
		f.t.Fatal(err)
	}
	id, _, err := rollout.Update(ctx, f.ecs, f.n.Cluster, f.n.Service, arn, false)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := rollout.Follow(ctx, f.ecs, rollout.FollowOptions{Cluster: f.n.Cluster, Service: f.n.Service, DeploymentID: id, TaskDefinition: arn,
		Sleep: func(context.Context, time.Duration) error { return nil }}); err != nil {
		f.t.Fatalf("deploying %s: %v", commit, err)
	}
	return arn, p
}

func (f *fixture) deps() Deps { return Deps{ECS: f.ecs, Registry: f.reg} }

func (f *fixture) plan(to string) (*Plan, error) {
	return MakePlan(context.Background(), f.deps(), f.env, Options{To: to, Registry: f.s.Registry})
}

func (f *fixture) run(p *Plan) (Result, error) {
	return Run(context.Background(), f.ecs, f.env, p, RunOptions{Sleep: func(context.Context, time.Duration) error { return nil }})
}

func (f *fixture) live() inspect.Revision {
	f.t.Helper()
	st, err := inspect.GetStatus(context.Background(), inspect.API{ECS: f.moto}, f.env)
	if err != nil {
		f.t.Fatal(err)
	}
	return st.Live
}

func sum(m map[string]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}

const (
	commitA = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
	commitB = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
	commitC = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"
)

func TestStackRollbackToPrevious(t *testing.T) {
	f := newFixture(t, 100)
	revA, pa := f.deployCommit(commitA)
	revB, _ := f.deployCommit(commitB)

	f.sim.ResetCalls()
	p, err := f.plan("")
	if err != nil {
		t.Fatal(err)
	}
	if calls := f.sim.Calls(); sum(calls) > 5 {
		t.Errorf("planning a rollback to the previous revision made %d AWS calls (%v); with UpdateService it must stay <= 6", sum(calls), calls)
	}
	if p.Target.ARN != revA || p.Live.ARN != revB || p.Tag != commitA || p.Register != nil || p.Unchanged {
		t.Fatalf("plan: target %s live %s tag %s register %v", p.Target.ARN, p.Live.ARN, p.Tag, p.Register != nil)
	}
	if p.Images["django"] != f.s.Registry+"/"+f.n.BackendRepo+"@"+pa.django {
		t.Errorf("images: %v", p.Images)
	}
	res, err := f.run(p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != "deployed" || res.TaskDefinitionARN != revA || res.Registered || res.Verification == nil || res.Verification.Tasks == 0 {
		t.Fatalf("result: %+v", res)
	}
	if got := f.live(); got.ARN != revA {
		t.Fatalf("live after rollback: %s, want %s", got.ARN, revA)
	}
	if c := f.sim.Calls(); c["ecs:RegisterTaskDefinition"] != 0 || c["ecs:DeregisterTaskDefinition"] != 0 {
		t.Errorf("a rollback to an existing revision registered or deregistered: %v", c)
	}
}

func TestStackRollbackTo(t *testing.T) {
	f := newFixture(t, 100)
	revA, _ := f.deployCommit(commitA)
	revB, _ := f.deployCommit(commitB)
	pc := f.pushCommit(commitC) // pushed, never deployed

	for _, to := range []string{commitA, commitA[:7], commitA[:12]} {
		p, err := f.plan(to)
		if err != nil {
			t.Fatalf("--to %s: %v", to, err)
		}
		if p.Target.ARN != revA || p.Register != nil || p.Tag != commitA {
			t.Errorf("--to %s: target %s (want %s reused) register %v tag %s", to, p.Target.ARN, revA, p.Register != nil, p.Tag)
		}
	}
	p, err := f.plan(commitB)
	if err != nil || !p.Unchanged {
		t.Errorf("--to the live commit: unchanged %v, err %v", p != nil && p.Unchanged, err)
	}

	p, err = f.plan(commitC[:8])
	if err != nil {
		t.Fatal(err)
	}
	if p.Register == nil || p.Tag != commitC || !strings.Contains(p.Diff, pc.django) || !strings.Contains(p.Diff, pc.next) {
		t.Fatalf("--to a commit never deployed should render and register: tag %s register %v diff:\n%s", p.Tag, p.Register != nil, p.Diff)
	}
	res, err := f.run(p)
	if err != nil {
		t.Fatal(err)
	}
	live := f.live()
	if !res.Registered || live.ARN != res.TaskDefinitionARN || live.ARN == revA || live.ARN == revB ||
		live.Commit != commitC || live.Env != "stage" || live.Previous != revB {
		t.Fatalf("after --to C: result %+v, live %+v", res, live)
	}
	if d := live.Digests(); d["django"] != pc.django || d["next"] != pc.next {
		t.Errorf("live digests %v, want %+v", d, pc)
	}
	// Both earlier revisions are still there (nothing deregistered).
	for _, arn := range []string{revA, revB, f.initial} {
		r, err := inspect.DescribeRevision(context.Background(), f.moto, arn)
		if err != nil || r.Status != "ACTIVE" {
			t.Errorf("%s: status %s, err %v: a rollback must never deregister", arn, r.Status, err)
		}
	}
}

func TestStackAmbiguousAndUnknownTag(t *testing.T) {
	f := newFixture(t, 100)
	f.deployCommit(commitA)
	x1 := "abcdef0111111111111111111111111111111111"
	x2 := "abcdef0222222222222222222222222222222222"
	f.pushCommit(x1)
	f.pushCommit(x2)
	_, err := f.plan("abcdef0")
	if exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "ambiguous") || !strings.Contains(err.Error(), x1) || !strings.Contains(err.Error(), x2) {
		t.Fatalf("ambiguous prefix: exit %d, %v", exitcode.Of(err), err)
	}
	p, err := f.plan("abcdef02")
	if err != nil || p.Tag != x2 {
		t.Fatalf("a longer prefix should resolve: %v", err)
	}
	_, err = f.plan("0123456789")
	if exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "no tag is 0123456789") || !strings.Contains(err.Error(), commitA) {
		t.Fatalf("unknown tag: exit %d, %v", exitcode.Of(err), err)
	}
}

func TestStackExpiredImage(t *testing.T) {
	f := newFixture(t, 100)
	_, pa := f.deployCommit(commitA)
	f.deployCommit(commitB)
	f.remove(f.n.BackendRepo, pa.django) // a lifecycle policy expired A's django image

	f.sim.ResetCalls()
	_, err := f.plan("")
	if exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "gone from the registry") ||
		!strings.Contains(err.Error(), f.n.BackendRepo+" no longer holds "+pa.django) || !strings.Contains(err.Error(), "Nearest tags that still have every image: "+commitB) {
		t.Fatalf("rollback to a revision whose image expired: exit %d, %v", exitcode.Of(err), err)
	}
	if c := f.sim.Calls(); c["ecs:UpdateService"] != 0 || c["ecs:RegisterTaskDefinition"] != 0 {
		t.Errorf("an expired image must change nothing: %v", c)
	}
	_, err = f.plan(commitA[:7])
	if exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "gone from the registry") || !strings.Contains(err.Error(), commitB) {
		t.Fatalf("--to an expired tag: exit %d, %v", exitcode.Of(err), err)
	}
}

func TestStackNothingRecorded(t *testing.T) {
	f := newFixture(t, 100)
	_, err := f.plan("")
	if exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "not deployed by ctjdeploy") || !strings.Contains(err.Error(), "--to TAG") {
		t.Fatalf("live revision registered outside ctjdeploy: exit %d, %v", exitcode.Of(err), err)
	}
	// After one deploy, the previous is the outside revision, which names its
	// images by the mutable tag :initial in ctjdeploy's repositories: ECS
	// would run whatever that tag points at now, so rollback refuses it, even
	// once the tag exists, and points at --to.
	f.deployCommit(commitA)
	f.push(f.n.BackendRepo, teststack.InitialTag)
	f.push(f.n.FrontendRepo, teststack.InitialTag)
	_, err = f.plan("")
	if exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), `by the mutable tag "`+teststack.InitialTag+`"`) || !strings.Contains(err.Error(), "--to COMMIT") {
		t.Fatalf("rollback to a revision naming images by a mutable tag: exit %d, %v", exitcode.Of(err), err)
	}
	// --to that tag renders a revision pinned by digest instead.
	p, err := f.plan(teststack.InitialTag)
	if err != nil || p.Register == nil || !strings.Contains(aws.ToString(p.Register.ContainerDefinitions[1].Image)+aws.ToString(p.Register.ContainerDefinitions[0].Image), "@sha256:") {
		t.Fatalf("--to %s: %v %+v", teststack.InitialTag, err, p)
	}
}

func TestStackRollbackFails(t *testing.T) {
	f := newFixture(t, 100)
	revA, _ := f.deployCommit(commitA)
	revB, _ := f.deployCommit(commitB)
	f.sim.SetScenario(f.n.Cluster, f.n.Service, ecssim.Rollback)
	p, err := f.plan("")
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.run(p)
	if exitcode.Of(err) != exitcode.RolledBack {
		t.Fatalf("exit %d, want 3: %v", exitcode.Of(err), err)
	}
	msg := err.Error()
	for _, w := range []string{"the rollback to " + ecsread.ShortARN(revA) + " failed", "what runs now: " + ecsread.ShortARN(revB), "commit " + commitB[:12], "the revision live before this rollback"} {
		if !strings.Contains(msg, w) {
			t.Errorf("message lacks %q:\n%s", w, msg)
		}
	}
	if res.NowRunning == "" || res.Outcome != "rolled-back" {
		t.Errorf("result: %+v", res)
	}
}

func TestStackDataGuardRefuses(t *testing.T) {
	f := newFixture(t, 200) // two postgres tasks would overlap on the shared volume
	f.deployCommit(commitA)
	f.deployCommit(commitB)
	p, err := f.plan("")
	if err != nil {
		t.Fatal(err)
	}
	f.sim.ResetCalls()
	_, err = f.run(p)
	if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "data guard") {
		t.Fatalf("exit %d, want 5: %v", exitcode.Of(err), err)
	}
	if c := f.sim.Calls(); c["ecs:UpdateService"] != 0 {
		t.Errorf("a refused rollback updated the service: %v", c)
	}
}

// rollback while a deployment is in flight: ctjdeploy stops it with
// StopServiceDeployment (ROLLBACK) and follows ECS's rollback to the
// revision live before; nothing is registered, the service runs A again.
func TestStackRollbackInFlight(t *testing.T) {
	f := newFixture(t, 100, func(o *ecssim.Options) { o.Polls = 30; o.Step = 60 * time.Millisecond })
	revA, _ := f.deployCommit(commitA)
	ctx := context.Background()
	pb := f.pushCommit(commitB)
	in := teststack.ExampleTaskDefinition(f.n, f.s.Registry, "x")
	in.ContainerDefinitions[0].Image = aws.String(f.s.Registry + "/" + f.n.FrontendRepo + "@" + pb.next)
	in.ContainerDefinitions[1].Image = aws.String(f.s.Registry + "/" + f.n.BackendRepo + "@" + pb.django)
	revB, err := rollout.Register(ctx, f.moto, in, rollout.RegisterTags{Commit: commitB, Env: "stage", Previous: revA})
	if err != nil {
		t.Fatal(err)
	}
	idB, _, err := rollout.Update(ctx, f.ecs, f.n.Cluster, f.n.Service, revB, false)
	if err != nil {
		t.Fatal(err)
	}
	f.sim.ResetCalls()
	p, err := f.plan("")
	if err != nil {
		t.Fatal(err)
	}
	if p.Stop == "" || p.StopDeploymentID != idB || p.Target.ARN != revA || !strings.Contains(p.Why, "StopServiceDeployment") {
		t.Fatalf("plan while %s rolls out: stop %q (%s) target %s why %q", idB, p.Stop, p.StopDeploymentID, p.Target.ARN, p.Why)
	}
	var b strings.Builder
	if err := WritePlan(&b, p); err != nil || !strings.Contains(b.String(), "stop:") {
		t.Errorf("plan text: %v\n%s", err, b.String())
	}
	res, err := f.run(p)
	if err != nil {
		t.Fatalf("rollback in flight: %v", err)
	}
	if res.Outcome != "deployed" || res.TaskDefinitionARN != revA || res.Registered || res.Verification == nil || res.Verification.Tasks == 0 {
		t.Fatalf("result: %+v", res)
	}
	if got := f.sim.Current(f.n.Cluster, f.n.Service); got != revA {
		t.Errorf("after stopping %s the service runs %s, want %s", idB, got, revA)
	}
	c := f.sim.Calls()
	if c["ecs:StopServiceDeployment"] != 1 || c["ecs:UpdateService"] != 0 || c["ecs:RegisterTaskDefinition"] != 0 {
		t.Errorf("calls: %v (want one StopServiceDeployment, no UpdateService, no register)", c)
	}
}
