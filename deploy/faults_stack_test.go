package deploy

// The fault-injection suite: each case injects one fault into a real deploy
// on the local stack (moto behind the ECS simulator, the CNCF registry,
// dockerd) and checks the exit code and that the state left is whole. With
// CTJDEPLOY_RELIABILITY_OUT=FILE it writes the table it played to FILE as
// Markdown (docs/reliability.md is that output).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	"github.com/hackforla/ctjdeploy/build"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
	"github.com/hackforla/ctjdeploy/internal/ecssim"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/faults"
	"github.com/hackforla/ctjdeploy/internal/lease"
	"github.com/hackforla/ctjdeploy/internal/netclient"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/internal/teststack"
	"github.com/hackforla/ctjdeploy/push"
	"github.com/hackforla/ctjdeploy/tfvars"
)

// faultEnv is a fixture whose AWS calls go through a fault proxy in front
// of the simulator, and whose registry is a fault proxy in front of the
// stack's registry, with the tool's own client settings (netclient), the
// timeouts shortened.
type faultEnv struct {
	*fixture
	aws  *faults.Proxy
	reg  *faults.Proxy
	ssm  *ssm.Client // straight to moto, for the checks
	lock string
	// outsideTD is the revision an outside actor put the service on.
	outsideTD string
	// docker is a proxy in front of the stack's dockerd (DOCKER_HOST for
	// the case), nil unless the case asked for one.
	docker *faults.UnixProxy
	// pidFile holds the pid of a process the fault started (fake
	// terraform), which must be gone after the run.
	pidFile string
}

// dockerProxy puts a faults.UnixProxy between the tool (the docker CLI of
// build/ and the engine client of push/, both reading DOCKER_HOST) and the
// stack's dockerd, with cut rules.
func (e *faultEnv) dockerProxy(t *testing.T, cuts ...*faults.Cut) {
	host := os.Getenv("DOCKER_HOST")
	sock, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		t.Fatalf("DOCKER_HOST %q is not a unix socket", host)
	}
	e.docker = faults.NewUnixProxy(t, sock)
	e.docker.Add(cuts...)
	t.Setenv("DOCKER_HOST", e.docker.Host)
}

// fakeBinary writes an executable shell script named name and returns its
// path.
func fakeBinary(t *testing.T, name, script string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// processGone says whether the process whose pid is in pidFile has ended.
func processGone(pidFile string) []string {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return []string{"the fake process never ran: " + err.Error()}
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return []string{err.Error()}
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return []string{fmt.Sprintf("process %d is still there after the run (kill -0: %v)", pid, err)}
	}
	return nil
}

var (
	suiteTimeouts = netclient.Timeouts{Dial: 2 * time.Second, TLS: 2 * time.Second, ResponseHeader: 2 * time.Second, Total: 20 * time.Second}
	suiteBackoff  = remote.Backoff{Duration: 200 * time.Millisecond, Factor: 1.5, Jitter: 0.1, Steps: 8}
)

func newFaultEnv(t *testing.T, sc ecssim.Scenario) *faultEnv {
	f := newFixture(t, sc, 100)
	simURL := aws.ToString(f.deps.ECS.(*ecs.Client).Options().BaseEndpoint)
	ap := faults.NewProxy(t, strings.TrimPrefix(simURL, "http://"))
	rp := faults.NewProxy(t, f.st.Registry)
	cfg := f.st.AWSConfig(t)
	direct := cfg
	cfg.BaseEndpoint = aws.String("http://" + ap.Addr)
	cfg.HTTPClient = netclient.AWSHTTPClient(suiteTimeouts)
	cfg.Retryer = netclient.AWSRetryerBackoff(netclient.AWSMaxAttempts, 300*time.Millisecond)
	pusher, err := push.New(context.Background(), cfg, push.WithCacheDir(t.TempDir()), push.WithRetryBackoff(suiteBackoff),
		push.WithTimeouts(netclient.Timeouts{Dial: 2 * time.Second, TLS: 2 * time.Second, ResponseHeader: 2 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pusher.Close() })
	f.deps.ECS, f.deps.Pusher, f.deps.Registry, f.deps.SSM = ecs.NewFromConfig(cfg), pusher, rp.Addr, ssm.NewFromConfig(cfg)
	f.env.Registry = rp.Addr
	return &faultEnv{fixture: f, aws: ap, reg: rp, ssm: ssm.NewFromConfig(direct), lock: LockName(f.n.Cluster, f.n.Service)}
}

// wholeState is what the checks read after a run.
type wholeState struct {
	svcTD     string
	revisions []string
	envTag    map[string]string // repository → digest of tag ENV ("" absent)
	commitTag map[string]string // repository → digest of tag TAG
	lock      string            // the lock parameter's value ("" absent)
}

func (e *faultEnv) state(t *testing.T, tag string) wholeState {
	ctx := context.Background()
	st := wholeState{envTag: map[string]string{}, commitTag: map[string]string{}}
	ds, err := e.moto.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(e.n.Cluster), Services: []string{e.n.Service}})
	if err != nil || len(ds.Services) != 1 {
		t.Fatalf("DescribeServices at moto: %v", err)
	}
	st.svcTD = aws.ToString(ds.Services[0].TaskDefinition)
	lt, err := e.moto.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(e.n.Family)})
	if err != nil {
		t.Fatal(err)
	}
	st.revisions = lt.TaskDefinitionArns
	for _, repo := range []string{e.n.BackendRepo, e.n.FrontendRepo} {
		st.envTag[repo] = e.manifestDigest(t, repo, e.env.Name)
		st.commitTag[repo] = e.manifestDigest(t, repo, tag)
	}
	// The lock as its parameter's versions decide it (internal/lease):
	// "" when free (released, or never taken).
	ls, err := lease.Read(ctx, e.ssm, e.lock)
	if err != nil {
		t.Fatalf("reading the lock: %v", err)
	}
	if ls.Held {
		st.lock = fmt.Sprintf("held by %s (version %d)", ls.Holder, ls.Version)
	}
	return st
}

// manifestDigest is the digest tag names in repo at the stack's registry
// itself (not through the fault proxy), "" if the tag does not exist.
func (e *faultEnv) manifestDigest(t *testing.T, repo, tag string) string {
	req, _ := http.NewRequest(http.MethodHead, "http://"+e.st.Registry+"/v2/"+repo+"/manifests/"+tag, nil)
	req.SetBasicAuth(teststack.RegistryUser, teststack.RegistryPassword)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return ""
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD %s:%s: %d", repo, tag, resp.StatusCode)
	}
	return resp.Header.Get("Docker-Content-Digest")
}

// faultCase is one fault of the suite.
type faultCase struct {
	name     string // the fault, as the table shows it
	scenario ecssim.Scenario
	// setup injects the fault; it returns how many faults it planned to
	// inject when the proxies do not count them (simulator faults), else 0.
	setup func(t *testing.T, e *faultEnv, o *Options, cancel context.CancelFunc) int
	want  int  // expected exit code (130 for an injected SIGINT)
	sig   bool // the fault is a SIGINT: the CLI exits 130 (main.go: a received signal decides the exit code)
	// racy: the message depends on the moment the fault lands (an engine
	// killed mid-request): the table keeps the operation, not the detail.
	racy bool
	// racyState: a signal lands while a write to AWS is in flight; whether
	// it was applied is a race (the table keeps what holds either way).
	racyState bool
	// lockKept: the run must leave a lock it did not take (held by another).
	lockKept bool
	// wantIn: the message must hold each of these.
	wantIn []string
	// unmoved: the ENV tag must not have moved on any repository; with
	// firstPushed the first image (django) must be in the registry under
	// TAG (the failure came between the two images).
	unmoved, firstPushed bool
	// untouched: nothing may be pushed (no commit tag of TAG) nor
	// registered, the service and the ENV tags unmoved.
	untouched bool
	// within: the run must end within this (0: no bound).
	within time.Duration
	// after checks what the case left besides the common checks; each
	// string is a failure.
	after func(t *testing.T, e *faultEnv) []string
	// secrets are secret values of this case (besides fixtureSecrets)
	// that must appear nowhere.
	secrets []string
	// setsEnv: the case changes the process's environment (t.Setenv: a
	// fake terraform, a proxy as DOCKER_HOST), so it runs alone.
	setsEnv bool
}

