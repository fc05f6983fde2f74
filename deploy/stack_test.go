package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/build"
	"github.com/hackforla/ctjdeploy/deploy/rollout"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
	"github.com/hackforla/ctjdeploy/internal/ecssim"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/internal/taskrun"
	"github.com/hackforla/ctjdeploy/internal/teststack"
	"github.com/hackforla/ctjdeploy/push"
)

// fixture is a test's own environment (cluster, service, family, two ECR
// repositories) shaped like the example, behind a rollout simulator.
type fixture struct {
	st    *teststack.Stack
	n     teststack.Names
	sim   *ecssim.Sim
	env   *config.Environment
	deps  Deps
	moto  *ecs.Client
	motoR *ecr.Client
	git   string // a git repository with commits c[0] → c[1] → c[2]
	c     []string
}

func newFixture(t *testing.T, sc ecssim.Scenario, maxPercent int32, simOpts ...func(*ecssim.Options)) *fixture {
	st := teststack.Start(t)
	st.Setenv(t)
	n := teststack.NewNames(t)
	st.CreateResources(t, n)
	moto := st.ECS(t)
	st.SetMaximumPercent(t, n, maxPercent)
	so := ecssim.Options{Upstream: st.MotoEndpoint, Scenario: sc, Polls: 2}
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
	cfg := st.AWSConfig(t)
	cfg.BaseEndpoint = aws.String(srv.URL)

	ex := st.ExampleDir()
	dir := t.TempDir()
	tmpl, err := os.ReadFile(filepath.Join(ex, "stage", "ecs-task-def.json"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl = []byte(strings.Replace(string(tmpl), `"family": "civic-tech-jobs-fullstack-stage"`, `"family": "`+n.Family+`"`, 1))
	tpath := filepath.Join(dir, "ecs-task-def.json")
	if err := os.WriteFile(tpath, tmpl, 0o644); err != nil {
		t.Fatal(err)
	}
	env := &config.Environment{Name: "stage", Region: teststack.Region, Cluster: n.Cluster, Service: n.Service, TaskDefinition: tpath,
		Registry: st.Registry, Terraform: &config.Terraform{Dir: filepath.Join(ex, "infra", "stage")},
		Images: map[string]*config.Image{
			"django": {Name: "django", Repository: n.BackendRepo, Context: filepath.Join(ex, "backend"), Dockerfile: filepath.Join(ex, "stage", "django.dockerfile")},
			"next":   {Name: "next", Repository: n.FrontendRepo, Context: filepath.Join(ex, "frontend"), Dockerfile: filepath.Join(ex, "stage", "next.dockerfile")},
		}}
	pusher, err := push.New(context.Background(), cfg, push.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pusher.Close() })
	b, err := build.NewDocker(build.WithCacheConfig(pusher.ImageConfig)) // as cmd wires it
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, n: n, sim: sim, env: env, moto: moto, motoR: st.ECR(t),
		deps: Deps{ECS: ecs.NewFromConfig(cfg), Builder: oneBuildAtATime{b}, Pusher: pusher, Registry: st.Registry}}
	f.git, f.c = gitRepo(t)
	return f
}

// buildMus make the tests of this binary, which run side by side, build
// each image (by name: django, next) one at a time. They build the same
// Dockerfiles from the same contexts with --cache-from their own
// repositories, and the engine's BuildKit merges the identical steps of
// concurrent builds; side by side, their cache imports failed ("401
// Unauthorized" on the cache manifest, then "invalid incomplete links",
// which build.Docker now answers by building once more without the
// cache). A deploy's own two builds, of different Dockerfiles, still run
// side by side.
var buildMus sync.Map // image name → *sync.Mutex

type oneBuildAtATime struct{ build.Builder }

