package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/ecssim"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// The values that must never be printed: the example's sensitive Terraform
// output, and the ECR token (the registry password, and the base64 token
// GetAuthorizationToken returns).
var e2eSecrets = []string{
	"s3cr3t-example-password-do-not-print",
	teststack.RegistryPassword,
	base64.StdEncoding.EncodeToString([]byte(teststack.RegistryUser + ":" + teststack.RegistryPassword)),
}

// e2eEnv is a test's own environment shaped like the example (its own
// cluster, service, family and repositories) behind the rollout simulator.
// Its template also hands a sensitive output to secrets[].valueFrom (a
// secret's ARN kept in a sensitive output), so the value reaches the
// registered definition and every command's output must mask it.
func e2eEnv(t *testing.T) (cfgPath string, n teststack.Names) {
	t.Helper()
	return e2eEnvPolls(t, 1)
}

// e2eEnvPolls is e2eEnv with a rollout that takes polls polls to complete.
func e2eEnvPolls(t *testing.T, polls int) (cfgPath string, n teststack.Names) {
	t.Helper()
	st := teststack.Start(t)
	st.Setenv(t)
	n = teststack.NewNames(t)
	st.CreateResources(t, n)
	st.SetMaximumPercent(t, n, 100)
	sim, err := ecssim.New(ecssim.Options{Upstream: st.MotoEndpoint, Scenario: ecssim.Success, Polls: polls})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	t.Setenv("HOME", t.TempDir())

	dir, s := exampleCopy(t, st, n)
	secretKey := `{"name": "SECRET_KEY", "valueFrom": "{{ tf "django_secret_key_ssm_arn" }}"}`
	if !strings.Contains(s, secretKey) {
		t.Fatalf("the example template changed; update this test (no %s)", secretKey)
	}
	s = strings.Replace(s, secretKey, secretKey+`,
        {"name": "DB_PASSWORD_REF", "valueFrom": "{{ tf "db_password" }}"}`, 1)
	os.WriteFile(filepath.Join(dir, "td.json"), []byte(s), 0o644)
	// A template that renders the sensitive value into a plain environment
	// entry: refused, and the refusal must not show the value.
	leaky := strings.Replace(s, `{"name": "NODE_ENV", "value": "production"}`, `{"name": "NODE_ENV", "value": "{{ tf "db_password" }}"}`, 1)
	os.WriteFile(filepath.Join(dir, "leaky.json"), []byte(leaky), 0o644)

	images := `    images:
      django: {repository: ` + n.BackendRepo + `, context: backend, dockerfile: stage/django.dockerfile}
      next:   {repository: ` + n.FrontendRepo + `, context: frontend, dockerfile: stage/next.dockerfile}
`
	common := `    region: us-west-2
    cluster: ` + n.Cluster + `
    service: ` + n.Service + `
    registry: ` + st.Registry + `
    terraform: {dir: infra/stage}
` + images
	cfg := "environments:\n  stage:\n    task_definition: td.json\n" + common + "  leaky:\n    task_definition: leaky.json\n" + common
	cfgPath = filepath.Join(dir, "ctjdeploy.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, n
}

// assertNoSecret fails when any secret appears in text, except on the
// ::add-mask:: lines that hand it to GitHub's own masking.
func assertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "::add-mask::") {
			continue
		}
		for _, s := range e2eSecrets {
			if strings.Contains(line, s) {
				t.Errorf("%s shows a secret (%.6s…): %q", what, s, line)
			}
		}
	}
}