// row is one line of the reliability table.
type row struct {
	fault, injected, exit, message, service, revisions, tags, lock string
	images, commitTags, secrets, previous, whole                   string
}

func ecsTarget(op string) string { return "AmazonEC2ContainerServiceV20141113." + op }

// phaseHook runs fn (once) when phase starts.
type phaseHook struct {
	next  report.Reporter
	phase string
	fn    func()
	once  sync.Once
}

func (h *phaseHook) Report(ev report.Event) {
	if ev.Kind == report.PhaseStart && ev.Phase == h.phase {
		h.once.Do(h.fn)
	}
	if h.next != nil {
		h.next.Report(ev)
	}
}

// hookBuilder runs after (after the real build) or panics.
type hookBuilder struct {
	build.Builder
	after func()
	panic string
}

func (b *hookBuilder) Build(ctx context.Context, s build.Spec) (build.Image, error) {
	if b.panic != "" {
		panic(b.panic)
	}
	img, err := b.Builder.Build(ctx, s)
	if b.after != nil {
		b.after()
	}
	return img, err
}

func (e *faultEnv) putLock(t *testing.T, started time.Time) {
	v, _ := json.Marshal(LockHolder{Run: "other-run", Tag: "0123456", Env: "stage", Host: "ci-runner-7", PID: 4242, Started: started})
	if _, err := e.ssm.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String(e.lock), Value: aws.String(string(v)), Type: ssmtypes.ParameterTypeString}); err != nil {
		t.Fatal(err)
	}
}