func (b oneBuildAtATime) Build(ctx context.Context, s build.Spec) (build.Image, error) {
	mu, _ := buildMus.LoadOrStore(s.Name, new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	return b.Builder.Build(ctx, s)
}

func gitRepo(t *testing.T) (string, []string) {
	dir := t.TempDir()
	g := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	g("init", "-q", "-b", "main")
	var c []string
	for i := 0; i < 3; i++ {
		g("commit", "-q", "--allow-empty", "-m", fmt.Sprintf("%d %s", i, t.Name())) // a test of its own commits: no two tests build one engine tag
		c = append(c, g("rev-parse", "HEAD"))
	}
	return dir, c
}

func (f *fixture) opts(tag string) Options {
	return Options{Env: f.env, Tag: tag, GitDir: f.git, Timeout: 20 * time.Second, Interval: 100 * time.Millisecond}
}

// snapshot is everything a deploy could write: the family's revisions and
// their tags, the service, the ECR images, and the registry's tags.
func (f *fixture) snapshot(t *testing.T) string {
	ctx := context.Background()
	var b strings.Builder
	lt, err := f.moto.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(f.n.Family)})
	if err != nil {
		t.Fatal(err)
	}
	for _, arn := range lt.TaskDefinitionArns {
		d, err := f.moto.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn), Include: []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags}})
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(d.Tags)
		fmt.Fprintf(&b, "td %s %s\n", arn, j)
	}
	ds, err := f.moto.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(f.n.Cluster), Services: []string{f.n.Service}})
	if err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(ds.Services)
	fmt.Fprintf(&b, "svc %s\n", j)
	for _, repo := range []string{f.n.BackendRepo, f.n.FrontendRepo} {
		li, err := f.motoR.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String(repo)})
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{}
		for _, id := range li.ImageIds {
			ids = append(ids, aws.ToString(id.ImageDigest)+":"+aws.ToString(id.ImageTag))
		}
		sort.Strings(ids)
		fmt.Fprintf(&b, "ecr %s %v\n", repo, ids)
		req, _ := http.NewRequest("GET", "http://"+f.st.Registry+"/v2/"+repo+"/tags/list", nil)
		req.SetBasicAuth(teststack.RegistryUser, teststack.RegistryPassword)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(&b, "registry %s %d %s\n", repo, resp.StatusCode, body)
	}
	return b.String()
}

var writeOps = []string{"ecs:RegisterTaskDefinition", "ecs:UpdateService", "ecs:TagResource", "ecr:PutImage", "ecr:CreateRepository", "ecr:BatchDeleteImage"}

