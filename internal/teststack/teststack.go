// Package teststack gives tests the real local stack of scripts/stack:
// a dockerd with its own socket, a plain-HTTP registry on loopback with
// htpasswd auth (user AWS, password 123456789012-auth-token, what moto's ECR
// GetAuthorizationToken returns), a moto server holding the example's ECS
// and ECR resources, and a Terraform of 1.5 or newer with example/infra/stage applied.
//
// Start brings it up once per test process (or reuses a running one) and
// skips under `go test -short`. Tests share one stack, so a test that
// changes AWS state works on resources of its own: NewNames and
// CreateResources make a uniquely named cluster, service, task definition
// family and pair of ECR repositories.
package teststack

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go/logging"
)

// Credentials and names the stack is built around.
const (
	// RegistryUser and RegistryPassword are what moto's ECR
	// GetAuthorizationToken hands out for account 123456789012, and what the
	// stack's registry accepts.
	RegistryUser     = "AWS"
	RegistryPassword = "123456789012-auth-token"
	Account          = "123456789012"
	Region           = "us-west-2"

	// The example's resources, created by scripts/stack up.
	ExampleCluster      = "incubator-prod"
	ExampleService      = "civic-tech-jobs-fullstack-stage"
	ExampleFamily       = "civic-tech-jobs-fullstack-stage"
	ExampleBackendRepo  = "civic-tech-jobs-backend"
	ExampleFrontendRepo = "civic-tech-jobs-frontend"
)

// Stack describes a running local stack.
type Stack struct {
	Dir              string // state directory (CTJDEPLOY_STACK_DIR)
	RepoRoot         string // the ctjdeploy checkout (holds go.mod)
	DockerHost       string // unix:///…/docker.sock
	Registry         string // 127.0.0.1:5055
	MotoEndpoint     string // http://127.0.0.1:5056 (CTJDEPLOY_MOTO_URL)
	SimEndpoint      string // http://127.0.0.1:5057: the stack's ECS simulator (what `scripts/stack env` gives as AWS_ENDPOINT_URL)
	TerraformBinary  string // the Terraform the stack uses (1.5 or newer; see TerraformVersion)
	TerraformVersion string // its `terraform version` first line, e.g. "Terraform v1.11.4"
	// Env is everything `scripts/stack env` exports, PATH expanded, except
	// that AWS_ENDPOINT_URL is moto's: tests start an in-process simulator
	// of their own (with moto as its upstream) where they need a rollout,
	// and talk to moto directly otherwise. SimEndpoint is the stack's own.
	Env map[string]string
}

var (
	once     sync.Once
	started  *Stack
	startErr error
)

// Start returns the local stack, bringing it up with `scripts/stack up` the
// first time it is called in this process. It skips the test under
// `go test -short`; any failure to start is fatal (with the log's tail),
// never a skip.
//
// If CTJDEPLOY_STACK_DIR is set and names a stack that answers, that stack
// is reused without running the script.
func Start(t testing.TB) *Stack {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the local stack (scripts/stack up); skipped with -short")
	}
	startOnce()
	if startErr != nil {
		t.Fatalf("local stack: %v", startErr)
	}
	return started
}

// startOnce brings the stack up (or finds it up) the first time it is
// called in this process.
func startOnce() {
	once.Do(func() {
		started, startErr = start()
		if startErr == nil {
			started.TerraformVersion = terraformVersion(started.TerraformBinary)
			// Say once per test binary which Terraform the stack tests run against.
			fmt.Fprintf(os.Stderr, "teststack: %s at %s\n", started.TerraformVersion, started.TerraformBinary)
		}
	})
}

// terraformVersion is the first line of `BIN version`, or why it has none.
func terraformVersion(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return fmt.Sprintf("terraform version: %v", err)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

func start() (*Stack, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	if dir := os.Getenv("CTJDEPLOY_STACK_DIR"); dir != "" {
		if s, err := load(root, dir); err == nil && s.answers() == nil {
			return s, nil
		}
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "stack"), "up")
	cmd.Dir = root
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	// Whatever the daemons inherit must not keep our pipes open: the script
	// redirects their output to log files; WaitDelay guards against leaks.
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("scripts/stack up: %v\n%s", err, tail(stderr.String(), 40))
	}
	env, err := parseEnv(stdout.String())
	if err != nil {
		return nil, fmt.Errorf("scripts/stack up printed an environment that does not parse: %v\n%s", err, stdout.String())
	}
	s, err := fromEnv(root, env)
	if err != nil {
		return nil, err
	}
	if err := s.answers(); err != nil {
		return nil, fmt.Errorf("stack came up but does not answer: %v\n%s", err, tail(stderr.String(), 40))
	}
	return s, nil
}

