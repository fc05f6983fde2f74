package main

// deploy-stage.yml's own steps, run as a runner would run them: its `run:`
// steps in order with bash, the GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH and
// GITHUB_STEP_SUMMARY files of a runner, each step's `if:` decided; its
// `uses:` steps stood in for by the local stack (the app's checkout is a copy
// of the example as its own git repository, ctjdeploy's checkout is this
// checkout, Go and Terraform as installed, credentials and endpoints from the
// stack: AWS_ENDPOINT_URL at the stack's ECS simulator). The `${{ }}`
// expressions are resolved from a table of the ones the workflow uses: one
// it does not know fails the test, so a change to the workflow is noticed.
//
// Three runs against the example service: a deploy (exit 0, outcome
// deployed), a bad commit (django exits 1: exit 3, rolled-back), and
// rollback_to the good commit's tag (exit 0). Then the release path: the
// workflow called at a release tag downloads the release's archive (served
// on 127.0.0.1 as GitHub would: RELEASES/OWNER/REPO/releases/download/TAG)
// and runs it only when its checksum matches checksums.txt.
// About 110 s, above the 30 s a test aims at: three real rollouts whose
// tasks run as containers on the stack's simulator (the bad commit's until
// the circuit breaker counts three failed tasks), and a build of ctjdeploy;
// it is the only test of the workflow users run.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// liveTaskDefinition is the task definition the example service runs.
func liveTaskDefinition(t *testing.T, st *teststack.Stack) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ds, err := st.ECS(t).DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(teststack.ExampleCluster), Services: []string{teststack.ExampleService}})
	if err != nil || len(ds.Services) != 1 {
		t.Fatalf("DescribeServices: %v", err)
	}
	return aws.ToString(ds.Services[0].TaskDefinition)
}

type wfStep struct {
	Name             string            `yaml:"name"`
	ID               string            `yaml:"id"`
	If               string            `yaml:"if"`
	Uses             string            `yaml:"uses"`
	Run              string            `yaml:"run"`
	Env              map[string]string `yaml:"env"`
	With             map[string]string `yaml:"with"`
	WorkingDirectory string            `yaml:"working-directory"`
}

// wfRun is one run of the workflow's job.
type wfRun struct {
	t         *testing.T
	st        *teststack.Stack
	workspace string
	temp      string
	inputs    map[string]string
	job       map[string]string // job.workflow_repository, _ref, _sha
	serverURL string
	outputs   map[string]map[string]string // step id -> outputs
	env       map[string]string            // from GITHUB_ENV
	path      []string                     // from GITHUB_PATH
	summary   string
	log       bytes.Buffer
}