func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel() // its own cluster, service, repositories and simulator (TestMain: the stack's environment)
	f := newFixture(t, ecssim.Success, 100)
	before := f.snapshot(t)
	o := f.opts(f.c[2])
	o.DryRun = true
	res, err := Run(context.Background(), o, f.deps)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	after := f.snapshot(t)
	if before != after {
		t.Fatalf("the dry run changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	calls := f.sim.Calls()
	for _, op := range writeOps {
		if calls[op] != 0 {
			t.Errorf("dry run called %s", op)
		}
	}
	if res.Outcome != "dry-run" || !res.Register || !res.Update || res.Diff == "" || len(res.Images) != 2 || res.Registered || res.DeploymentID != "" {
		t.Errorf("dry run result: %+v", res)
	}
	for _, im := range res.Images {
		if im.MissingBytes == 0 || !strings.HasPrefix(im.Digest, "sha256:") {
			t.Errorf("push plan of %s into empty repositories: %+v", im.Name, im)
		}
	}
	if !strings.Contains(res.Diff, "@"+res.Images[0].Digest) {
		t.Errorf("diff does not show the pinned digest:\n%s", res.Diff)
	}
}

func TestDeployThenUnchangedRedeploy(t *testing.T) {
	t.Parallel() // its own cluster, service, repositories and simulator (TestMain: the stack's environment)
	f := newFixture(t, ecssim.Success, 100)
	ctx := context.Background()
	res, err := Run(ctx, f.opts(f.c[1]), f.deps)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	calls := f.sim.Calls()
	total := 0
	for _, n := range calls {
		total += n
	}
	t.Logf("AWS calls excluding %d polls: %d %v", f.sim.Polls(), total, calls)
	t.Logf("phase timings: %v", res.Timings)
	if total > 12 {
		t.Errorf("%d AWS calls per deploy, budget 12: %v", total, calls)
	}
	if n := calls["ecr:DescribeRepositories"]; n > len(f.env.Images) {
		t.Errorf("ecr:DescribeRepositories called %d times for %d repositories: plan and push should ask once each", n, len(f.env.Images))
	}
	if res.Outcome != "deployed" || !res.Registered || res.DeploymentID == "" || res.Verification == nil || res.Verification.Tasks != 1 {
		t.Fatalf("result: %+v", res)
	}
	var uploaded int64
	for _, im := range res.Images {
		uploaded += im.Uploaded
	}
	if uploaded == 0 {
		t.Error("first deploy uploaded nothing")
	}
	phases := map[string]bool{}
	for _, tm := range res.Timings {
		phases[tm.Phase] = true
	}
	for _, p := range []string{"live", "terraform", "validate", "build", "push-plan", "render", "plan", "push", "register", "update", "rollout", "verify"} {
		if !phases[p] {
			t.Errorf("no timing for phase %s: %v", p, res.Timings)
		}
	}
	live, err := rollout.ReadLive(ctx, f.moto, f.n.Cluster, f.n.Service)
	if err != nil {
		t.Fatal(err)
	}
	if live.ARN() != res.TaskDefARN || live.Commit() != f.c[1] || live.Tags[ecsread.TagEnv] != "stage" || live.Tags[ecsread.TagPrevious] != res.LiveARN {
		t.Errorf("live %s tags %v after deploying %s", live.ARN(), live.Tags, res.TaskDefARN)
	}

	// The same commit again (a second `make demo`): the images are the same
	// (a new commit would change their revision label): nothing to upload,
	// no new revision, no update.
	f.sim.ResetCalls()
	res2, err := Run(ctx, f.opts(f.c[1]), f.deps)
	if err != nil {
		t.Fatalf("redeploy: %v", err)
	}
	var up2 int64
	for _, im := range res2.Images {
		up2 += im.Uploaded
	}
	if res2.Outcome != "unchanged" || res2.Registered || up2 != 0 || res2.TaskDefARN != res.TaskDefARN {
		t.Errorf("unchanged redeploy: outcome %s registered %v uploaded %d arn %s\n%s", res2.Outcome, res2.Registered, up2, res2.TaskDefARN, res2.Diff)
	}
	if c := f.sim.Calls(); c["ecs:RegisterTaskDefinition"]+c["ecs:UpdateService"] != 0 {
		t.Errorf("unchanged redeploy wrote: %v", c)
	}

	t.Logf("unchanged redeploy: AWS calls %v", f.sim.Calls())
}

func verdict(res *Result, guard string) rollout.Outcome {
	for _, v := range res.Guards {
		if v.Guard == guard {
			return v.Outcome
		}
	}
	return ""
}

// pointServiceAt registers a revision tagged with commit and makes it live
// (directly in moto), as an earlier deploy of that commit would have.
func (f *fixture) pointServiceAt(t *testing.T, commit string) {
	ctx := context.Background()
	in := teststack.ExampleTaskDefinition(f.n, f.st.Registry, "other")
	in.Tags = []ecstypes.Tag{{Key: aws.String(ecsread.TagCommit), Value: aws.String(commit)}}
	out, err := f.moto.RegisterTaskDefinition(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.moto.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(f.n.Cluster), Service: aws.String(f.n.Service), TaskDefinition: out.TaskDefinition.TaskDefinitionArn}); err != nil {
		t.Fatal(err)
	}
}

func TestStaleCommitGuard(t *testing.T) {
	t.Parallel() // its own cluster, service, repositories and simulator (TestMain: the stack's environment)
	f := newFixture(t, ecssim.Success, 100)
	f.pointServiceAt(t, f.c[2])
	o := f.opts(f.c[1])
	o.DryRun = true
	res, err := Run(context.Background(), o, f.deps)
	if exitcode.Of(err) != exitcode.Refused || res.Outcome != "refused" || verdict(res, rollout.GuardStaleCommit) != rollout.Refuse {
		t.Fatalf("older commit: %v %+v", err, res.Guards)
	}
	before := f.snapshot(t)
	o = f.opts(f.c[1])
	_, err = Run(context.Background(), o, f.deps)
	if exitcode.Of(err) != exitcode.Refused {
		t.Fatalf("older commit, not dry: %v", err)
	}
	if after := f.snapshot(t); after != before {
		t.Fatal("a refused deploy changed state")
	}
	o.Force, o.DryRun = true, true
	res, err = Run(context.Background(), o, f.deps)
	if err != nil || verdict(res, rollout.GuardStaleCommit) != rollout.Bypassed {
		t.Fatalf("older commit with --force: %v %+v", err, res.Guards)
	}
}