func load(root, dir string) (*Stack, error) {
	b, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		return nil, err
	}
	env, err := parseEnv(string(b))
	if err != nil {
		return nil, err
	}
	return fromEnv(root, env)
}

func fromEnv(root string, env map[string]string) (*Stack, error) {
	s := &Stack{
		RepoRoot:        root,
		Dir:             env["CTJDEPLOY_STACK_DIR"],
		DockerHost:      env["DOCKER_HOST"],
		Registry:        env["CTJDEPLOY_REGISTRY"],
		MotoEndpoint:    env["CTJDEPLOY_MOTO_URL"],
		SimEndpoint:     env["AWS_ENDPOINT_URL"],
		TerraformBinary: env["TF_BINARY"],
		Env:             env,
	}
	// The tests' AWS_ENDPOINT_URL is moto's (see Stack.Env).
	env["AWS_ENDPOINT_URL"] = s.MotoEndpoint
	var missing []string
	for k, v := range map[string]string{"CTJDEPLOY_STACK_DIR": s.Dir, "DOCKER_HOST": s.DockerHost,
		"CTJDEPLOY_REGISTRY": s.Registry, "CTJDEPLOY_MOTO_URL": s.MotoEndpoint, "AWS_ENDPOINT_URL (the simulator)": s.SimEndpoint,
		"TF_BINARY": s.TerraformBinary} {
		if v == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("stack environment lacks %s", strings.Join(missing, ", "))
	}
	return s, nil
}

// answers checks that each part of the stack responds.
func (s *Stack) answers() error {
	c := &http.Client{Timeout: 5 * time.Second}
	sock := strings.TrimPrefix(s.DockerHost, "unix://")
	dc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	if err := expect(dc, "http://docker/_ping", http.StatusOK); err != nil {
		return fmt.Errorf("dockerd: %w", err)
	}
	if err := expect(c, "http://"+s.Registry+"/v2/", http.StatusUnauthorized); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	if err := expect(c, s.MotoEndpoint+"/moto-api/", http.StatusOK); err != nil {
		return fmt.Errorf("moto: %w", err)
	}
	if err := expectSim(c, s.SimEndpoint); err != nil {
		return fmt.Errorf("ecssim: %w", err)
	}
	if _, err := os.Stat(s.TerraformBinary); err != nil {
		return fmt.Errorf("terraform: %w", err)
	}
	if _, err := os.Stat(filepath.Join(s.ExampleDir(), "infra", "stage", "terraform.tfstate")); err != nil {
		return fmt.Errorf("example terraform state (not applied in this checkout): %w", err)
	}
	return nil
}

// expectSim checks that the ECS simulator answers ECS's JSON protocol
// (ListClusters, which it passes through to moto).
func expectSim(c *http.Client, url string) error {
	req, err := http.NewRequest(http.MethodPost, url+"/", strings.NewReader("{}"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.ListClusters")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/us-west-2/ecs/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ListClusters at %s: %s, want 200", url, resp.Status)
	}
	return nil
}

func expect(c *http.Client, url string, code int) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != code {
		return fmt.Errorf("GET %s: %s, want %d", url, resp.Status, code)
	}
	return nil
}

// parseEnv reads `export K=V` lines. A double-quoted value has $PATH (and
// any other $VAR) expanded from this process's environment.
func parseEnv(text string) (map[string]string, error) {
	env := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("not an export line: %q", sc.Text())
		}
		switch {
		case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
			v = os.ExpandEnv(v[1 : len(v)-1])
		case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'':
			v = v[1 : len(v)-1]
		}
		env[k] = v
	}
	if len(env) == 0 {
		return nil, errors.New("no export lines")
	}
	return env, sc.Err()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RepoRoot finds the ctjdeploy checkout by walking up from the working
// directory to the folder holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// ExampleDir is the example app's folder (holding ctjdeploy.yaml).
func (s *Stack) ExampleDir() string { return filepath.Join(s.RepoRoot, "example") }