func faultCases() []faultCase {
	awsFault := func(op string, status, times int) func(*testing.T, *faultEnv, *Options, context.CancelFunc) int {
		return func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			e.aws.Add(faults.Rule{Target: op, Status: status, Times: times})
			return 0
		}
	}
	reg := func(r faults.Rule) func(*testing.T, *faultEnv, *Options, context.CancelFunc) int {
		return func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			e.reg.Add(r)
			return 0
		}
	}
	sim := func(fl ecssim.Faults, n int) func(*testing.T, *faultEnv, *Options, context.CancelFunc) int {
		return func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			e.sim.SetFaults(e.n.Cluster, e.n.Service, fl)
			return n
		}
	}
	// sigAt cancels the run (as a SIGINT does) when phase starts, from
	// another goroutine, as a signal comes.
	sigAt := func(phase string) func(*testing.T, *faultEnv, *Options, context.CancelFunc) int {
		return func(t *testing.T, e *faultEnv, o *Options, cancel context.CancelFunc) int {
			o.Reporter = &phaseHook{phase: phase, fn: func() { go cancel() }}
			return 1
		}
	}
	return []faultCase{
		// AWS: throttling and 5xx, each call kind.
		{name: "ECS throttling burst: 4× ThrottlingException on DescribeServices", setup: sim(ecssim.Faults{Throttle: 4, ThrottleOps: []string{"DescribeServices"}}, 4), want: 0},
		{name: "ECS throttling storm while following: 14× on DescribeServiceDeployments (past the SDK's 6 attempts)", setup: sim(ecssim.Faults{Throttle: 14, ThrottleOps: []string{"DescribeServiceDeployments"}}, 14), want: 0},
		{name: "ECS throttling storm before any write: 40× on DescribeServices", setup: sim(ecssim.Faults{Throttle: 40, ThrottleOps: []string{"DescribeServices"}}, 40), want: 1, wantIn: []string{"DescribeServices"}},
		{name: "ECS 503 ×2 on DescribeServices", setup: awsFault(ecsTarget("DescribeServices"), 503, 2), want: 0},
		{name: "ECS 500 ×2 on DescribeTaskDefinition", setup: awsFault(ecsTarget("DescribeTaskDefinition"), 500, 2), want: 0},
		{name: "ECS 500 ×2 on RegisterTaskDefinition (not applied)", setup: awsFault(ecsTarget("RegisterTaskDefinition"), 500, 2), want: 0},
		{name: "ECS 500 on every RegisterTaskDefinition", setup: awsFault(ecsTarget("RegisterTaskDefinition"), 500, 0), want: 1, wantIn: []string{"RegisterTaskDefinition"}},
		{name: "ECS 500 ×2 on UpdateService (not applied)", setup: awsFault(ecsTarget("UpdateService"), 500, 2), want: 0},
		{name: "ECS UpdateService applied but answered 500", setup: sim(ecssim.Faults{UpdateApplied500: true}, 1), want: 0},
		{name: "ECS 500 on every UpdateService (a registered revision left unused)", setup: awsFault(ecsTarget("UpdateService"), 500, 0), want: 1, wantIn: []string{"registered by this run, is unused", "nothing was deregistered"}},
		{name: "ECS 500 ×3 on DescribeServiceDeployments", setup: awsFault(ecsTarget("DescribeServiceDeployments"), 500, 3), want: 0},
		{name: "ECS 500 ×2 on DescribeTasks", setup: awsFault(ecsTarget("DescribeTasks"), 500, 2), want: 0},
		{name: "ECS answers without their optional fields (rolloutState, failedTasks, currentServiceDeployment, circuit breaker, alarms, ...)", setup: sim(ecssim.Faults{Sparse: true}, 1), want: 0},
		{name: "ECS answers without their optional fields, and the rollout fails and ECS rolls back", scenario: ecssim.Rollback, setup: sim(ecssim.Faults{Sparse: true}, 1), want: 3},
		{name: "ECS reads lag behind the update (3 stale reads)", setup: sim(ecssim.Faults{LagReads: 3}, 3), want: 0},
		{name: "ECR 500 ×2 on GetAuthorizationToken", setup: awsFault("GetAuthorizationToken", 500, 2), want: 0},
		{name: "ECR 500 ×2 on DescribeRepositories", setup: awsFault("DescribeRepositories", 500, 2), want: 0},
		{name: "SSM 500 ×2 on PutParameter (the lock)", setup: awsFault("AmazonSSM.PutParameter", 500, 2), want: 0},
		{name: "SSM 500 on every PutParameter (the lock cannot be taken)", setup: awsFault("AmazonSSM.PutParameter", 500, 0), want: 1, wantIn: []string{"deploy lock", "nothing was changed"}},
		{name: "black-holed ECS endpoint once (DescribeServiceDeployments never answered)", setup: func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			e.aws.Add(faults.Rule{Target: ecsTarget("DescribeServiceDeployments"), Hang: true, Times: 1})
			return 0
		}, want: 0},
		{name: "black-holed ECS endpoint for RegisterTaskDefinition (every attempt)", setup: func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			e.aws.Add(faults.Rule{Target: ecsTarget("RegisterTaskDefinition"), Hang: true})
			return 0
		}, want: 1, wantIn: []string{"RegisterTaskDefinition", "timeout awaiting response headers"}},
		{name: "ECS RegisterTaskDefinition applied but its answer never comes (times out after succeeding)", setup: func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			e.aws.Add(faults.Rule{Target: ecsTarget("RegisterTaskDefinition"), ForwardThenHang: true, Times: 1})
			return 0
		}, want: 0},

		// Registry.
		{name: "registry 503 once on a blob HEAD", setup: reg(faults.Rule{Method: http.MethodHead, Path: "/blobs/sha256:", Status: 503, Times: 1}), want: 0},
		{name: "registry 503 once on the manifest PUT", setup: reg(faults.Rule{Method: http.MethodPut, Path: "/manifests/", Status: 503, Times: 1}), want: 0},
		{name: "registry 503 once on the ENV tag PUT", setup: reg(faults.Rule{Method: http.MethodPut, Path: "/manifests/stage", Status: 503, Times: 1}), want: 0},
		{name: "registry 429 with Retry-After once on a blob upload", setup: reg(faults.Rule{Method: http.MethodPost, Path: "/blobs/uploads/", Status: 429, Times: 1, Header: http.Header{"Retry-After": {"1"}}}), want: 0},
		{name: "registry connection reset mid-blob (upload PATCH)", setup: reg(faults.Rule{Method: http.MethodPatch, Path: "/blobs/uploads/", Reset: true, Times: 1}), want: 0},
		{name: "registry refuses connections for 3 s mid-push", setup: func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			e.reg.Add(faults.Rule{Method: http.MethodPost, Path: "/blobs/uploads/", Reset: true, Times: 1, OnMatch: func() { e.reg.Outage(t, 3*time.Second) }})
			return 0
		}, want: 0},
		{name: "registry refuses every manifest PUT of the second image (next)", setup: func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			e.reg.Add(faults.Rule{Method: http.MethodPut, Path: "/v2/" + e.n.FrontendRepo + "/manifests/", Status: 500})
			return 0
		}, want: 1, wantIn: []string{"not moved on any repository", "django pushed under"}, unmoved: true, firstPushed: true},
		{name: "registry refuses every PUT of the second image's ENV tag, after a first deploy (the first image's goes back)", setup: func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			// A deploy of the previous commit first, so that ENV exists on
			// both repositories (a tag that did not exist is kept: tags.go).
			first := e.opts(e.c[1])
			first.Timeout = 60 * time.Second
			if _, err := Run(context.Background(), first, e.deps); err != nil {
				t.Fatalf("the first deploy: %v", err)
			}
			e.reg.Add(faults.Rule{Method: http.MethodPut, Path: "/v2/" + e.n.FrontendRepo + "/manifests/" + e.env.Name, Status: 500})
			return 0
		}, want: 1, wantIn: []string{"was put back where it was on django"}, unmoved: true},
		{name: "registry 401 on the manifest PUT mid-push", setup: reg(faults.Rule{Method: http.MethodPut, Path: "/manifests/", Status: 401, Times: 1}), want: 1, wantIn: []string{"401"}, unmoved: true},
		{name: "black-holed registry for ctjdeploy's requests (manifest reads never answered)", setup: reg(faults.Rule{Path: "/manifests/", Hang: true, UserAgent: "ctjdeploy"}), want: 1, wantIn: []string{"timeout awaiting response headers"}},
		{name: "black-holed registry for every request (the build's cache import too)", setup: reg(faults.Rule{Hang: true}), want: 1, wantIn: []string{"timeout awaiting response headers"}},

		// Terraform (env.Terraform.Dir = example/infra/stage), played by a
		// real process: a fake terraform as TF_BINARY.
		{setsEnv: true, name: "Terraform fails (terraform output exits 1: backend access denied)", setup: func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			t.Setenv("TF_BINARY", fakeBinary(t, "terraform", "echo 'Error: Failed to load state: AccessDenied: Access Denied (bucket tfstate-stage)' >&2\nexit 1\n"))
			return 1
		}, want: 1, wantIn: []string{"terraform output in", "example/infra/stage", "AccessDenied"}, untouched: true},
		{setsEnv: true, name: "Terraform hangs (terraform output never ends, ignores SIGINT; 2 s timeout)", setup: func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			e.pidFile = filepath.Join(t.TempDir(), "pid")
			t.Setenv("TF_BINARY", fakeBinary(t, "terraform", "echo $$ > '"+e.pidFile+"'\ntrap '' INT\nexec sleep 600\n"))
			t.Setenv(tfvars.TimeoutEnv, "2s")
			return 1
		}, want: 1, wantIn: []string{"`terraform output -json` in", "example/infra/stage", "did not end within 2s", "state lock"}, untouched: true,
			within: 2*time.Second + 5*time.Second, after: func(t *testing.T, e *faultEnv) []string { return processGone(e.pidFile) }},

		// The Docker engine (build/: the docker CLI; push/: the engine
		// client's image export) through a unix-socket proxy that plays the
		// engine killed and restarting: every connection cut, new ones
		// refused for 5 s.
		{setsEnv: true, name: "Docker engine killed mid-build", setup: func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			e.dockerProxy(t, &faults.Cut{Request: regexp.MustCompile(`^POST \S*/(build|grpc)\b`), AfterBytes: 256, Refuse: 5 * time.Second})
			return 0
		}, want: 1, wantIn: []string{"Docker engine"}, untouched: true, racy: true},
		{setsEnv: true, name: "Docker engine killed mid-save (the image export)", setup: func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			e.dockerProxy(t, &faults.Cut{Request: regexp.MustCompile(`^GET \S*/images/(\S+/)?get\b`), AfterBytes: 64 << 10, Refuse: 5 * time.Second})
			return 0
		}, want: 1, wantIn: []string{"Docker engine"}, unmoved: true, racy: true},

		// Races and the lock.
		{name: "deploy lock held by another run (started 2 min ago)", setup: func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			e.putLock(t, time.Now().Add(-2*time.Minute))
			return 1
		}, want: 5, lockKept: true, wantIn: []string{"lock held", "other-run", "ci-runner-7", "aws ssm delete-parameter --name /ctjdeploy/"}},
		{name: "stale deploy lock (started 2 h ago) taken over", setup: func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			e.putLock(t, time.Now().Add(-2*time.Hour))
			return 1
		}, want: 0},
		{name: "outside update between the plan and the lock (another deploy finished meanwhile)", setup: func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			var once sync.Once
			e.deps.Builder = &hookBuilder{Builder: e.deps.Builder, after: func() {
				once.Do(func() {
					in := teststack.ExampleTaskDefinition(e.n, e.st.Registry, "other")
					out, err := e.moto.RegisterTaskDefinition(context.Background(), in)
					if err == nil {
						e.outsideTD = aws.ToString(out.TaskDefinition.TaskDefinitionArn)
						err = e.sim.OutsideUpdate(e.n.Cluster, e.n.Service, e.outsideTD)
					}
					if err != nil {
						t.Error(err)
					}
				})
			}}
			return 1
		}, want: 5, wantIn: []string{"changed since this run's plan"}},
		{name: "outside update during the rollout (terraform apply)", setup: func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			o.Reporter = &phaseHook{phase: "rollout", fn: func() {
				in := teststack.ExampleTaskDefinition(e.n, e.st.Registry, "other")
				out, err := e.moto.RegisterTaskDefinition(context.Background(), in)
				if err == nil {
					e.outsideTD = aws.ToString(out.TaskDefinition.TaskDefinitionArn)
					err = e.sim.OutsideUpdate(e.n.Cluster, e.n.Service, e.outsideTD)
				}
				if err != nil {
					t.Error(err)
				}
			}}
			return 1
		}, want: 1},

		// Interrupts.
		{name: "SIGINT during the build", setup: sigAt("build"), want: 130, sig: true, wantIn: []string{"was not changed"}},
		// While the push's manifest is in flight (the registry holds it).
		{name: "SIGINT during the push", setup: func(t *testing.T, e *faultEnv, o *Options, cancel context.CancelFunc) int {
			e.reg.Add(faults.Rule{Method: http.MethodPut, Path: "/manifests/", UserAgent: "ctjdeploy", Times: 1, Hang: true, OnMatch: cancel})
			return 1
		}, want: 130, sig: true, wantIn: []string{"was not changed"}},
		{name: "SIGINT during the rollout", setup: sigAt("rollout"), want: 130, sig: true, wantIn: []string{"goes on in ECS"}},
		{name: "SIGINT while reading Terraform outputs", setup: sigAt("terraform"), want: 130, sig: true, wantIn: []string{"was not changed"}},
		{name: "SIGINT during the push plan", setup: sigAt("push-plan"), want: 130, sig: true, wantIn: []string{"was not changed"}},
		{name: "SIGINT at the register", setup: sigAt("register"), want: 130, sig: true, racyState: true, wantIn: []string{"was not changed"}},
		{name: "SIGINT at the service update", setup: sigAt("update"), want: 130, sig: true, racyState: true, wantIn: []string{"UpdateService was in flight", "may now be deploying"}},
		{name: "SIGINT during the verification after a completed rollout", setup: sigAt("verify"), want: 130, sig: true, wantIn: []string{"completed, before its checks", "unverified"}},

		// Rollouts.
		{name: "rollout fails, ECS rolls back", scenario: ecssim.Rollback, setup: func(*testing.T, *faultEnv, *Options, context.CancelFunc) int { return 1 }, want: 3},
		{name: "rollout fails and ECS's rollback fails too", scenario: ecssim.RollbackFails, setup: func(*testing.T, *faultEnv, *Options, context.CancelFunc) int { return 1 }, want: 6},
		{name: "rollout fails with no rollback configured", scenario: ecssim.Fail, setup: func(*testing.T, *faultEnv, *Options, context.CancelFunc) int { return 1 }, want: 6},
		{name: "rollout stuck past --timeout", scenario: ecssim.Stuck, setup: func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			o.Timeout = 2 * time.Second
			return 1
		}, want: 4},

		// Hostile input (issue 20): refused before anything is built, pushed or registered.
		{name: "hostile template: a sensitive output under a Docker label whose key reads like a secret reference", setup: editTemplate(`"name": "next",`, `"name": "next", "dockerLabels": {"x.secrets[0].valueFrom": "{{ tf "db_password" }}"},`),
			want: 2, untouched: true, wantIn: []string{`containerDefinitions[0].dockerLabels["x.secrets[0].valueFrom"]`, `sensitive Terraform output "db_password"`}},
		{name: "hostile template: a sensitive output rendered as the text of a valueFrom", setup: editTemplate(`{{ tf "db_password_ssm_arn" }}`, `{{ print "p=" (tf "db_password") }}`),
			want: 2, untouched: true, wantIn: []string{"neither an SSM parameter or Secrets Manager ARN"}},
		{name: "hostile template: AWS_SESSION_TOKEN in a plain environment entry", setup: func(t *testing.T, e *faultEnv, o *Options, c context.CancelFunc) int {
			e.deps.Getenv = func(k string) (string, bool) {
				if k == "AWS_SESSION_TOKEN" {
					return hostileToken, true
				}
				return os.LookupEnv(k)
			}
			return editTemplate(`{"name": "NODE_ENV", "value": "production"}`, `{"name": "NODE_ENV", "value": "{{ env "AWS_SESSION_TOKEN" }}"}`)(t, e, o, c)
		}, want: 2, untouched: true, wantIn: []string{"environment[0].value", "secret environment variable AWS_SESSION_TOKEN"}, secrets: []string{hostileToken}},
		{name: "hostile template: larger than 1 MiB", setup: func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			b, _ := os.ReadFile(e.env.TaskDefinition)
			os.WriteFile(e.env.TaskDefinition, append(b, bytes.Repeat([]byte(" "), 1<<20)...), 0o644)
			return 1
		}, want: 2, untouched: true, wantIn: []string{"larger than 1024 KiB"}},
		{name: "hostile smoke URL: the instance metadata address (refused at connect; ctjdeploy rolls back)", setup: func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			e.env.Smoke = []config.Smoke{{URL: "http://169.254.169.254/latest/meta-data/iam/security-credentials/", Status: 200, Timeout: 2 * time.Second}}
			e.deps.SmokeInterval = 100 * time.Millisecond
			return 1
		}, want: 3, wantIn: []string{"link-local or instance metadata address refused: 169.254.169.254"}},

		// Bugs.
		{name: "panic in a build goroutine (message holding a secret)", setup: func(t *testing.T, e *faultEnv, o *Options, _ context.CancelFunc) int {
			report.AddSecret(panicSecret)
			e.deps.Builder = &hookBuilder{Builder: e.deps.Builder, panic: "boom " + panicSecret}
			return 1
		}, want: 1, wantIn: []string{"panic: boom ***"}, secrets: []string{panicSecret}},
	}
}