func TestDataGuardRefusesTwoHundredPercent(t *testing.T) {
	t.Parallel() // its own cluster, service, repositories and simulator (TestMain: the stack's environment)
	f := newFixture(t, ecssim.Success, 200)
	o := f.opts(f.c[2])
	o.Force = true
	before := f.snapshot(t)
	res, err := Run(context.Background(), o, f.deps)
	if exitcode.Of(err) != exitcode.Refused || verdict(res, rollout.GuardData) != rollout.Refuse || !strings.Contains(err.Error(), "maximumPercent to 100") {
		t.Fatalf("200%% with a shared postgres volume, --force: %v", err)
	}
	if f.snapshot(t) != before {
		t.Fatal("a refused deploy changed state")
	}
}

func TestInProgressGuard(t *testing.T) {
	t.Parallel() // its own cluster, service, repositories and simulator (TestMain: the stack's environment)
	f := newFixture(t, ecssim.InProgress, 100)
	res, err := Run(context.Background(), f.opts(f.c[2]), f.deps)
	if exitcode.Of(err) != exitcode.Refused || verdict(res, rollout.GuardInProgress) != rollout.Refuse {
		t.Fatalf("deployment in progress: %v %+v", err, res.Guards)
	}
	o := f.opts(f.c[2])
	o.Force = true
	res, err = Run(context.Background(), o, f.deps)
	if err != nil || res.Outcome != "deployed" || verdict(res, rollout.GuardInProgress) != rollout.Bypassed {
		t.Fatalf("--force over a deployment in progress: %v %+v", err, res)
	}
}

func TestRolledBackExit3AndJSON(t *testing.T) {
	t.Parallel() // its own cluster, service, repositories and simulator (TestMain: the stack's environment)
	f := newFixture(t, ecssim.Rollback, 100)
	var rec report.Recorder
	o := f.opts(f.c[2])
	o.Interval = time.Second
	o.Reporter = &rec
	res, err := Run(context.Background(), o, f.deps)
	if exitcode.Of(err) != exitcode.RolledBack || res.Outcome != "rolled-back" || len(res.Stopped) == 0 {
		t.Fatalf("rollback scenario: %v %+v", err, res)
	}
	lag := time.Since(f.sim.FailedAt(f.n.Cluster, f.n.Service))
	t.Logf("exit %s after the simulator reported the failure (poll interval %s)", lag, o.Interval)
	if lag > o.Interval {
		t.Errorf("exit 3 came %s after the failure was visible, more than one poll interval", lag)
	}
	// The service is back on the revision that was live before, at moto
	// itself too (what the next run, or status, reads).
	out, err := f.moto.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String(f.n.Cluster), Services: []string{f.n.Service}})
	if err != nil || len(out.Services) != 1 {
		t.Fatalf("DescribeServices at moto: %v", err)
	}
	if got := aws.ToString(out.Services[0].TaskDefinition); got != res.LiveARN || got == res.TaskDefARN {
		t.Errorf("after the rollback moto's service runs %s; want the previous revision %s (not %s)", got, res.LiveARN, res.TaskDefARN)
	}
	b, _ := json.Marshal(res)
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tag", "images", "taskDefinitionArn", "registered", "deploymentId", "outcome", "timings", "guards", "diff", "stoppedTasks", "error"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("JSON document lacks %q: %s", k, b)
		}
	}
	im := doc["images"].([]any)[0].(map[string]any)
	for _, k := range []string{"ref", "digest", "bytesUploaded", "bytesReused"} {
		if _, ok := im[k]; !ok {
			t.Errorf("JSON image lacks %q: %v", k, im)
		}
	}
}

func TestWrongDigestFails(t *testing.T) {
	t.Parallel() // its own cluster, service, repositories and simulator (TestMain: the stack's environment)
	f := newFixture(t, ecssim.WrongDigest, 100)
	res, err := Run(context.Background(), f.opts(f.c[2]), f.deps)
	if exitcode.Of(err) != exitcode.Failed || res.Outcome != "failed" || !strings.Contains(err.Error(), "not the pushed") {
		t.Fatalf("tasks running other digests: %v", err)
	}
}

