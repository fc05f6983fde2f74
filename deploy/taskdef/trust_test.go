package taskdef

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// Issue 20, finding 1: a map key that reads like the path of a secret
// reference is a map key: the value under it is a Docker label (or a log
// option), registered in clear, and refused.
func TestTaintByStructureKeyLikePathRefused(t *testing.T) {
	for _, c := range []struct{ name, tmpl, where string }{
		{"dockerLabels", `{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "dockerLabels": {"x.secrets[0].valueFrom": "{{ tf "db_password" }}"}}]}`,
			`containerDefinitions[0].dockerLabels["x.secrets[0].valueFrom"]`},
		{"dockerLabels derived", `{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "dockerLabels": {"x.secrets[0].valueFrom": "{{ printf "%x" (tf "db_password") }}"}}]}`,
			`containerDefinitions[0].dockerLabels["x.secrets[0].valueFrom"]`},
		{"log option", `{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "logConfiguration": {"logDriver": "awslogs", "options": {"secretOptions[0].valueFrom": "{{ tf "db_password" }}"}}}]}`,
			`containerDefinitions[0].logConfiguration.options["secretOptions[0].valueFrom"]`},
		{"credentialsParameter key", `{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "dockerLabels": {"repositoryCredentials.credentialsParameter": "{{ tf "db_password" }}"}}]}`,
			`containerDefinitions[0].dockerLabels["repositoryCredentials.credentialsParameter"]`},
		{"secrets at the top level", `{"family": "f", "secrets": [{"valueFrom": "{{ tf "db_password" }}"}], "containerDefinitions": [{"name": "a", "image": "i"}]}`,
			`secrets[0].valueFrom`},
		{"secrets outside a container", `{"family": "f", "volumes": [{"name": "v", "secrets": [{"valueFrom": "{{ tf "db_password" }}"}]}], "containerDefinitions": [{"name": "a", "image": "i"}]}`,
			`volumes[0].secrets[0].valueFrom`},
		{"a key holding it", `{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "dockerLabels": {"{{ tf "db_password" }}": "x"}}]}`,
			`containerDefinitions[0].dockerLabels (a key in it)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			td, err := Render("td.json", []byte(c.tmpl), derivedInputs())
			if err == nil {
				t.Fatalf("accepted: %+v", td.ContainerDefinitions[0].DockerLabels)
			}
			if exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), c.where) || !strings.Contains(err.Error(), `sensitive Terraform output "db_password"`) {
				t.Errorf("err = %v (exit %d), want it to name %s", err, exitcode.Of(err), c.where)
			}
			if strings.Contains(err.Error(), secretValue) || strings.Contains(err.Error(), hex.EncodeToString([]byte(secretValue))[:16]) {
				t.Errorf("error shows the value: %v", err)
			}
		})
	}
}

// Issue 20, finding 2: a sensitive value rendered as a valueFrom must name
// a secret (an ARN or an SSM parameter name), not be one.
func TestTaintValueFromMustBeReference(t *testing.T) {
	in := derivedInputs()
	in.Outputs["pw"] = o(`"hunter2 with spaces&=!"`, true)
	in.Outputs["pw_arn"] = o(`"arn:aws:ssm:us-west-2:123456789012:parameter/app/pw"`, true)
	in.Outputs["pw_name"] = o(`"/app/db/pw"`, true)
	ctr := func(extra string) string {
		return `{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", ` + extra + `}]}`
	}
	for _, c := range []struct {
		name, tmpl string
		ok         bool
	}{
		{"secret itself", ctr(`"secrets": [{"name": "P", "valueFrom": "{{ tf "pw" }}"}]`), false},
		{"derived", ctr(`"secrets": [{"name": "P", "valueFrom": "{{ print "p=" (tf "db_password") }}"}]`), false},
		{"log secretOption", ctr(`"logConfiguration": {"logDriver": "awslogs", "secretOptions": [{"name": "P", "valueFrom": "{{ tf "pw" }}"}]}`), false},
		{"credentialsParameter", ctr(`"repositoryCredentials": {"credentialsParameter": "{{ tf "pw" }}"}`), false},
		{"an SSM ARN", ctr(`"secrets": [{"name": "P", "valueFrom": "{{ tf "pw_arn" }}"}]`), true},
		{"a parameter name", ctr(`"secrets": [{"name": "P", "valueFrom": "{{ tf "pw_name" }}"}]`), true},
		{"a Secrets Manager ARN", ctr(`"repositoryCredentials": {"credentialsParameter": "arn:aws:secretsmanager:us-west-2:123456789012:secret:{{ tf "pw_name" }}"}`), true},
		{"log secretOption ARN", ctr(`"logConfiguration": {"logDriver": "awslogs", "secretOptions": [{"name": "P", "valueFrom": "{{ tf "pw_arn" }}"}]}`), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Render("td.json", []byte(c.tmpl), in)
			if c.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "neither an SSM parameter or Secrets Manager ARN") {
				t.Fatalf("err = %v", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the value: %v", err)
			}
		})
	}
}

// Issue 20, finding 3: every variable ctjdeploy masks is refused in a plain
// field, as a sensitive output is; AWS credentials always.
func TestMaskedEnvRefusedInPlain(t *testing.T) {
	vals := map[string]string{
		"AWS_SESSION_TOKEN":              "IQoJb3JpZ2luX2VjEXAMPLEsessiontoken",
		"AWS_ACCESS_KEY_ID":              "AKIAIOSFODNN7EXAMPLE",
		"AWS_SECRET_ACCESS_KEY":          "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"GITHUB_TOKEN":                   "ghs_exampleexampleexample",
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN": "eyJ0eXAiexampleexample",
		"ACTIONS_RUNTIME_URL":            "https://pipelines.example/abc123",
		"SENTRY_DSN":                     "https://dsn-private-77@sentry",
		"GIT_SHA":                        "abc1234",
	}
	for name := range vals {
		if name == "GIT_SHA" {
			continue
		}
		for _, expr := range []string{`{{ env "` + name + `" }}`, `{{ printf "%x" (env "` + name + `") }}`, `pre-{{ env "` + name + `" }}`} {
			t.Run(name+" "+expr, func(t *testing.T) {
				in := exampleInputs()
				in.Env = func(k string) (string, bool) { v, ok := vals[k]; return v, ok }
				in.SecretEnv = []string{"SENTRY_*"}
				tmpl := `{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "environment": [
  {"name": "G", "value": "{{ env "GIT_SHA" }}"}, {"name": "X", "value": "` + expr + `"}]}]}`
				td, err := Render("td.json", []byte(tmpl), in)
				if err == nil {
					t.Fatalf("registered in plain: %v", envOf(td.ContainerDefinitions[0]))
				}
				if exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "containerDefinitions[0].environment[1].value") || !strings.Contains(err.Error(), "secret environment variable "+name) {
					t.Errorf("err = %v", err)
				}
				if strings.Contains(err.Error(), vals[name]) {
					t.Errorf("error shows the value: %v", err)
				}
			})
		}
	}
	// A plain variable is still plain.
	in := exampleInputs()
	in.Env = func(k string) (string, bool) { v, ok := vals[k]; return v, ok }
	if _, err := Render("td.json", []byte(`{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "environment": [{"name": "G", "value": "{{ env "GIT_SHA" }}"}]}]}`), in); err != nil {
		t.Fatal(err)
	}
}

// Issue 20, finding 7: the template file is bounded (1 MiB) before it is
// read whole.
func TestTemplateSizeBounded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "td.json")
	big := `{"family": "f", "containerDefinitions": [{"name": "a", "image": "i"}]}` + strings.Repeat(" ", MaxTemplate)
	if err := os.WriteFile(p, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadTemplate(p)
	if err == nil || exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "task definition template") || !strings.Contains(err.Error(), "larger than 1024 KiB") {
		t.Fatalf("err = %v", err)
	}
	if err := os.WriteFile(p, []byte(big[:MaxTemplate]), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadTemplate(p); err != nil || len(b) != MaxTemplate {
		t.Fatalf("at the bound: %d bytes, %v", len(b), err)
	}
}