var exprRE = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// eval resolves the expressions deploy-stage.yml uses.
func (r *wfRun) eval(expr string) (string, bool) {
	in := func(k string) string { return r.inputs[k] }
	out := func(id, k string) string { return r.outputs[id][k] }
	switch expr {
	case "inputs.tool-repository || fromJSON(toJSON(job)).workflow_repository":
		return firstNonEmpty(in("tool-repository"), r.job["workflow_repository"]), true
	case "inputs.tool-ref || fromJSON(toJSON(job)).workflow_ref":
		return firstNonEmpty(in("tool-ref"), r.job["workflow_ref"]), true
	case "inputs.tool-ref || fromJSON(toJSON(job)).workflow_sha":
		return firstNonEmpty(in("tool-ref"), r.job["workflow_sha"]), true
	case "steps.tool.outputs.release":
		return out("tool", "release"), true
	case "steps.tool.outputs.repository":
		return out("tool", "repository"), true
	case "steps.tool.outputs.sha":
		return out("tool", "sha"), true
	case "steps.tool.outputs.release != ''":
		return fmt.Sprint(out("tool", "release") != ""), true
	case "steps.tool.outputs.release == ''":
		return fmt.Sprint(out("tool", "release") == ""), true
	case "github.server_url":
		return r.serverURL, true
	case "inputs.config":
		return in("config"), true
	case "inputs.environment":
		return in("environment"), true
	case "inputs.rollback_to":
		return in("rollback_to"), true
	case "inputs.rollback_to && ' rollback' || ''":
		if in("rollback_to") != "" {
			return " rollback", true
		}
		return "", true
	}
	return "", false
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// subst replaces every ${{ }} in s.
func (r *wfRun) subst(s string) string {
	return exprRE.ReplaceAllStringFunc(s, func(m string) string {
		expr := exprRE.FindStringSubmatch(m)[1]
		v, ok := r.eval(expr)
		if !ok {
			r.t.Fatalf("deploy-stage.yml uses the expression %q, which this test does not know: add it to wfRun.eval", expr)
		}
		return v
	})
}

// fileKV reads a GITHUB_OUTPUT/GITHUB_ENV file: NAME=VALUE lines and
// NAME<<DELIM heredocs.
func fileKV(t *testing.T, path string) map[string]string {
	m := map[string]string{}
	b, err := os.ReadFile(path)
	if err != nil {
		return m
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if k, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(k, "=") {
			var v []string
			for sc.Scan() && sc.Text() != delim {
				v = append(v, sc.Text())
			}
			m[k] = strings.Join(v, "\n")
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// stand-ins for the `uses:` steps
func (r *wfRun) uses(s wfStep, appSrc string) {
	name, _, _ := strings.Cut(s.Uses, "@")
	switch name {
	case "actions/checkout":
		path := filepath.Join(r.workspace, s.With["path"])
		if s.With["path"] == "app" {
			if err := os.Symlink(appSrc, path); err != nil {
				r.t.Fatal(err)
			}
			return
		}
		// ctjdeploy itself: this checkout (at the commit under test)
		if err := os.Symlink(r.st.RepoRoot, path); err != nil {
			r.t.Fatal(err)
		}
	case "actions/setup-go", "hashicorp/setup-terraform":
		// Go and the stack's Terraform are on PATH
	case "aws-actions/configure-aws-credentials":
		// the stack's credentials and endpoint (the simulator), set for every step
	default:
		r.t.Fatalf("deploy-stage.yml uses %s, which this test has no stand-in for", name)
	}
}

func (r *wfRun) environ(step map[string]string, files map[string]string) []string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for k, v := range r.st.Env {
		env[k] = v
	}
	env["AWS_ENDPOINT_URL"] = r.st.SimEndpoint // what `scripts/stack env` gives
	for k, v := range r.env {
		env[k] = v
	}
	for k, v := range step {
		env[k] = r.subst(v)
	}
	for k, v := range files {
		env[k] = v
	}
	env["GITHUB_ACTIONS"] = "true"
	env["RUNNER_TEMP"] = r.temp
	env["RUNNER_OS"] = "Linux"
	env["RUNNER_ARCH"] = map[string]string{"amd64": "X64", "arm64": "ARM64"}[goArch()]
	env["NO_COLOR"] = "1"
	if len(r.path) > 0 {
		env["PATH"] = strings.Join(r.path, ":") + ":" + env["PATH"]
	}
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

func goArch() string {
	out, _ := exec.Command("go", "env", "GOARCH").Output()
	return strings.TrimSpace(string(out))
}

// run runs the job's steps in order and returns the exit code of the step
// that failed (0 when none did) and the deploy step's outputs.
func (r *wfRun) run(steps []wfStep, appSrc string) (int, map[string]string) {
	r.outputs = map[string]map[string]string{}
	r.env = map[string]string{}
	for i, s := range steps {
		if s.If != "" {
			cond := strings.TrimSpace(s.If)
			if !strings.HasPrefix(cond, "${{") {
				cond = "${{ " + cond + " }}"
			}
			if r.subst(cond) != "true" {
				fmt.Fprintf(&r.log, "## step %d skipped (if: %s)\n", i+1, s.If)
				continue
			}
		}
		if s.Uses != "" {
			fmt.Fprintf(&r.log, "## step %d: uses %s (stand-in)\n", i+1, s.Uses)
			r.uses(s, appSrc)
			continue
		}
		files := map[string]string{}
		for _, k := range []string{"GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY"} {
			f := filepath.Join(r.temp, fmt.Sprintf("%s.%d", strings.ToLower(k), i))
			if err := os.WriteFile(f, nil, 0o644); err != nil {
				r.t.Fatal(err)
			}
			files[k] = f
		}
		script := r.subst(s.Run)
		cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script) // a runner's default shell
		cmd.Dir = filepath.Join(r.workspace, s.WorkingDirectory)
		cmd.Env = r.environ(s.Env, files)
		cmd.Stdout, cmd.Stderr = &r.log, &r.log
		fmt.Fprintf(&r.log, "## step %d: %s\n", i+1, r.subst(s.Name))
		err := cmd.Run()
		if s.ID != "" {
			r.outputs[s.ID] = fileKV(r.t, files["GITHUB_OUTPUT"])
		}
		for k, v := range fileKV(r.t, files["GITHUB_ENV"]) {
			r.env[k] = v
		}
		if b, _ := os.ReadFile(files["GITHUB_PATH"]); len(b) > 0 {
			for _, p := range strings.Fields(string(b)) {
				r.path = append([]string{p}, r.path...)
			}
		}
		if b, _ := os.ReadFile(files["GITHUB_STEP_SUMMARY"]); len(b) > 0 {
			r.summary += string(b)
		}
		if err != nil {
			code := 1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			return code, r.outputs["deploy"]
		}
	}
	return 0, r.outputs["deploy"]
}

func loadDeployWorkflow(t *testing.T, root string) []wfStep {
	var w struct {
		Jobs map[string]struct {
			Steps []wfStep `yaml:"steps"`
		} `yaml:"jobs"`
	}
	readYAML(t, filepath.Join(root, ".github", "workflows", "deploy-stage.yml"), &w)
	steps := w.Jobs["deploy"].Steps
	if len(steps) < 5 {
		t.Fatalf("deploy-stage.yml's job deploy has %d steps", len(steps))
	}
	return steps
}

func newWFRun(t *testing.T, st *teststack.Stack, inputs map[string]string) *wfRun {
	r := &wfRun{t: t, st: st, workspace: t.TempDir(), temp: t.TempDir(),
		inputs: map[string]string{"config": "ctjdeploy.yaml", "environment": "stage", "rollback_to": "", "tool-repository": "", "tool-ref": ""},
		job: map[string]string{"workflow_repository": "hackforla/ctjdeploy",
			"workflow_ref": "hackforla/ctjdeploy/.github/workflows/deploy-stage.yml@refs/heads/main",
			"workflow_sha": "0123456789abcdef0123456789abcdef01234567"},
		serverURL: "https://github.com"}
	for k, v := range inputs {
		r.inputs[k] = v
	}
	return r
}

// exampleRepo is a copy of the example as its own git repository, on the
// stack's registry.
func exampleRepo(t *testing.T, st *teststack.Stack) string {
	dir := t.TempDir()
	sh := func(script string) string {
		cmd := exec.Command("bash", "-ec", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t",
			"GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir, "REG="+st.Registry, "EX="+st.ExampleDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	sh(`cp -r "$EX"/. . && sed -i "s|127.0.0.1:5055|$REG|" ctjdeploy.yaml && git init -q -b main && git add -A && git commit -qm example`)
	return dir
}

func gitIn(t *testing.T, dir, script string) string {
	cmd := exec.Command("bash", "-ec", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestDeployWorkflowSteps(t *testing.T) {
	st := teststack.Start(t)
	steps := loadDeployWorkflow(t, st.RepoRoot)
	app := exampleRepo(t, st)
	good := gitIn(t, app, "git rev-parse HEAD")

	check := func(name string, r *wfRun, code, wantCode int, out map[string]string, wantOutcome string) {
		t.Helper()
		if code != wantCode {
			t.Fatalf("%s: the job ended with exit %d, want %d\n%s", name, code, wantCode, r.log.String())
		}
		if out["outcome"] != wantOutcome {
			t.Errorf("%s: step output outcome=%q, want %q (outputs %v)", name, out["outcome"], wantOutcome, out)
		}
		if !strings.Contains(r.summary, "```mermaid\ngantt") || !strings.Contains(r.summary, "ctjdeploy stage") {
			t.Errorf("%s: the job summary lacks its title or gantt:\n%s", name, r.summary)
		}
		if !strings.Contains(r.log.String(), "::group::") {
			t.Errorf("%s: no ::group:: in the log", name)
		}
		t.Logf("%s: exit %d, outputs %v", name, code, out)
	}

	// 1. a deploy, with ctjdeploy built from source (a branch ref)
	r := newWFRun(t, st, nil)
	code, out := r.run(steps, app)
	check("deploy", r, code, 0, out, "deployed")
	if out["tag"] != good || !strings.Contains(out["task-definition-arn"], teststack.ExampleFamily+":") {
		t.Errorf("deploy: outputs tag=%q task-definition-arn=%q, want %s and a revision of %s", out["tag"], out["task-definition-arn"], good, teststack.ExampleFamily)
	}
	if !strings.Contains(r.log.String(), "built from source") {
		t.Errorf("deploy: the tool step did not choose to build from source:\n%s", r.log.String())
	}
	goodTD := out["task-definition-arn"]

	// 2. a bad commit: django exits 1 at start; ECS rolls it back
	gitIn(t, app, `sed -i 's|^set -eu$|set -eu\necho "SECRET_KEY must not be empty" >\&2; exit 1|' backend/entrypoint.sh && git commit -qam bad`)
	r = newWFRun(t, st, nil)
	code, out = r.run(steps, app)
	check("bad commit", r, code, 3, out, "rolled-back")
	if !strings.Contains(r.summary, "SECRET_KEY must not be empty") || !strings.Contains(r.summary, "ROLLBACK") {
		t.Errorf("bad commit: the summary lacks the container's log line or the rollback state:\n%s", r.summary)
	}

	// 3. rollback_to the good commit's tag (7 characters)
	r = newWFRun(t, st, map[string]string{"rollback_to": good[:7]})
	code, out = r.run(steps, app)
	t.Logf("rollback_to: exit %d, outputs %v", code, out)
	if code != 0 {
		t.Fatalf("rollback_to: exit %d\n%s", code, r.log.String())
	}
	if !regexp.MustCompile(`(?m)^## step \d+: ctjdeploy stage rollback$`).MatchString(r.log.String()) {
		t.Errorf("rollback_to: the deploy step is not the rollback:\n%s", r.log.String())
	}
	if td := liveTaskDefinition(t, st); td != goodTD {
		t.Errorf("rollback_to: the service runs %s, want the good commit's %s", td, goodTD)
	}
}

// TestDeployWorkflowReleaseBinary: called at a release tag, the workflow's
// steps download the release's archive and check it against checksums.txt:
// a matching archive is installed and runs (`ctjdeploy version`), a
// tampered one stops the job before anything runs.
func TestDeployWorkflowReleaseBinary(t *testing.T) {
	st := teststack.Start(t)
	steps := loadDeployWorkflow(t, st.RepoRoot)
	// only the steps up to the binary on PATH: the tool's choice and its download
	var toolSteps []wfStep
	for _, s := range steps {
		toolSteps = append(toolSteps, s)
		if strings.HasPrefix(s.Name, "Build ctjdeploy") {
			break
		}
	}
	bin := filepath.Join(t.TempDir(), "ctjdeploy")
	build := exec.Command("go", "build", "-o", bin, "-ldflags", "-X main.version=v9.8.7", "./cmd/ctjdeploy")
	build.Dir = st.RepoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	arch := goArch()
	archive := fmt.Sprintf("ctjdeploy_9.8.7_linux_%s.tar.gz", arch)
	tgz := tarGz(t, bin)
	sum := sha256.Sum256(tgz)
	for _, tampered := range []bool{false, true} {
		body := tgz
		if tampered {
			body = append(append([]byte(nil), tgz...), 0)
		}
		checksums := fmt.Sprintf("%s  %s\n%s  ctjdeploy_9.8.7_darwin_arm64.tar.gz\n", hex.EncodeToString(sum[:]), archive, strings.Repeat("0", 64))
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			switch req.URL.Path {
			case "/hackforla/ctjdeploy/releases/download/v9.8.7/" + archive:
				w.Write(body)
			case "/hackforla/ctjdeploy/releases/download/v9.8.7/checksums.txt":
				w.Write([]byte(checksums))
			default:
				http.NotFound(w, req)
			}
		}))
		r := newWFRun(t, st, nil)
		r.serverURL = srv.URL
		r.job["workflow_ref"] = "hackforla/ctjdeploy/.github/workflows/deploy-stage.yml@refs/tags/v9.8.7"
		// the checkouts must not be needed: the app's is a stand-in, ctjdeploy's is skipped
		code, _ := r.run(toolSteps, t.TempDir())
		srv.Close()
		log := r.log.String()
		if tampered {
			if code == 0 || !strings.Contains(log, "FAILED") {
				t.Errorf("a tampered archive: exit %d, want a failure before it runs:\n%s", code, log)
			}
			continue
		}
		if code != 0 || r.outputs["tool"]["release"] != "v9.8.7" {
			t.Fatalf("release: exit %d, release output %q\n%s", code, r.outputs["tool"]["release"], log)
		}
		if !strings.Contains(log, "step") || !strings.Contains(log, "skipped (if: steps.tool.outputs.release == '')") {
			t.Errorf("release: the build steps were not skipped:\n%s", log)
		}
		t.Logf("the release job's log:\n%s", log)
		if !strings.Contains(log, "v9.8.7") || !strings.Contains(log, ": OK") {
			t.Errorf("release: the checksum was not verified or the binary did not run:\n%s", log)
		}
	}
}

func tarGz(t *testing.T, bin string) []byte {
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range []struct {
		name string
		data []byte
		mode int64
	}{{"README.md", []byte("readme\n"), 0o644}, {"ctjdeploy", b, 0o755}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.data)
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}