func TestStuckTimesOut(t *testing.T) {
	t.Parallel() // its own cluster, service, repositories and simulator (TestMain: the stack's environment)
	f := newFixture(t, ecssim.Stuck, 100)
	o := f.opts(f.c[2])
	o.Timeout = time.Second
	res, err := Run(context.Background(), o, f.deps)
	if exitcode.Of(err) != exitcode.TimedOut || res.Outcome != "timed-out" {
		t.Fatalf("stuck: %v", err)
	}
	if !reflect.DeepEqual(res.Registered, true) {
		t.Error("the stuck deploy registered nothing")
	}
}

// countingBuilder counts the builds that reach the real builder.
type countingBuilder struct {
	build.Builder
	mu sync.Mutex
	n  int
}

func (c *countingBuilder) Build(ctx context.Context, s build.Spec) (build.Image, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.Builder.Build(ctx, s)
}

// Invalid input, a missing service and the data guard stop the run before
// anything is built: a CI deploy naming the old service, or a template
// needing an output Terraform lacks, fails in a second, not after a build.
func TestFailFastBeforeAnyBuild(t *testing.T) {
	t.Parallel() // its own cluster, service, repositories and simulator (TestMain: the stack's environment)
	cases := []struct {
		name       string
		maxPercent int32
		edit       func(f *fixture)
		want       int
		msg        string
	}{
		{"missing output", 100, func(f *fixture) {
			b, _ := os.ReadFile(f.env.TaskDefinition)
			os.WriteFile(f.env.TaskDefinition, []byte(strings.Replace(string(b), `{{ tf "sql_host" }}`, `{{ tf "no_such_output" }}`, 1)), 0o644)
		}, exitcode.Invalid, "no_such_output"},
		{"template error", 100, func(f *fixture) {
			b, _ := os.ReadFile(f.env.TaskDefinition)
			os.WriteFile(f.env.TaskDefinition, []byte(strings.Replace(string(b), `{{ image "django" }}`, `{{ image "djang" }}`, 1)), 0o644)
		}, exitcode.Invalid, "djang"},
		{"service missing", 100, func(f *fixture) { f.env.Service = "civic-tech-jobs-fs-stage-gone" }, exitcode.Invalid, "civic-tech-jobs-fs-stage-gone"},
		{"data guard", 200, func(f *fixture) {}, exitcode.Refused, "data guard"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, ecssim.Success, c.maxPercent)
			c.edit(f)
			cb := &countingBuilder{Builder: f.deps.Builder}
			f.deps.Builder = cb
			_, err := Run(context.Background(), f.opts(f.c[1]), f.deps)
			if exitcode.Of(err) != c.want {
				t.Fatalf("exit %d, want %d: %v", exitcode.Of(err), c.want, err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error does not name %q: %v", c.msg, err)
			}
			if cb.n != 0 {
				t.Errorf("%d images were built before the run failed", cb.n)
			}
		})
	}
}

// A stale commit is refused before anything is built: the live revision
// came from a newer commit, so this run would deploy, and its verdict cannot
// change after a build.
func TestStaleCommitRefusedBeforeBuild(t *testing.T) {
	t.Parallel() // its own cluster, service, repositories and simulator (TestMain: the stack's environment)
	f := newFixture(t, ecssim.Success, 100)
	if _, err := Run(context.Background(), f.opts(f.c[2]), f.deps); err != nil {
		t.Fatalf("first deploy: %v", err)
	}
	cb := &countingBuilder{Builder: f.deps.Builder}
	f.deps.Builder = cb
	res, err := Run(context.Background(), f.opts(f.c[1]), f.deps)
	if exitcode.Of(err) != exitcode.Refused || verdict(res, rollout.GuardStaleCommit) != rollout.Refuse {
		t.Fatalf("stale commit: exit %d, %v", exitcode.Of(err), err)
	}
	if cb.n != 0 {
		t.Errorf("%d images were built before the stale commit was refused", cb.n)
	}
}

