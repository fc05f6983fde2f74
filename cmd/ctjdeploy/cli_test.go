package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// runCLI runs ctjdeploy in dir with args and returns the exit code, stdout
// and stderr.
func runCLI(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	if dir != "" {
		t.Chdir(dir)
	}
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

const cliConfig = `environments:
  stage:
    region: us-west-2
    cluster: incubator-prod
    service: civic-tech-jobs-fullstack-stage
    task_definition: stage/ecs-task-def.json
    terraform:
      dir: infra/stage
    images:
      django: {repository: civic-tech-jobs-backend,  context: backend,  dockerfile: stage/django.dockerfile}
  prod:
    region: us-west-2
    cluster: c
    service: s
    task_definition: td.json
    images:
      web: {repository: web, context: ., dockerfile: Dockerfile}
`

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ctjdeploy.yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestHelpOfEachCommand(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"ctjdeploy [global flags] ENV [command] [flags]", "Exit codes", "rollback", "iam-policy", "--config", "--output", "--no-color"}},
		{[]string{"stage", "--help"}, []string{"ctjdeploy [global flags] ENV [flags]", "--dry-run", "--tag", "--no-build", "--no-wait", "--timeout", "--force", "never the data guard"}},
		{[]string{"stage", "rollback", "--help"}, []string{"ENV rollback [--to TAG]", "--to", "--dry-run", "--no-wait", "--timeout", "not \"revision - 1\""}},
		{[]string{"stage", "status", "--help"}, []string{"ENV status", "drift"}},
		{[]string{"stage", "history", "--help"}, []string{"ENV history", "newest first"}},
		{[]string{"stage", "iam-policy", "--help"}, []string{"ENV iam-policy", "iam:PassRole"}},
		{[]string{"version", "--help"}, []string{"version"}},
		{[]string{"completion", "bash", "--help"}, []string{"bash"}},
	}
	for _, c := range cases {
		code, out, errOut := runCLI(t, "", c.args...)
		if code != 0 {
			t.Errorf("%v: exit %d, stderr %s", c.args, code, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: help lacks %q:\n%s", c.args, w, out)
			}
		}
	}
}

func TestCompletionScript(t *testing.T) {
	code, out, _ := runCLI(t, "", "completion", "bash")
	if code != 0 || !strings.Contains(out, "__start_ctjdeploy") {
		t.Fatalf("completion bash: exit %d\n%.200s", code, out)
	}
	dir := writeConfig(t, cliConfig)
	code, out, _ = runCLI(t, dir, "__complete", "status", "st")
	if code != 0 || !strings.Contains(out, "stage") || strings.Contains(out, "prod") {
		t.Fatalf("ENV completion: exit %d\n%s", code, out)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "ctjdeploy ") {
		t.Fatalf("version: %d %q", code, out)
	}
	code, out, _ = runCLI(t, "", "--output", "json", "version")
	if code != 0 || !strings.Contains(out, `"version"`) {
		t.Fatalf("version json: %d %q", code, out)
	}
}

func TestInvalidInputExits2(t *testing.T) {
	good := writeConfig(t, cliConfig)
	bad := writeConfig(t, strings.Replace(cliConfig, "    cluster: c\n", "    cluster: c\n    clutser: d\n", 1))
	missing := writeConfig(t, strings.Replace(cliConfig, "    service: s\n", "", 1))
	cases := []struct {
		name string
		dir  string
		args []string
		want []string
	}{
		{"no config", t.TempDir(), []string{"stage"}, []string{"ctjdeploy.yaml not found", "--config"}},
		{"unknown key", bad, []string{"stage", "status"}, []string{"ctjdeploy.yaml:14:", `unknown key "clutser"`}},
		{"missing key", missing, []string{"prod", "history"}, []string{`missing the required key "service"`, "environments.prod"}},
		{"unknown env", good, []string{"staging"}, []string{`no environment "staging"`, "prod, stage"}},
		{"unknown env rollback", good, []string{"staging", "rollback"}, []string{`no environment "staging"`}},
		{"bad output", good, []string{"--output", "yaml", "stage"}, []string{"--output", "text or json"}},
		{"bad flag", good, []string{"stage", "--dry-runn"}, []string{"unknown flag", "--dry-runn"}},
		{"bad timeout", good, []string{"stage", "--timeout", "soon"}, []string{"--timeout"}},
		{"short --to", good, []string{"stage", "rollback", "--to", "abc"}, []string{"at least 7 characters"}},
		{"extra args", good, []string{"stage", "status", "extra"}, []string{"unexpected arguments"}},
		{"missing files", good, []string{"stage"}, []string{"ecs-task-def.json does not exist", "django.dockerfile"}},
		{"config flag elsewhere", t.TempDir(), []string{"--config", filepath.Join(good, "ctjdeploy.yaml"), "nope", "status"}, []string{`no environment "nope"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, c.dir, c.args...)
			if code != exitcode.Invalid {
				t.Errorf("exit %d, want 2; stderr: %s", code, errOut)
			}
			if out != "" {
				t.Errorf("stdout should be empty on invalid input: %q", out)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q: %s", w, errOut)
				}
			}
		})
	}
}

func TestConfigPathsResolveAgainstConfigFolder(t *testing.T) {
	dir := writeConfig(t, cliConfig)
	os.MkdirAll(filepath.Join(dir, "stage"), 0o755)
	os.WriteFile(filepath.Join(dir, "stage/ecs-task-def.json"), []byte("{}"), 0o644)
	// Run from elsewhere: the files are looked for under --config's folder,
	// and the check happens before anything is contacted.
	code, _, errOut := runCLI(t, t.TempDir(), "--config", filepath.Join(dir, "ctjdeploy.yaml"), "stage", "--dry-run", "--tag", "abc1234")
	if code != exitcode.Invalid {
		t.Fatalf("exit %d, want 2: %s", code, errOut)
	}
	for _, want := range []string{filepath.Join(dir, "infra/stage"), filepath.Join(dir, "stage/django.dockerfile"), filepath.Join(dir, "backend")} {
		if !strings.Contains(errOut, want+" does not exist") {
			t.Errorf("stderr lacks %q: %s", want, errOut)
		}
	}
	if strings.Contains(errOut, "ecs-task-def.json does not exist") {
		t.Errorf("the template exists under the config's folder: %s", errOut)
	}
}
