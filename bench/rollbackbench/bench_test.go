// Package rollbackbench measures `ctjdeploy ENV rollback` on the local
// stack (run it through bench/rollback.sh): the real binary against moto
// behind the rollout simulator and a counting proxy in front of the
// registry. Per run: AWS calls before UpdateService, the tool's time from
// process start to UpdateService, bytes uploaded to the registry, and
// whether any build could have happened (DOCKER_HOST points nowhere).
// Beside it, when `ctjdeploy ENV` (the deploy) is implemented, one full
// deploy of the same app with the same counters.
package rollbackbench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
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

	"github.com/hackforla/ctjdeploy/deploy/rollout"
	"github.com/hackforla/ctjdeploy/internal/ecssim"
	"github.com/hackforla/ctjdeploy/internal/registrytest"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// counter counts the AWS calls that reach the simulator until the first
// UpdateService.
type counter struct {
	mu       sync.Mutex
	next     http.Handler
	before   []string
	updateAt time.Time
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := r.Header.Get("X-Amz-Target")
	if op == "" {
		op = r.Method + " " + r.URL.Path + " (sts)"
	}
	op = op[strings.LastIndex(op, ".")+1:]
	c.mu.Lock()
	if c.updateAt.IsZero() {
		if op == "UpdateService" {
			c.updateAt = time.Now()
		} else {
			c.before = append(c.before, op)
		}
	}
	c.mu.Unlock()
	c.next.ServeHTTP(w, r)
}

func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.before, c.updateAt = nil, time.Time{}
}

type sample struct {
	calls    int
	ops      string
	seconds  float64 // process start → UpdateService
	total    float64
	uploaded int64
	exit     int
}

var regAuth = remote.WithAuth(&authn.Basic{Username: teststack.RegistryUser, Password: teststack.RegistryPassword})