// A service under the CODE_DEPLOY controller, or with a strategy ctjdeploy
// does not follow, is refused with exit 2 before any build, push or
// register: moto's and the registry's state stay exactly as they were.
func TestRefusesWhatCannotBeFollowed(t *testing.T) {
	t.Parallel() // its own cluster, service, repositories and simulator (TestMain: the stack's environment)
	for _, c := range []struct {
		name string
		cfg  ecssim.ServiceConfig
		want string
	}{
		{"code-deploy", ecssim.ServiceConfig{Controller: "CODE_DEPLOY", CircuitBreaker: true, Rollback: true, MaximumPercent: 100}, "CODE_DEPLOY deployment controller"},
		{"external", ecssim.ServiceConfig{Controller: "EXTERNAL", CircuitBreaker: true, Rollback: true, MaximumPercent: 100}, "EXTERNAL"},
		{"blue-green", ecssim.ServiceConfig{Strategy: "BLUE_GREEN", BakeTimeMinutes: 5, CircuitBreaker: true, Rollback: true, MaximumPercent: 100}, "BLUE_GREEN strategy (bake time 5 min)"},
		{"canary", ecssim.ServiceConfig{Strategy: "CANARY", CircuitBreaker: true, Rollback: true, MaximumPercent: 100}, "CANARY strategy"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, ecssim.Success, 100)
			f.sim.Configure(f.n.Cluster, f.n.Service, c.cfg)
			before := f.snapshot(t)
			for _, dry := range []bool{true, false} {
				o := f.opts(f.c[2])
				o.DryRun = dry
				res, err := Run(context.Background(), o, f.deps)
				if exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "Nothing was built") {
					t.Fatalf("dry-run %v: %v (exit %d), want exit 2 naming %q", dry, err, exitcode.Of(err), c.want)
				}
				if len(res.Images) != 0 || res.Registered {
					t.Errorf("dry-run %v: built or registered before refusing: %+v", dry, res)
				}
			}
			if after := f.snapshot(t); after != before {
				t.Errorf("a refused deploy changed state:\nbefore %s\nafter %s", before, after)
			}
			for _, op := range writeOps {
				if n := f.sim.Calls()[op]; n != 0 {
					t.Errorf("%s called %d times", op, n)
				}
			}
		})
	}
}

// A rerun of the commit whose deployment is still running follows that
// deployment to its end instead of reporting "unchanged".
func TestRerunFollowsTheRolloutInProgress(t *testing.T) {
	t.Parallel() // its own cluster, service, repositories and simulator (TestMain: the stack's environment)
	f := newFixture(t, ecssim.Success, 100, func(o *ecssim.Options) { o.Polls = 20; o.Step = 100 * time.Millisecond })
	o := f.opts(f.c[2])
	o.NoWait = true
	first, err := Run(context.Background(), o, f.deps)
	if err != nil || first.Outcome != "updated" {
		t.Fatalf("first run (--no-wait): %v %+v", err, first)
	}
	rerun, err := Run(context.Background(), f.opts(f.c[2]), f.deps)
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if rerun.Outcome != "deployed" || !rerun.Following || rerun.DeploymentID != first.DeploymentID || rerun.Registered || rerun.Verification == nil {
		t.Fatalf("rerun: outcome %s following %v deployment %s (first %s) registered %v verification %+v",
			rerun.Outcome, rerun.Following, rerun.DeploymentID, first.DeploymentID, rerun.Registered, rerun.Verification)
	}
	if cur := f.sim.Current(f.n.Cluster, f.n.Service); cur != first.TaskDefARN {
		t.Errorf("service runs %s, want %s", cur, first.TaskDefARN)
	}
}