func TestEndToEndGitHubActions(t *testing.T) {
	cfg, n := e2eEnv(t)
	tag := "e2e" + strings.ReplaceAll(n.Prefix, "-", "")
	ghOut := filepath.Join(t.TempDir(), "output")
	ghSum := filepath.Join(t.TempDir(), "summary")
	t.Setenv("GITHUB_ACTIONS", "true")
	t.Setenv("GITHUB_OUTPUT", ghOut)
	t.Setenv("GITHUB_STEP_SUMMARY", ghSum)

	var out, errb bytes.Buffer
	code := run([]string{"--config", cfg, "stage", "--tag", tag}, &out, &errb)
	if code != 0 {
		t.Fatalf("deploy exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	outputs, _ := os.ReadFile(ghOut)
	summary, _ := os.ReadFile(ghSum)
	for _, want := range []string{
		"tag=" + tag + "\n",
		"outcome=deployed\n",
		"task-definition-registered=true\n",
		"task-definition-arn=arn:aws:ecs:us-west-2:123456789012:task-definition/" + n.Family + ":",
		"digest-django=sha256:",
		"digest-next=sha256:",
		"image-django=" + teststack.Start(t).Registry + "/" + n.BackendRepo + "@sha256:",
	} {
		if !strings.Contains(string(outputs), want) {
			t.Errorf("$GITHUB_OUTPUT lacks %q:\n%s", want, outputs)
		}
	}
	for _, want := range []string{tag, n.BackendRepo, "```diff", "sha256:", "deployed"} {
		if !strings.Contains(string(summary), want) {
			t.Errorf("$GITHUB_STEP_SUMMARY lacks %q:\n%s", want, summary)
		}
	}
	stderr := errb.String()
	for _, want := range []string{"::group::build", "::group::push", "::group::rollout", "::endgroup::",
		"::add-mask::" + e2eSecrets[0], "::add-mask::" + teststack.RegistryPassword} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if strings.Contains(stderr, "::error") {
		t.Errorf("a successful deploy annotated an error:\n%s", stderr)
	}
	assertNoSecret(t, "stdout", out.String())
	assertNoSecret(t, "stderr", stderr)
	assertNoSecret(t, "$GITHUB_OUTPUT", string(outputs))
	assertNoSecret(t, "$GITHUB_STEP_SUMMARY", string(summary))

	// A refusal is annotated as an error with its exit code.
	errb.Reset()
	out.Reset()
	code = run([]string{"--config", cfg, "leaky", "--tag", tag}, &out, &errb)
	if code != exitcode.Invalid {
		t.Fatalf("leaky template: exit %d, want 2\n%s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "::error title=ctjdeploy%3A invalid (exit 2)::") {
		t.Errorf("no ::error annotation for the failure:\n%s", errb.String())
	}
	assertNoSecret(t, "stderr of the leaky deploy", errb.String())
}

// TestNoCommandPrintsASecret runs every command, in text and in JSON, on an
// environment whose registered definition holds a sensitive value, and greps
// everything they print, and every file they could write, for the secrets.
func TestNoCommandPrintsASecret(t *testing.T) {
	cfg, n := e2eEnv(t)
	tag := "nosecret" + strings.ReplaceAll(n.Prefix, "-", "")
	t.Setenv("GITHUB_ACTIONS", "")
	cases := []struct {
		args []string
		want int
	}{
		{[]string{"stage", "--tag", tag, "--dry-run"}, 0},
		{[]string{"stage", "--tag", tag}, 0},
		{[]string{"stage", "--tag", tag}, 0}, // unchanged redeploy
		{[]string{"stage", "status"}, 0},
		{[]string{"stage", "history"}, 0},
		{[]string{"stage", "iam-policy"}, 0},
		// The revision live before the first deploy runs images that were
		// never pushed (":initial"): rollback says they are gone (exit 2).
		{[]string{"stage", "rollback", "--dry-run"}, exitcode.Invalid},
		{[]string{"stage", "rollback", "--to", tag, "--dry-run"}, 0},
		{[]string{"leaky", "--tag", tag, "--dry-run"}, exitcode.Invalid},
		{[]string{"leaky", "--tag", tag, "--no-build"}, exitcode.Invalid},
		{[]string{"stage", "--tag", "no-such-tag", "--no-build"}, -1},
	}
	for _, format := range []string{"text", "json"} {
		for _, c := range cases {
			var out, errb bytes.Buffer
			args := append([]string{"--config", cfg, "--output", format}, c.args...)
			code := run(args, &out, &errb)
			if c.want >= 0 && code != c.want {
				t.Errorf("%v: exit %d, want %d\nstderr:\n%s", args, code, c.want, errb.String())
			}
			if c.want < 0 && code == 0 {
				t.Errorf("%v: exit 0, want a failure", args)
			}
			assertNoSecret(t, strings.Join(c.args, " ")+" ("+format+") stdout", out.String())
			assertNoSecret(t, strings.Join(c.args, " ")+" ("+format+") stderr", errb.String())
		}
	}
	// Nothing left on disk either: the home folder and the docker config.
	for _, dir := range []string{os.Getenv("HOME"), os.Getenv("DOCKER_CONFIG")} {
		if dir == "" {
			continue
		}
		filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() || info.Size() > 1<<20 || info.Mode()&os.ModeType != 0 {
				return nil
			}
			b, rerr := os.ReadFile(p)
			if rerr != nil {
				return nil
			}
			for _, s := range e2eSecrets[1:] { // the token; Terraform's own state holds the output
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("the ECR token is written in %s", p)
				}
			}
			return nil
		})
	}
}