var (
	shaRE      = regexp.MustCompile(`sha256:[0-9a-f]{64}`)
	hexRE      = regexp.MustCompile(`\b[0-9a-f]{40}\b`)
	addrRE     = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	durRE      = regexp.MustCompile(`\b\d+(\.\d+)?(ms|s|m)\b`)
	depRE      = regexp.MustCompile(`ecs-svc/\d+`)
	runRE      = regexp.MustCompile(`\b[0-9a-f]{12}\b`)
	arnAcctRE  = regexp.MustCompile(`arn:aws:ecs:[a-z0-9-]+:\d{12}:`)
	timeRE     = regexp.MustCompile(`\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?( ?(Z|UTC|[+-]\d\d:?\d\d))?`)
	taskIDRE   = regexp.MustCompile(`\b[0-9a-f]{32}\b`)
	goLineRE   = regexp.MustCompile(`(\.go):\d+\b`) // a source line moves with every edit
	requestRE  = regexp.MustCompile(`RequestID: [0-9a-zA-Z-]*`)
	attemptsRE = regexp.MustCompile(`attempt \d+`)
	// Service deployment ids (the simulator's, like ECS's, hold _ and -).
	sdIDRE = regexp.MustCompile(`service deployment [A-Za-z0-9_-]{15,}`)
	// …/service-revision/CLUSTER/SERVICE/4980306466373577002 and
	// …/service-deployment/CLUSTER/SERVICE/VRasjpwUjzY6DEEcM1Qvb
	svcArnIDRE = regexp.MustCompile(`(service-revision|service-deployment)/([^/\s]+)/([^/\s]+)/[A-Za-z0-9_-]+`)
	minsRE     = regexp.MustCompile(`\b\d+m\d+s\b`)
	sockRE     = regexp.MustCompile(`/tmp/fx\d+/d\.sock|%2Ftmp%2Ffx\d+%2Fd\.sock`)
	buildTmpRE = regexp.MustCompile(`/tmp/ctjdeploy-build-\d+`)
)