// A smoke check that fails after a completed rollout rolls the service back
// to the revision live before and exits 3 once that rollback completed.
func TestSmokeFailureRollsBack(t *testing.T) {
	t.Parallel() // its own cluster, service, repositories and simulator (TestMain: the stack's environment)
	f := newFixture(t, ecssim.Success, 100)
	good, err := Run(context.Background(), f.opts(f.c[1]), f.deps)
	if err != nil {
		t.Fatalf("first deploy: %v", err)
	}
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(`{"error":"django cannot reach its database"}`))
	}))
	defer srv.Close()
	f.env.Smoke = []config.Smoke{{URL: srv.URL + "/api/healthcheck", Status: 200, Contains: "uptime", Timeout: 800 * time.Millisecond}}
	f.deps.SmokeInterval = 100 * time.Millisecond
	res, err := Run(context.Background(), f.opts(f.c[2]), f.deps)
	if exitcode.Of(err) != exitcode.RolledBack || res.SmokeRollback == "" || len(res.Smoke) != 1 || res.Smoke[0].OK {
		t.Fatalf("failed smoke: %v (exit %d) %+v", err, exitcode.Of(err), res.Smoke)
	}
	for _, want := range []string{"502", "django cannot reach its database", "rolled service", shortARN(good.TaskDefARN)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%v", want, err)
		}
	}
	if cur := f.sim.Current(f.n.Cluster, f.n.Service); cur != good.TaskDefARN || cur == res.TaskDefARN {
		t.Errorf("after the smoke rollback the service runs %s, want %s", cur, good.TaskDefARN)
	}
	if n := hits.Load(); n < 2 {
		t.Errorf("the smoke URL was tried %d times", n)
	}
	// --no-smoke: the same deploy goes through.
	o := f.opts(f.c[2])
	o.NoSmoke = true
	if res, err := Run(context.Background(), o, f.deps); err != nil || res.Smoke != nil {
		t.Fatalf("--no-smoke: %v %+v", err, res.Smoke)
	}
}

// With the simulator's tasks running as real containers on the engine: the
// example deploys (its three containers up), then a commit whose django
// exits 1 at start really crashes; the breaker rolls it back (exit 3), the
// message has the exit code and django's own last line from CloudWatch
// Logs, and the previous revision runs again, its containers up.
func TestRealContainersDeployThenBadCommit(t *testing.T) {
	t.Parallel() // its own cluster, service, repositories and simulator (TestMain: the stack's environment)
	if testing.Short() {
		t.Skip("needs the stack")
	}
	teststack.Start(t).Setenv(t) // DOCKER_HOST for the engine
	label := "org.ctjdeploy.ecssim.test=" + strings.ToLower(t.Name())
	eng, err := taskrun.NewEngine(taskrun.EngineOptions{RegistryUser: teststack.RegistryUser, RegistryPassword: teststack.RegistryPassword, Label: label, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, ecssim.Success, 100, func(o *ecssim.Options) { o.Engine = eng })
	t.Cleanup(func() {
		ctx := context.Background()
		_ = eng.Cleanup(ctx)
		_, _ = eng.RemoveSharedVolumes(ctx, f.n.Cluster+"/"+f.n.Service)
		eng.Close()
	})
	f.deps.Logs = cloudwatchlogs.NewFromConfig(f.st.AWSConfig(t), func(o *cloudwatchlogs.Options) { o.BaseEndpoint = f.deps.ECS.(*ecs.Client).Options().BaseEndpoint })
	o := f.opts(f.c[1])
	o.Timeout = 2 * time.Minute
	good, err := Run(context.Background(), o, f.deps)
	if err != nil || good.Outcome != "deployed" {
		t.Fatalf("first deploy with real containers: %v %+v", err, good.Outcome)
	}
	running := func() []string {
		out, err := exec.Command("/usr/bin/docker", "ps", "--filter", "label="+label, "--format", "{{.Names}}").Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Fields(string(out))
	}
	if names := running(); len(names) != 4 { // sandbox + next, django, pgdb
		t.Fatalf("containers running after the deploy: %v, want the task's three and its sandbox", names)
	}

	// The bad commit: django's entrypoint exits 1.
	bad := t.TempDir()
	src := f.env.Images["django"].Context
	if out, err := exec.Command("cp", "-r", src+"/.", bad).CombinedOutput(); err != nil {
		t.Fatalf("copying %s: %v %s", src, err, out)
	}
	ep := filepath.Join(bad, "entrypoint.sh")
	b, err := os.ReadFile(ep)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "hunter2-ecssim-secret"
	report.AddSecret(secret) // as a sensitive Terraform output would be
	b = []byte(strings.Replace(string(b), "set -eu\n", "set -eu\necho 'django.db.utils.OperationalError: could not connect to server' >&2\necho 'DATABASE_URL=postgres://ctj:"+secret+"@pgdb/ctj' >&2\nexit 1\n", 1))
	if err := os.WriteFile(ep, b, 0o755); err != nil {
		t.Fatal(err)
	}
	f.env.Images["django"].Context = bad
	o = f.opts(f.c[2])
	o.Timeout = 2 * time.Minute
	res, err := Run(context.Background(), o, f.deps)
	if exitcode.Of(err) != exitcode.RolledBack {
		t.Fatalf("bad commit: %v (exit %d), want 3", err, exitcode.Of(err))
	}
	for _, want := range []string{"django exit 1", "Essential container in task exited", "| django.db.utils.OperationalError: could not connect to server", "| DATABASE_URL=postgres://ctj:***@pgdb/ctj", "threshold of 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%v", want, err)
		}
	}
	doc, _ := json.Marshal(res)
	if strings.Contains(err.Error(), secret) || strings.Contains(string(doc), secret) || !strings.Contains(string(doc), `"logs":[`) {
		t.Errorf("the container's log lines leak the secret or are missing from the JSON document:\n%s", doc)
	}
	if cur := f.sim.Current(f.n.Cluster, f.n.Service); cur != good.TaskDefARN || cur == res.TaskDefARN {
		t.Errorf("after the rollback the service runs %s, want %s", cur, good.TaskDefARN)
	}
	// The rolled-back task's containers start in Docker's own time.
	teststack.Poll(30*time.Second, 200*time.Millisecond, func() bool { return len(running()) == 4 })
	if names := running(); len(names) != 4 {
		t.Errorf("containers running after the rollback: %v", names)
	}
}