// Setenv applies the stack's whole environment to the test with t.Setenv,
// leaving alone the keys that already hold the stack's value. In a package
// whose TestMain calls Main, every key does, so its tests may be parallel;
// elsewhere t.Setenv refuses a parallel test.
func (s *Stack) Setenv(t testing.TB) {
	t.Helper()
	for k, v := range s.Env {
		if cur, ok := os.LookupEnv(k); ok && cur == v {
			continue
		}
		t.Setenv(k, v)
	}
}

// Main is for the TestMain of a package whose stack tests run in parallel:
// unless the run is -short, it brings the stack up (as Start does) and lays
// its environment over the whole process, for every test of the binary, so
// that Setenv changes nothing and no test has to be serial for it. A stack
// that fails to start is reported by each test's Start. Main runs the tests
// and returns their exit code.
func Main(m *testing.M) int {
	flag.Parse()
	if !testing.Short() {
		startOnce()
		if startErr == nil {
			for k, v := range started.Env {
				os.Setenv(k, v)
			}
		}
	}
	return m.Run()
}

// Environ is this process's environment with the stack's laid over it, for
// exec.Cmd.Env; unlike Setenv it suits parallel tests.
func (s *Stack) Environ() []string {
	out := make([]string, 0, len(os.Environ())+len(s.Env))
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := s.Env[k]; !ok {
			out = append(out, kv)
		}
	}
	for k, v := range s.Env {
		out = append(out, k+"="+v)
	}
	return out
}

// Command is exec.Command with the stack's environment (PATH puts
// Terraform 1.5.7 and /usr/bin/docker first).
func (s *Stack) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = s.Environ()
	return cmd
}

// AWSConfig is an SDK configuration for the stack's moto server that does
// not depend on this process's environment or ~/.aws.
func (s *Stack) AWSConfig(t testing.TB) aws.Config {
	t.Helper()
	cfg, err := s.awsConfig(context.Background())
	if err != nil {
		t.Fatalf("aws config for moto: %v", err)
	}
	// Under a loaded CI machine the SDK has been seen to retry a create
	// whose first answer was lost: say so in the test's log.
	cfg.ClientLogMode = aws.LogRetries
	cfg.Logger = logging.LoggerFunc(func(_ logging.Classification, format string, v ...any) {
		t.Logf("aws sdk: "+format, v...)
	})
	return cfg
}

func (s *Stack) awsConfig(ctx context.Context) (aws.Config, error) {
	return config.LoadDefaultConfig(ctx,
		config.WithRegion(Region),
		config.WithBaseEndpoint(s.MotoEndpoint),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
	)
}

// ECS is an ECS client for the stack's moto server.
func (s *Stack) ECS(t testing.TB) *ecs.Client { return ecs.NewFromConfig(s.AWSConfig(t)) }

// ECR is an ECR client for the stack's moto server.
func (s *Stack) ECR(t testing.TB) *ecr.Client { return ecr.NewFromConfig(s.AWSConfig(t)) }

// Names are a test's own AWS resource names.
type Names struct {
	Prefix       string // e.g. "tdeployrollback-3f9a1c-"
	Cluster      string
	Service      string
	Family       string // task definition family
	BackendRepo  string // ECR repository of the django image
	FrontendRepo string // ECR repository of the next image
}

var nonAlnum = regexp.MustCompile(`[^a-z0-9]+`)

// NewNames makes names unique to this test and process, valid for ECS
// clusters, services, families and ECR repositories (lowercase, digits, -).
func NewNames(t testing.TB) Names {
	t.Helper()
	base := nonAlnum.ReplaceAllString(strings.ToLower(t.Name()), "")
	if len(base) > 24 {
		base = base[:24]
	}
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	p := "t" + base + "-" + hex.EncodeToString(b) + "-"
	return Names{
		Prefix:       p,
		Cluster:      p + ExampleCluster,
		Service:      p + ExampleService,
		Family:       p + ExampleFamily,
		BackendRepo:  p + ExampleBackendRepo,
		FrontendRepo: p + ExampleFrontendRepo,
	}
}

// Resources are what CreateResources made (or found).
type Resources struct {
	ClusterArn        string
	ServiceArn        string
	TaskDefinitionArn string            // the revision the service runs
	RepositoryURIs    map[string]string // repository name → moto's URI
}