// normalize makes a message stable across runs: the test's own names, the
// loopback ports, digests, commits and durations are replaced.
func (e *faultEnv) normalize(s string) string {
	for _, r := range []struct{ from, to string }{
		{e.n.Service, "SERVICE"}, {e.n.Cluster, "CLUSTER"}, {e.n.Family, "FAMILY"},
		{e.n.BackendRepo, "BACKEND_REPO"}, {e.n.FrontendRepo, "FRONTEND_REPO"},
	} {
		s = strings.ReplaceAll(s, r.from, r.to)
	}
	for i, c := range e.c {
		s = strings.ReplaceAll(s, c, fmt.Sprintf("COMMIT%d", i))
	}
	s = strings.ReplaceAll(s, filepath.Dir(e.st.ExampleDir())+string(filepath.Separator), "") // the checkout's path
	s = strings.ReplaceAll(s, e.env.TaskDefinition, "TEMPLATE")                               // the case's own copy of the template
	s = sockRE.ReplaceAllString(s, "/tmp/PROXY/d.sock")
	s = buildTmpRE.ReplaceAllString(s, "/tmp/ctjdeploy-build-N")
	s = shaRE.ReplaceAllString(s, "sha256:…")
	s = hexRE.ReplaceAllString(s, "SHA")
	s = taskIDRE.ReplaceAllString(s, "TASKID")
	s = goLineRE.ReplaceAllString(s, "$1:N")
	s = svcArnIDRE.ReplaceAllString(s, "$1/$2/$3/ID")
	s = addrRE.ReplaceAllString(s, "127.0.0.1:PORT")
	s = minsRE.ReplaceAllString(s, "NmNs")
	s = durRE.ReplaceAllString(s, "N$2")
	s = sdIDRE.ReplaceAllString(s, "service deployment ID")
	s = depRE.ReplaceAllString(s, "ecs-svc/ID")
	s = runRE.ReplaceAllString(s, "RUNID")
	s = arnAcctRE.ReplaceAllString(s, "arn:aws:ecs:REGION:ACCOUNT:")
	s = timeRE.ReplaceAllString(s, "TIME")
	s = requestRE.ReplaceAllString(s, "RequestID: ID")
	s = attemptsRE.ReplaceAllString(s, "attempt N")
	return s
}

// signalSummary keeps, of the message of a run stopped by a signal, the
// operation it stopped (the text before the first ": ") and the sentence
// that says what became of the service ("interrupted ...", "... it goes on
// in ECS ..."), dropping the part between, which depends on the moment the
// signal landed.
func signalSummary(msg string) string {
	msg, _, _ = strings.Cut(msg, "\n")
	head, rest, ok := strings.Cut(msg, ": ")
	if !ok {
		return msg
	}
	for _, k := range []string{"; interrupted ", "; it goes on in ECS"} {
		if i := strings.LastIndex(rest, k); i >= 0 {
			return head + ": …" + rest[i:]
		}
	}
	if strings.Contains(rest, "goes on in ECS") {
		return msg
	}
	return head + ": …"
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 220 {
		s = s[:220] + "…"
	}
	return strings.ReplaceAll(s, "|", "\\|")
}

func TestFaultSuite(t *testing.T) {
	cases := faultCases()
	if only := os.Getenv("CTJDEPLOY_FAULTS"); only != "" {
		var keep []faultCase
		for _, c := range cases {
			for _, o := range strings.Split(only, "|") {
				if strings.Contains(strings.ToLower(c.name), strings.ToLower(o)) {
					keep = append(keep, c)
					break
				}
			}
		}
		cases = keep
	}
	// The cases that change the process's environment (t.Setenv) run one
	// at a time, first; the others, each on its own cluster, service,
	// repositories, simulator and proxies, side by side, at most
	// faultJobs() at a time (most of a case is waiting: on timeouts, on
	// polls, on the registry).
	rows := make([]row, len(cases))
	var together []int
	for i, c := range cases {
		if !c.setsEnv {
			together = append(together, i)
			continue
		}
		t.Run(c.name, func(t *testing.T) { rows[i] = playFault(t, c) })
	}
	var g errgroup.Group
	g.SetLimit(faultJobs(t))
	for _, i := range together {
		g.Go(func() error {
			t.Run(cases[i].name, func(t *testing.T) { rows[i] = playFault(t, cases[i]) })
			return nil
		})
	}
	_ = g.Wait()
	if out := os.Getenv("CTJDEPLOY_RELIABILITY_OUT"); out != "" && !t.Failed() && len(rows) == len(faultCases()) {
		if err := os.WriteFile(out, []byte(reliabilityDoc(rows)), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d faults)", out, len(rows))
	}
}

// faultJobs is how many fault cases run at once: CTJDEPLOY_FAULT_JOBS, or
// 4.
func faultJobs(t *testing.T) int {
	if v := os.Getenv("CTJDEPLOY_FAULT_JOBS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("CTJDEPLOY_FAULT_JOBS=%q: want a whole number of at least 1", v)
		}
		return n
	}
	return 4
}