// A smoke check that passes: exit 0, its result in the document. One that
// fails when the rollback it triggers fails too: exit 6.
func TestSmokePassesAndRollbackFailure(t *testing.T) {
	t.Parallel() // its own cluster, service, repositories and simulator (TestMain: the stack's environment)
	f := newFixture(t, ecssim.Success, 100)
	good, err := Run(context.Background(), f.opts(f.c[0]), f.deps)
	if err != nil {
		t.Fatalf("first deploy: %v", err)
	}
	var healthy atomic.Bool
	healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if healthy.Load() {
			_, _ = w.Write([]byte(`{"status":"ok","uptime":12}`))
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":"boom"}`))
	}))
	defer srv.Close()
	f.env.Smoke = []config.Smoke{{URL: srv.URL + "/api/healthcheck", Status: 200, Contains: "uptime", Timeout: 2 * time.Second}}
	f.deps.SmokeInterval = 100 * time.Millisecond
	res, err := Run(context.Background(), f.opts(f.c[1]), f.deps)
	if err != nil || len(res.Smoke) != 1 || !res.Smoke[0].OK || res.Smoke[0].Status != 200 || res.SmokeRollback != "" {
		t.Fatalf("passing smoke: %v %+v", err, res.Smoke)
	}
	// The next commit fails its smoke check, and the rollback to c[1]
	// fails too: the simulator's tasks fail from now on.
	healthy.Store(false)
	f.sim.SetScenario(f.n.Cluster, f.n.Service, ecssim.Success)
	var once sync.Once
	f.env.Smoke[0].Timeout = 700 * time.Millisecond
	rec := &scenarioOnSmoke{next: report.Discard, fire: func() { once.Do(func() { f.sim.SetScenario(f.n.Cluster, f.n.Service, ecssim.Fail) }) }}
	o := f.opts(f.c[2])
	o.Reporter = rec
	res, err = Run(context.Background(), o, f.deps)
	if exitcode.Of(err) != exitcode.NotRecovered || res.SmokeRollback == "" {
		t.Fatalf("smoke fails and so does its rollback: %v (exit %d) rollback %q", err, exitcode.Of(err), res.SmokeRollback)
	}
	for _, want := range []string{"500", "boom", "did not complete", "NOT back on a working revision"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%v", want, err)
		}
	}
	if cur := f.sim.Current(f.n.Cluster, f.n.Service); cur == good.TaskDefARN {
		t.Errorf("the service should not be back on a working revision, runs %s", cur)
	}
}

// scenarioOnSmoke calls fire when the smoke phase ends (so the simulator's
// scenario changes for the rollback deployment that follows).
type scenarioOnSmoke struct {
	next report.Reporter
	fire func()
}

func (s *scenarioOnSmoke) Report(e report.Event) {
	if e.Phase == "smoke" && e.Kind == report.PhaseEnd {
		s.fire()
	}
	s.next.Report(e)
}
