package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/hackforla/ctjdeploy/build"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/teststack"
	"github.com/hackforla/ctjdeploy/push"
)

// localRepo is a git repository with a config whose environment (named
// after the test) runs a small task: web (built from a Dockerfile on the
// stack's busybox base) serves a page; app prints its secret's length.
func localRepo(t *testing.T) (cfg, env string, port int) {
	cfg, env, port, _ = localRepoIn(t)
	return
}

func localRepoIn(t *testing.T) (cfg, env string, port int, dir string) {
	t.Helper()
	st := teststack.Start(t)
	for k, v := range st.Env {
		t.Setenv(k, v)
	}
	// The detached load balancer's state and log go under the user cache
	// folder: this test's own.
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	env = strings.TrimSuffix(teststack.NewNames(t).Prefix, "-")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir = t.TempDir()
	files := map[string]string{
		"web/Dockerfile": "FROM python:3.13-alpine\nRUN mkdir -p /w && echo local-page > /w/index.html\n",
		"td.json": `{"family": "t", "containerDefinitions": [
  {"name": "web", "image": "{{ image "web" }}", "portMappings": [{"containerPort": 8080}], "linuxParameters": {"initProcessEnabled": true},
   "command": ["httpd", "-f", "-p", "8080", "-h", "/w"]},
  {"name": "app", "image": "python:3.13-alpine", "dependsOn": [{"containerName": "web", "condition": "START"}], "linuxParameters": {"initProcessEnabled": true},
   "secrets": [{"name": "APP_TOKEN", "valueFrom": "arn:aws:ssm:us-west-2:1:parameter/t"}],
   "entryPoint": ["sh", "-c"], "command": ["echo app-up; exec sleep 300"]}]}`,
		"local.env":      "APP_TOKEN=cli-secret-6b2f0a\n",
		"ctjdeploy.yaml": fmt.Sprintf("environments:\n  %s:\n    region: us-west-2\n    cluster: c\n    service: s\n    task_definition: td.json\n    registry: %s\n    images:\n      web: {repository: %s-web, context: web, dockerfile: web/Dockerfile}\n    local:\n      env_file: local.env\n      port: %d\n", env, st.Registry, env, port),
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "t"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	cfg = filepath.Join(dir, "ctjdeploy.yaml")
	t.Cleanup(func() {
		p := startProc(t, "--config", cfg, env, "local", "--down", "--reset-data")
		p.wait(time.Minute)
	})
	return cfg, env, port, dir
}

func localContainers(t *testing.T, env string) string {
	out, err := exec.Command("docker", "ps", "-a", "--filter", "label=ctjdeploy.env="+env, "--format", "{{.Names}}").CombinedOutput()
	if err != nil {
		t.Fatalf("docker ps: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// `ctjdeploy ENV local` in the foreground, stopped by SIGINT (exit 130) and
// by SIGTERM (exit 143): no container is left, and the env_file's secret
// was in the container and in no output.
func TestLocalSignals(t *testing.T) {
	cfg, env, port := localRepo(t)
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		p := startProc(t, "--config", cfg, env, "local", "--port", fmt.Sprint(port))
		up := teststack.Poll(90*time.Second, 100*time.Millisecond, func() bool {
			return strings.Contains(p.errText(), "every essential container runs") || p.wait(0)
		})
		if !up || !strings.Contains(p.errText(), "every essential container runs") {
			t.Fatalf("%s: not up:\n%s", tc.sig, p.errText())
		}
		out, err := exec.Command("docker", "exec", "ctjdeploy-"+env+"-app", "env").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "APP_TOKEN=cli-secret-6b2f0a") {
			t.Errorf("the secret is not in app's environment: %v", err)
		}
		_ = p.cmd.Process.Signal(tc.sig)
		if !p.wait(60 * time.Second) {
			t.Fatalf("%s: still running 60 s after the signal", tc.sig)
		}
		if p.code != tc.code {
			t.Errorf("%s: exit %d, want %d\n%s", tc.sig, p.code, tc.code, p.errText())
		}
		if left := localContainers(t, env); left != "" {
			t.Errorf("%s: containers left: %s", tc.sig, left)
		}
		all := p.errText() + p.stdout.String()
		if strings.Contains(all, "cli-secret-6b2f0a") {
			t.Errorf("%s: the secret is in the output", tc.sig)
		}
		if !strings.Contains(p.stdout.String(), "app | app-up") {
			t.Errorf("%s: no prefixed container output on stdout:\n%s", tc.sig, p.stdout.String())
		}
	}
}

// --no-build pulls the image pushed under --tag (with the ECR token, as
// the push gets it) instead of building: the container runs the registry's
// image, not a local build.
func TestLocalNoBuildPulls(t *testing.T) {
	cfg, env, port, dir := localRepoIn(t)
	st := teststack.Start(t)
	repo := env + "-web"
	st.CreateRepository(t, repo, ecrtypes.ImageTagMutabilityMutable)
	ctx := context.Background()
	// An image to pull: the example's web image, built by ctjdeploy's
	// builder under another tag and pushed by ctjdeploy's pusher.
	b, err := build.NewDocker()
	if err != nil {
		t.Fatal(err)
	}
	img, err := b.Build(ctx, build.Spec{Name: "web", Context: filepath.Join(dir, "web"), Dockerfile: filepath.Join(dir, "web", "Dockerfile"), Tag: "ctjdeploy-test/" + repo + ":nobuild"})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := cf.Env(env)
	if err != nil {
		t.Fatal(err)
	}
	awsCfg, err := loadAWSForEnv(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	p, err := push.New(ctx, awsCfg, push.WithRegistry(st.Registry))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Push(ctx, img, push.Target{Registry: st.Registry, Repository: repo, Tags: []string{"nobuildtag"}}); err != nil {
		t.Fatal(err)
	}
	_ = exec.Command("docker", "rmi", "-f", "ctjdeploy-test/"+repo+":nobuild").Run()
	ref := st.Registry + "/" + repo + ":nobuildtag"
	_ = exec.Command("docker", "rmi", "-f", ref).Run()

	pr := startProc(t, "--config", cfg, env, "local", "--no-build", "--tag", "nobuildtag", "--detach", "--port", fmt.Sprint(port))
	if !pr.wait(90 * time.Second) {
		t.Fatal("local --no-build --detach still running after 90 s")
	}
	if pr.code != 0 {
		t.Fatalf("local --no-build --detach: exit %d\n%s", pr.code, pr.errText())
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", ref).Run() })
	out, err := exec.Command("docker", "inspect", "--format", "{{.Config.Image}}", "ctjdeploy-"+env+"-web").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != ref {
		t.Errorf("web runs %q (%v), want the pulled %s", out, err, ref)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != "local-page" {
		t.Errorf("GET / = %d %q, want the pulled image's page", resp.StatusCode, body)
	}
	if strings.Contains(pr.errText(), "123456789012-auth-token") {
		t.Error("the registry token is in the output")
	}
}