func playFault(t *testing.T, c faultCase) row {
	sc := c.scenario
	if sc == "" {
		sc = ecssim.Success
	}
	e := newFaultEnv(t, sc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tag := e.c[2]
	o := e.opts(tag)
	o.Timeout = 60 * time.Second
	environ := strings.Join(os.Environ(), "\n")
	planned := c.setup(t, e, &o, cancel)
	if !c.setsEnv && strings.Join(os.Environ(), "\n") != environ {
		// It runs beside other cases, which would see the change.
		t.Fatalf("the case changed the process's environment: mark it setsEnv, so that it runs alone")
	}
	before := e.state(t, tag)
	start := time.Now()
	res, err := Run(ctx, o, e.deps)
	took := time.Since(start)
	e.aws.Clear()
	e.reg.Clear()
	after := e.state(t, tag)

	code := exitcode.Of(err)
	if c.sig && ctx.Err() != nil {
		code = exitcode.Interrupted // the CLI: a received signal decides the exit code
	}
	msg := "deployed"
	if err != nil {
		msg = err.Error()
	} else if res != nil {
		msg = res.Outcome
	}
	injected := e.aws.Injected() + e.reg.Injected()
	if e.docker != nil {
		injected += e.docker.Injected()
		t.Logf("Docker engine requests: %q", e.docker.Seen())
	}
	if injected == 0 {
		injected = planned
	}
	first := firstLine(e.normalize(msg))
	if c.sig || c.racy {
		// Where in the phase the signal lands is a race (a request in
		// flight, a retry, a read): the table keeps what does not depend on
		// it, the operation stopped and what the run says of the service.
		first = firstLine(signalSummary(e.normalize(msg)))
	}
	r := row{fault: c.name, injected: fmt.Sprint(injected), exit: fmt.Sprint(code), message: first}
	t.Logf("exit %d after %s: %s", code, took.Round(time.Millisecond), msg)
	if testing.Verbose() {
		t.Logf("AWS requests: %d, registry requests: %d, first AWS: %v", len(e.aws.Seen()), len(e.reg.Seen()), e.aws.Seen()[:min(3, len(e.aws.Seen()))])
	}

	if code != c.want {
		t.Errorf("exit %d, want %d: %v", code, c.want, err)
	}
	for _, w := range c.wantIn {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("the message lacks %q: %v", w, err)
		}
	}
	if injected == 0 {
		t.Errorf("no fault was injected")
	}

	whole := true
	fail := func(format string, args ...any) {
		whole = false
		t.Errorf(format, args...)
	}
	// The service runs the revision it had, or the new one; nothing else.
	newTD := ""
	if res != nil && res.Registered {
		newTD = res.TaskDefARN
	}
	switch after.svcTD {
	case before.svcTD:
		r.service = "as before"
	case newTD:
		r.service = "new revision"
	case e.outsideTD:
		r.service = "the outside update's"
	default:
		fail("the service runs %s: neither %s (before) nor this run's %s", after.svcTD, before.svcTD, newTD)
		r.service = "OTHER"
	}
	if code == 0 && after.svcTD != newTD && (res == nil || res.Update) {
		fail("exit 0 but the service runs %s, not %s", after.svcTD, newTD)
	}
	if (code == 3 || code == 5 || code == 1) && after.svcTD != before.svcTD && after.svcTD != e.outsideTD {
		fail("exit %d but the service moved from %s to %s", code, before.svcTD, after.svcTD)
	}
	// At most one new revision of this run; one that nothing runs is an
	// orphan.
	added := len(after.revisions) - len(before.revisions)
	if e.outsideTD != "" {
		added-- // the outside actor's
	}
	r.revisions = fmt.Sprintf("+%d", added)
	if added > 1 {
		fail("%d new revisions", added)
	}
	if added == 1 && after.svcTD != newTD && code != 3 {
		r.revisions += " (unused)"
	}
	// The ENV tags: all moved to this run's images, or none.
	moved := 0
	for repo, d := range after.envTag {
		if d != "" && d == after.commitTag[repo] && d != before.envTag[repo] {
			moved++
		} else if d != before.envTag[repo] {
			fail("tag %s of %s moved to %s, not this run's %s", e.env.Name, repo, d, after.commitTag[repo])
		}
	}
	switch moved {
	case 0:
		r.tags = "unmoved"
	case len(after.envTag):
		r.tags = "all moved"
	default:
		r.tags = "HALF-MOVED"
		fail("tag %s moved on %d of %d repositories: %v", e.env.Name, moved, len(after.envTag), after.envTag)
	}
	if c.unmoved && moved != 0 {
		fail("tag %s moved on %d repositories; it must not move when a push fails", e.env.Name, moved)
	}
	if c.firstPushed && (after.commitTag[e.n.BackendRepo] == "" || after.envTag[e.n.BackendRepo] != before.envTag[e.n.BackendRepo]) {
		fail("django: tag %s %q, tag %s %q (before %q): want pushed under the commit, ENV unmoved", tag, after.commitTag[e.n.BackendRepo], e.env.Name, after.envTag[e.n.BackendRepo], before.envTag[e.n.BackendRepo])
	}
	if code == 0 && moved != len(after.envTag) {
		fail("exit 0 but tag %s moved on %d of %d repositories", e.env.Name, moved, len(after.envTag))
	}
	// The lock: released, unless another run holds it.
	switch {
	case c.lockKept && after.lock != before.lock:
		fail("the lock held by another run changed: %q → %q", before.lock, after.lock)
	case c.lockKept:
		r.lock = "other's kept"
	case after.lock != "":
		fail("the lock is still held after the run: %s", after.lock)
	case res != nil && res.Lock != "" && before.lock != "":
		r.lock = "taken over, released"
	case res != nil && res.Lock != "":
		r.lock = "released"
	default:
		r.lock = "not taken"
	}
	if c.untouched {
		if added != 0 || after.svcTD != before.svcTD || moved != 0 {
			fail("the run changed the stack: %d new revisions, service %s → %s, tag %s moved on %d repositories", added, before.svcTD, after.svcTD, e.env.Name, moved)
		}
		for repo, d := range after.commitTag {
			if d != before.commitTag[repo] {
				fail("%s was pushed under %s (%s)", repo, tag, d)
			}
		}
	}
	if c.within > 0 && took > c.within {
		fail("the run took %s, want at most %s", took.Round(time.Millisecond), c.within)
	}
	if c.after != nil {
		for _, p := range c.after(t, e) {
			fail("%s", p)
		}
	}
	// The registry: every digest an ACTIVE revision pins is there whole.
	nd, bad := e.pinnedImages(t)
	r.images = fmt.Sprintf("%d whole", nd)
	for _, b := range bad {
		fail("pinned image missing: %s", b)
		r.images = "MISSING"
	}
	// Every commit tag that exists names a whole manifest.
	nt, bad := e.commitTags()
	r.commitTags = fmt.Sprintf("%d whole", nt)
	for _, b := range bad {
		fail("commit tag broken: %s", b)
		r.commitTags = "BROKEN"
	}
	// No secret in the message, the result or the registered definition.
	r.secrets = "none"
	for _, l := range e.leaks(t, err, res, append(append([]string(nil), fixtureSecrets...), c.secrets...)) {
		fail("leak: %s", l)
		r.secrets = "LEAKED"
	}
	// The previous revision: the result records the one the service ran
	// before the run, and a registered revision's ctjdeploy:previous tag
	// names it.
	switch {
	case res == nil || res.LiveARN == "":
		r.previous = "not read"
		if res != nil && res.Registered {
			fail("a revision was registered but the result records no previous revision")
			r.previous = "WRONG"
		}
	case res.LiveARN != before.svcTD:
		fail("the result records %s as the previous revision, the service ran %s", res.LiveARN, before.svcTD)
		r.previous = "WRONG"
	default:
		r.previous = "recorded"
	}
	if res != nil && res.Registered && res.TaskDefARN != "" && r.previous != "WRONG" {
		prev, tagged := e.previousTag(t, res.TaskDefARN)
		switch {
		case !tagged:
			fail("the registered revision %s has no tags at moto", res.TaskDefARN)
			r.previous = "UNTAGGED"
		case prev != before.svcTD:
			fail("the registered revision's %s tag is %q, the service ran %s", ecsread.TagPrevious, prev, before.svcTD)
			r.previous = "WRONG TAG"
		default:
			r.previous += ", tagged"
		}
	}
	r.whole = "yes"
	if !whole {
		r.whole = "NO"
	}
	if testing.Verbose() {
		t.Logf("row: %+v", r)
	}
	if c.racyState {
		// A signal that lands while RegisterTaskDefinition or UpdateService
		// is in flight: whether AWS applied the call is a race. The table
		// keeps what holds either way (the checks above held for the
		// outcome this run had).
		switch r.service {
		case "as before", "new revision":
			r.service = "as before or new"
		}
		switch r.revisions {
		case "+0", "+1", "+1 (unused)":
			r.revisions = "+0 or +1"
		}
		if strings.HasSuffix(r.images, " whole") {
			r.images = "whole"
		}
	}
	return r
}