// Deploying the same commit twice is a no-op even though the second build
// imports the first one's inline build cache from the registry (which
// changes the image config's cache record, so the local digest): nothing is
// uploaded, nothing registered, the service is not updated.
func TestUnchangedRedeployThroughTheCLI(t *testing.T) {
	cfg, n := e2eEnv(t)
	tag := "same" + strings.ReplaceAll(n.Prefix, "-", "")
	t.Setenv("GITHUB_ACTIONS", "")
	deploy := func() map[string]any {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run([]string{"--config", cfg, "--output", "json", "stage", "--tag", tag}, &out, &errb); code != 0 {
			t.Fatalf("deploy: exit %d\n%s", code, errb.String())
		}
		var doc map[string]any
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
			t.Fatalf("not one JSON document: %v\n%s", err, out.String())
		}
		return doc
	}
	first := deploy()
	second := deploy()
	if first["registered"] != true {
		t.Fatalf("first deploy registered nothing: %v", first)
	}
	if second["registered"] != false || second["update"] != false || second["outcome"] != "unchanged" {
		t.Errorf("second deploy of the same commit: registered %v, update %v, outcome %v; want false, false, unchanged",
			second["registered"], second["update"], second["outcome"])
	}
	if first["taskDefinitionArn"] != second["taskDefinitionArn"] {
		t.Errorf("task definition changed: %v → %v", first["taskDefinitionArn"], second["taskDefinitionArn"])
	}
	for i, im := range second["images"].([]any) {
		m := im.(map[string]any)
		if m["bytesUploaded"] != float64(0) {
			t.Errorf("image %v uploaded %v bytes on an unchanged redeploy", m["name"], m["bytesUploaded"])
		}
		if f := first["images"].([]any)[i].(map[string]any); f["digest"] != m["digest"] {
			t.Errorf("image %v: digest %v → %v for the same commit", m["name"], f["digest"], m["digest"])
		}
	}
}

// exampleCopy copies the example app (its Terraform state included) into a
// folder of the test's own, since every path in a config stays inside the
// config's repository (or folder), and returns the folder and the example's
// template with n's family.
func exampleCopy(t *testing.T, st *teststack.Stack, n teststack.Names) (dir, tmpl string) {
	t.Helper()
	ex := st.ExampleDir()
	dir = t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(ex)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(ex, "stage", "ecs-task-def.json"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, strings.Replace(string(b), `"family": "civic-tech-jobs-fullstack-stage"`, `"family": "`+n.Family+`"`, 1)
}