func TestRollbackBench(t *testing.T) {
	bin := os.Getenv("CTJDEPLOY_BIN")
	if bin == "" {
		t.Skip("run through bench/rollback.sh (needs CTJDEPLOY_BIN)")
	}
	runs := 7
	fmt.Sscan(os.Getenv("BENCH_RUNS"), &runs)
	s := teststack.Start(t)
	n := teststack.NewNames(t)
	s.CreateResources(t, n)
	ctx := context.Background()
	moto := s.ECS(t)
	s.SetMaximumPercent(t, n, 100)
	sim, err := ecssim.New(ecssim.Options{Upstream: s.MotoEndpoint, Polls: 2})
	if err != nil {
		t.Fatal(err)
	}
	cnt := &counter{next: sim}
	srv := httptest.NewServer(cnt)
	defer srv.Close()
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(teststack.Region), awsconfig.WithBaseEndpoint(srv.URL),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
		awsconfig.WithSharedConfigFiles([]string{}), awsconfig.WithSharedCredentialsFiles([]string{}))
	if err != nil {
		t.Fatal(err)
	}
	simECS := ecs.NewFromConfig(cfg)
	proxy := registrytest.Start(t, s.Registry)

	pushImg := func(repo, tag string) string {
		img, _ := random.Image(1<<20, 2)
		ref, _ := name.NewTag(s.Registry+"/"+repo+":"+tag, name.Insecure)
		if err := remote.Write(ref, img, regAuth); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		return d.String()
	}
	nowait := func(context.Context, time.Duration) error { return nil }
	deployTo := func(arn string) {
		id, _, err := rollout.Update(ctx, simECS, n.Cluster, n.Service, arn, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rollout.Follow(ctx, simECS, rollout.FollowOptions{Cluster: n.Cluster, Service: n.Service, DeploymentID: id, TaskDefinition: arn, Sleep: nowait}); err != nil {
			t.Fatal(err)
		}
	}
	commit := func(c string) string {
		live, err := rollout.ReadLive(ctx, moto, n.Cluster, n.Service)
		if err != nil {
			t.Fatal(err)
		}
		in := teststack.ExampleTaskDefinition(n, s.Registry, "x")
		in.ContainerDefinitions[0].Image = aws.String(s.Registry + "/" + n.FrontendRepo + "@" + pushImg(n.FrontendRepo, c))
		in.ContainerDefinitions[1].Image = aws.String(s.Registry + "/" + n.BackendRepo + "@" + pushImg(n.BackendRepo, c))
		arn, err := rollout.Register(ctx, moto, in, rollout.RegisterTags{Commit: c, Env: "stage", Previous: live.ARN()})
		if err != nil {
			t.Fatal(err)
		}
		deployTo(arn)
		return arn
	}
	cA := strings.Repeat("a1", 20)
	cB := strings.Repeat("b2", 20)
	cC := strings.Repeat("c3", 20)
	commit(cA)
	revB := commit(cB)
	pushImg(n.FrontendRepo, cC)
	pushImg(n.BackendRepo, cC)

	// The config: the example app with this run's names, the proxy as registry.
	// A copy of the example app (its Terraform state included): every path
	// in a config stays inside the config's repository (or folder).
	dir := t.TempDir()
	ex := s.ExampleDir()
	if err := os.CopyFS(dir, os.DirFS(ex)); err != nil {
		t.Fatal(err)
	}
	tmpl, _ := os.ReadFile(filepath.Join(ex, "stage", "ecs-task-def.json"))
	tmplPath := filepath.Join(dir, "ecs-task-def.json")
	os.WriteFile(tmplPath, bytes.Replace(tmpl, []byte(`"family": "`+teststack.ExampleFamily+`"`), []byte(`"family": "`+n.Family+`"`), 1), 0o644)
	conf := fmt.Sprintf(`environments:
  stage:
    region: %s
    cluster: %s
    service: %s
    task_definition: %s
    registry: %s
    terraform:
      dir: %s
    images:
      django: {repository: %s, context: %s, dockerfile: %s}
      next:   {repository: %s, context: %s, dockerfile: %s}
`, teststack.Region, n.Cluster, n.Service, filepath.Base(tmplPath), proxy.Addr, "infra/stage",
		n.BackendRepo, "backend", "stage/django.dockerfile",
		n.FrontendRepo, "frontend", "stage/next.dockerfile")
	confPath := filepath.Join(dir, "ctjdeploy.yaml")
	os.WriteFile(confPath, []byte(conf), 0o644)

	run := func(dockerHost string, args ...string) sample {
		cnt.reset()
		proxy.Reset()
		cmd := exec.Command(bin, append([]string{"--config", confPath}, args...)...)
		cmd.Env = append(s.Environ(), "AWS_ENDPOINT_URL="+srv.URL, "DOCKER_HOST="+dockerHost, "NO_COLOR=1", "GITHUB_ACTIONS=")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		sm := sample{total: time.Since(start).Seconds(), uploaded: proxy.UploadedBytes()}
		if ee, ok := err.(*exec.ExitError); ok {
			sm.exit = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		cnt.mu.Lock()
		sm.calls, sm.ops = len(cnt.before), strings.Join(cnt.before, ",")
		if !cnt.updateAt.IsZero() {
			sm.seconds = cnt.updateAt.Sub(start).Seconds()
		} else {
			sm.seconds = -1
		}
		cnt.mu.Unlock()
		if sm.exit != 0 && args[1] == "rollback" {
			t.Fatalf("%v: exit %d\n%s", args, sm.exit, out.String())
		}
		return sm
	}
	noDocker := "unix:///nonexistent/docker.sock" // any build would fail: 0 builds
	cases := []struct {
		name string
		args []string
	}{
		{"rollback (previous)", []string{"stage", "rollback", "--no-wait"}},
		{"rollback --to A (reuse revision)", []string{"stage", "rollback", "--to", cA[:7], "--no-wait"}},
		{"rollback --to C (render + register)", []string{"stage", "rollback", "--to", cC[:7], "--no-wait"}},
	}
	results := map[string][]sample{}
	for i := 0; i < runs; i++ {
		for _, c := range cases {
			deployTo(revB) // back to B, outside the measurement
			results[c.name] = append(results[c.name], run(noDocker, c.args...))
		}
	}
	fmt.Printf("\n## ctjdeploy rollback on the local stack (%d runs each, median [min–max])\n\n", runs)
	fmt.Printf("| command | AWS calls before UpdateService | tool time to UpdateService (s) | total (s, --no-wait) | builds | bytes uploaded |\n|---|---|---|---|---|---|\n")
	for _, c := range cases {
		rs := results[c.name]
		fmt.Printf("| %s | %s | %s | %s | 0 | %d |\n", c.name, stat(rs, func(s sample) float64 { return float64(s.calls) }, "%.0f"),
			stat(rs, func(s sample) float64 { return s.seconds }, "%.3f"), stat(rs, func(s sample) float64 { return s.total }, "%.3f"), maxUp(rs))
		fmt.Printf("|   calls | %s | | | | |\n", rs[0].ops)
	}
	// A full deploy of the same app, when the deploy command is implemented.
	deployTo(revB)
	full := run(s.DockerHost, "stage", "--tag", strings.Repeat("d4", 20))
	if full.seconds < 0 {
		fmt.Printf("\nfull deploy: n/a (exit %d before any UpdateService: the deploy command is not implemented in this build)\n", full.exit)
	} else {
		fmt.Printf("| full deploy (build + push + render + register) | %d | %.3f | %.3f | 2 | %d |\n|   calls | %s | | | | |\n",
			full.calls, full.seconds, full.total, full.uploaded, full.ops)
	}
}

func stat(rs []sample, f func(sample) float64, format string) string {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	return fmt.Sprintf(format+" ["+format+"–"+format+"]", v[len(v)/2], v[0], v[len(v)-1])
}

func maxUp(rs []sample) (m int64) {
	for _, r := range rs {
		m = max(m, r.uploaded)
	}
	return m
}