func reliabilityDoc(rows []row) string {
	var b strings.Builder
	b.WriteString("# Reliability under injected faults\n\n")
	b.WriteString("This file is written by the fault-injection suite, `TestFaultSuite` in\n")
	b.WriteString("`deploy/faults_stack_test.go`, on the local stack (moto behind the ECS\n")
	b.WriteString("simulator, the CNCF registry, dockerd): `make reliability` writes it (its `go test` sets\n")
	b.WriteString("CTJDEPLOY_RELIABILITY_OUT to this file; it is written only when every case ran and held), and so\n")
	b.WriteString("does, by hand:\n\n")
	b.WriteString("```sh\nset -a; source /tmp/ctjdeploy-stack/env; set +a\n")
	b.WriteString("CTJDEPLOY_RELIABILITY_OUT=$PWD/docs/reliability.md go test -count=1 -run TestFaultSuite ./deploy/\n```\n\n")
	b.WriteString("Each row is one real deploy (build, push, register, update, follow, verify) with one\n")
	b.WriteString("fault injected: AWS faults through a proxy in front of the simulator (5xx, never-answered\n")
	b.WriteString("requests) or the simulator itself (throttling, lagging reads, an update applied but\n")
	b.WriteString("answered 500, rollout scenarios), registry faults through a proxy in front of the registry.\n")
	b.WriteString("The clients are ctjdeploy's own (`internal/netclient`: 6 attempts per AWS call, registry\n")
	b.WriteString("retries on 408/429/5xx and refused or reset connections) with the timeouts and backoff\n")
	b.WriteString("shortened to keep the suite fast (2 s response-header timeout, 300 ms AWS backoff cap).\n")
	b.WriteString("Each row is an assertion: the suite fails when an exit code differs from the one below,\n")
	b.WriteString("or when a check does not hold. A SIGINT is a cancelled context; the exit code shown is\n")
	b.WriteString("the CLI's (a received signal decides it: 130).\n\n")
	b.WriteString("After each run the checks read the stack itself: the service runs the revision it had\n")
	b.WriteString("or the new one, nothing else (*service*); at most one new revision, *unused* when\n")
	b.WriteString("nothing runs it (*revisions*); the `stage` tag moved on every repository to this run's\n")
	b.WriteString("images or on none (*ENV tags*); the deploy lock is not left behind (*lock*).\n")
	b.WriteString("And four checks read what a later pull, rollback or log reader would see:\n\n")
	b.WriteString("- *pinned*: every image digest (`repo@sha256:…`) pinned by an ACTIVE revision of the\n")
	b.WriteString("  family (moto's ListTaskDefinitions and DescribeTaskDefinition) is in the registry: its\n")
	b.WriteString("  manifest answers a HEAD and a GET by digest at the registry itself (not through the\n")
	b.WriteString("  fault proxy), and its config and every layer answer a blob HEAD; the count of digests\n")
	b.WriteString("  checked (images of another registry, `postgres:18`, are not ours and are skipped);\n")
	b.WriteString("- *commit tags*: every tag of the test's three commits (full and 7-character) that exists\n")
	b.WriteString("  on either repository names a manifest whose blobs are all present: a push cut short\n")
	b.WriteString("  never leaves a tag on a partial image; the count of tags checked;\n")
	b.WriteString("- *secrets*: no secret the run sees (the sensitive Terraform output `db_password` of\n")
	b.WriteString("  `example/infra/stage`, the registry password that moto's ECR token carries, and a case's\n")
	b.WriteString("  own, such as the panic's) appears raw, JSON-escaped or URL-escaped in the error message,\n")
	b.WriteString("  the result marshalled to JSON (the `--json` report), or the registered revision as moto\n")
	b.WriteString("  returns it (the whole JSON with its tags, and each environment value);\n")
	b.WriteString("- *previous*: the result's previous revision (`liveTaskDefinitionArn`) is the one the\n")
	b.WriteString("  service ran before the run (*recorded*; *not read* when the run ended before reading\n")
	b.WriteString("  it), and when a revision was registered its `ctjdeploy:previous` tag (moto's\n")
	b.WriteString("  DescribeTaskDefinition with include=TAGS, what rollback reads) names it (*tagged*).\n\n")
	b.WriteString("| # | fault | injected | exit | first line of the message | service | revisions | ENV tags | lock | pinned | commit tags | secrets | previous | whole |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, r := range rows {
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", i+1, r.fault, r.injected, r.exit, r.message, r.service, r.revisions, r.tags, r.lock, r.images, r.commitTags, r.secrets, r.previous, r.whole)
	}
	codes := map[string]int{}
	for _, r := range rows {
		codes[r.exit]++
	}
	var ks []string
	for k := range codes {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	b.WriteString("\nCovered elsewhere: two real `ctjdeploy` processes racing for the lock (`TestTwoProcessesRace`)\n")
	b.WriteString("and SIGTERM then SIGKILL of a real process mid-deploy (`TestSigtermThenSigkill`), both in\n")
	b.WriteString("`cmd/ctjdeploy`; the lock rows here use a holder written beforehand.\n\n")
	b.WriteString("Terraform is played by a fake `terraform` (TF_BINARY) that fails, or that ignores SIGINT and never\n")
	b.WriteString("ends under `CTJDEPLOY_TERRAFORM_TIMEOUT=2s` (every Terraform command has a timeout, 3 min by\n")
	b.WriteString("default; the run then takes the timeout plus terraform-exec's 3 s kill delay, and the process is\n")
	b.WriteString("checked gone). The Docker engine rows put a unix-socket proxy (`faults.NewUnixProxy`) between\n")
	b.WriteString("ctjdeploy (the docker CLI's build, the engine client's image export) and the stack's dockerd, and\n")
	b.WriteString("cut every connection, then refuse new ones for 5 s, once the build's answer has started (256\n")
	b.WriteString("bytes of POST /build) or 64 KiB of the export (GET /images/get) have come back; dockerd itself\n")
	b.WriteString("keeps running.\n\n")
	b.WriteString("Not covered here: a real remote Terraform backend holding a state lock (the hang is a fake\n")
	b.WriteString("process); a dockerd that really dies (its builds and its restart are not played, only the\n")
	b.WriteString("connections); a disk that fills up during the build or the push's spool; a `stage` move that\n")
	b.WriteString("fails on the second repository in a first deploy, where `stage` did not exist before (the tags\n")
	b.WriteString("moved already are then kept, as the message says; the row played after a first deploy checks\n")
	b.WriteString("that the first repository's tag is put back); an UpdateService or a lock PutParameter applied\n")
	b.WriteString("whose answer never comes (only RegisterTaskDefinition is played so); IAM denials (AccessDenied)\n")
	b.WriteString("and other failures only real AWS returns, since moto and the simulator stand in for ECS, ECR\n")
	b.WriteString("and SSM.\n\n")
	b.WriteString("`docker build --cache-from` against a registry that never answers would hang (the docker CLI\n")
	b.WriteString("has no timeout there): ctjdeploy asks the registry first (GET /v2/, 10 s) and builds without its\n")
	b.WriteString("cache when it does not answer (the \"every request\" black-hole row).\n")
	var after []string
	for i, r := range rows {
		if r.exit == "1" && r.tags == "all moved" && r.service == "as before" {
			after = append(after, fmt.Sprint(i+1))
		}
	}
	if len(after) > 0 {
		fmt.Fprintf(&b, "A failure after the push (rows %s) leaves `stage` on the new images: the tags move once\n", strings.Join(after, ", "))
		b.WriteString("every image is pushed, before the task definition is registered.\n")
	}
	b.WriteString("\nExit codes: ")
	for i, k := range ks {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s × %d", k, codes[k])
	}
	b.WriteString(".\n")
	return b.String()
}

// The post-run checks on the stack's registry, secrets and the recorded
// previous revision (playFault's columns images, commit tags, secrets,
// previous).

// registryGet is GET (or HEAD) path at the stack's registry itself, not
// through the fault proxy.
func (e *faultEnv) registryGet(method, path string, accept ...string) (int, http.Header, []byte, error) {
	req, _ := http.NewRequest(method, "http://"+e.st.Registry+path, nil)
	req.SetBasicAuth(teststack.RegistryUser, teststack.RegistryPassword)
	if len(accept) > 0 {
		req.Header.Set("Accept", strings.Join(accept, ", "))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

var manifestTypes = []string{
	"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json",
}

// manifestWhole checks that ref (a digest or a tag) names a manifest in repo
// at the stack's registry whose blobs (config and layers, and those of
// every child manifest of an index) are all present. It returns the
// number of blobs checked, and what is missing ("" when whole).
func (e *faultEnv) manifestWhole(repo, ref string) (int, string) {
	code, _, body, err := e.registryGet(http.MethodGet, "/v2/"+repo+"/manifests/"+ref, manifestTypes...)
	if err != nil {
		return 0, fmt.Sprintf("GET manifest %s@%s: %v", repo, ref, err)
	}
	if code != http.StatusOK {
		return 0, fmt.Sprintf("manifest %s@%s: HTTP %d", repo, ref, code)
	}
	// HEAD by digest too, as a client pulling the pinned reference does.
	if strings.HasPrefix(ref, "sha256:") {
		if code, _, _, err := e.registryGet(http.MethodHead, "/v2/"+repo+"/manifests/"+ref, manifestTypes...); err != nil || code != http.StatusOK {
			return 0, fmt.Sprintf("HEAD manifest %s@%s: %d %v", repo, ref, code, err)
		}
	}
	var m struct {
		Config    struct{ Digest string }   `json:"config"`
		Layers    []struct{ Digest string } `json:"layers"`
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return 0, fmt.Sprintf("manifest %s@%s: %v", repo, ref, err)
	}
	n := 0
	for _, c := range m.Manifests {
		k, miss := e.manifestWhole(repo, c.Digest)
		n += k
		if miss != "" {
			return n, miss
		}
	}
	blobs := []string{m.Config.Digest}
	for _, l := range m.Layers {
		blobs = append(blobs, l.Digest)
	}
	for _, d := range blobs {
		if d == "" {
			continue
		}
		n++
		code, _, _, err := e.registryGet(http.MethodHead, "/v2/"+repo+"/blobs/"+d)
		if err != nil || code != http.StatusOK {
			return n, fmt.Sprintf("blob %s of %s@%s: HTTP %d %v", d, repo, ref, code, err)
		}
	}
	if len(m.Manifests) == 0 && m.Config.Digest == "" {
		return n, fmt.Sprintf("manifest %s@%s has no config", repo, ref)
	}
	return n, ""
}

// pinnedImages checks every image pinned by digest in an ACTIVE revision
// of the family (moto's own answer): the manifest and all its blobs are
// at the stack's registry. Images of another registry (postgres:18) are
// skipped. It returns the number of digests checked and the failures.
func (e *faultEnv) pinnedImages(t *testing.T) (int, []string) {
	ctx := context.Background()
	var arns []string
	in := &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(e.n.Family), Status: ecstypes.TaskDefinitionStatusActive}
	for {
		out, err := e.moto.ListTaskDefinitions(ctx, in)
		if err != nil {
			t.Fatalf("ListTaskDefinitions at moto: %v", err)
		}
		arns = append(arns, out.TaskDefinitionArns...)
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	seen := map[string]bool{}
	var bad []string
	for _, arn := range arns {
		td, err := e.moto.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn)})
		if err != nil {
			t.Fatalf("DescribeTaskDefinition %s at moto: %v", arn, err)
		}
		for _, cd := range td.TaskDefinition.ContainerDefinitions {
			img := aws.ToString(cd.Image)
			name, digest, ok := strings.Cut(img, "@")
			if !ok {
				continue
			}
			host, repo, ok := strings.Cut(name, "/")
			if !ok || !strings.HasPrefix(host, "127.0.0.1:") {
				continue // another registry's image
			}
			if seen[repo+"@"+digest] {
				continue
			}
			seen[repo+"@"+digest] = true
			if _, miss := e.manifestWhole(repo, digest); miss != "" {
				bad = append(bad, fmt.Sprintf("%s (pinned by %s): %s", img, arn, miss))
			}
		}
	}
	return len(seen), bad
}

// commitTags checks every commit tag of the test's commits on both
// repositories: one that exists names a manifest whose blobs are present.
func (e *faultEnv) commitTags() (int, []string) {
	n := 0
	var bad []string
	for _, repo := range []string{e.n.BackendRepo, e.n.FrontendRepo} {
		for _, c := range e.c {
			for _, tag := range []string{c, c[:7]} {
				code, _, _, err := e.registryGet(http.MethodHead, "/v2/"+repo+"/manifests/"+tag, manifestTypes...)
				if err == nil && code == http.StatusNotFound {
					continue
				}
				n++
				if _, miss := e.manifestWhole(repo, tag); miss != "" {
					bad = append(bad, fmt.Sprintf("tag %s of %s: %s", tag, repo, miss))
				}
			}
		}
	}
	return n, bad
}

// secretForms are the ways a secret could leak: itself, JSON-escaped and
// URL-escaped.
func secretForms(s string) []string {
	j, _ := json.Marshal(s)
	forms := []string{s, string(j[1 : len(j)-1]), url.QueryEscape(s), url.PathEscape(s)}
	return forms
}

// panicSecret is the panic case's secret; its JSON and URL escapes differ
// from it.
// hostileToken is the AWS session token a hostile template tries to register.
const hostileToken = "FQoGZXIvYXdzEXAMPLE-hostile-session-token"

// editTemplate replaces old with new in the case's template (which must
// hold old).
func editTemplate(old, new string) func(*testing.T, *faultEnv, *Options, context.CancelFunc) int {
	return func(t *testing.T, e *faultEnv, _ *Options, _ context.CancelFunc) int {
		b, err := os.ReadFile(e.env.TaskDefinition)
		if err != nil || !bytes.Contains(b, []byte(old)) {
			t.Fatalf("the example template changed: no %s (%v)", old, err)
		}
		if err := os.WriteFile(e.env.TaskDefinition, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		return 1
	}
}

const panicSecret = `s3cr3t "in" a/panic&`

// fixtureSecrets are the secret values the run sees: the sensitive
// Terraform output of example/infra/stage (db_password, registered by
// tfvars as it reads it) and the registry password (moto's ECR token).
var fixtureSecrets = []string{"s3cr3t-example-password-do-not-print", teststack.RegistryPassword}

// leaks looks for each secret, in each form, in the error message, the
// result (as JSON) and the registered definition (moto's answer, with its
// tags), and returns where it found one.
func (e *faultEnv) leaks(t *testing.T, err error, res *Result, secrets []string) []string {
	docs := map[string]string{}
	if err != nil {
		docs["the error message"] = err.Error()
	}
	if res != nil {
		b, jerr := json.Marshal(res)
		if jerr != nil {
			t.Fatalf("marshalling the result: %v", jerr)
		}
		docs["the result"] = string(b)
	}
	if res != nil && res.Registered && res.TaskDefARN != "" {
		td, derr := e.moto.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{
			TaskDefinition: aws.String(res.TaskDefARN), Include: []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags}})
		if derr != nil {
			t.Fatalf("DescribeTaskDefinition %s at moto: %v", res.TaskDefARN, derr)
		}
		b, _ := json.Marshal(td)
		docs["the registered definition"] = string(b)
		var envs []string
		for _, cd := range td.TaskDefinition.ContainerDefinitions {
			for _, kv := range cd.Environment {
				envs = append(envs, aws.ToString(kv.Name)+"="+aws.ToString(kv.Value))
			}
		}
		docs["the registered environment values"] = strings.Join(envs, "\n")
	}
	seen := map[string]bool{}
	var found []string
	for _, s := range secrets {
		for _, f := range secretForms(s) {
			for where, text := range docs {
				if msg := fmt.Sprintf("secret %q (as %q) in %s", s[:min(4, len(s))]+"…", f, where); strings.Contains(text, f) && !seen[msg] {
					seen[msg] = true
					found = append(found, msg)
				}
			}
		}
	}
	sort.Strings(found)
	return found
}

// previousTag is the ctjdeploy:previous tag of arn (moto's
// DescribeTaskDefinition include=TAGS, as the tool reads it), and whether
// the revision has tags at all.
func (e *faultEnv) previousTag(t *testing.T, arn string) (string, bool) {
	td, err := e.moto.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(arn), Include: []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags}})
	if err != nil {
		t.Fatalf("DescribeTaskDefinition %s at moto: %v", arn, err)
	}
	for _, tg := range td.Tags {
		if aws.ToString(tg.Key) == ecsread.TagPrevious {
			return aws.ToString(tg.Value), true
		}
	}
	return "", len(td.Tags) > 0
}
