package taskdef

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/tfvars"
)

const secretValue = "s3cr3t-example-password-do-not-print"

var exampleTemplate = filepath.Join("..", "..", "example", "stage", "ecs-task-def.json")

func o(value string, sensitive bool) tfvars.Output {
	return tfvars.Output{Value: json.RawMessage(value), Sensitive: sensitive}
}

// exampleOutputs are the example Terraform's outputs (example/infra/stage).
func exampleOutputs() tfvars.Outputs {
	ssm := "arn:aws:ssm:us-west-2:123456789012:parameter/civic-tech-jobs"
	return tfvars.Outputs{
		"django_allowed_hosts":      o(`"stage.civictechjobs.org localhost"`, false),
		"allowed_hosts_list":        o(`["stage.civictechjobs.org","localhost"]`, false),
		"sql_engine":                o(`"django.db.backends.postgresql"`, false),
		"sql_host":                  o(`"localhost"`, false),
		"sql_port":                  o(`5432`, false),
		"db_name":                   o(`"civictechjobs"`, false),
		"db_user":                   o(`"civictechjobs_owner"`, false),
		"debug":                     o(`false`, false),
		"db_password_ssm_arn":       o(`"`+ssm+`/fullstack-stage-db-owner-password"`, false),
		"django_secret_key_ssm_arn": o(`"`+ssm+`/fullstack-stage-django-secret-key"`, false),
		"execution_role_arn":        o(`"arn:aws:iam::123456789012:role/civic-tech-jobs-fullstack-stage-execution"`, false),
		"task_role_arn":             o(`"arn:aws:iam::123456789012:role/civic-tech-jobs-fullstack-stage-task"`, false),
		"log_group":                 o(`"/ecs/civic-tech-jobs-fullstack-stage"`, false),
		"region":                    o(`"us-west-2"`, false),
		"db_password":               o(`"`+secretValue+`"`, true),
	}
}

const (
	nextImage   = "127.0.0.1:5055/civic-tech-jobs-frontend@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	djangoImage = "127.0.0.1:5055/civic-tech-jobs-backend@sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

func exampleInputs() Inputs {
	return Inputs{
		Images:  map[string]string{"next": nextImage, "django": djangoImage},
		Outputs: exampleOutputs(),
		Env: func(k string) (string, bool) {
			v, ok := map[string]string{"GIT_SHA": "abc123", "QUOTE": `a"b\c`}[k]
			return v, ok
		},
	}
}

func readExample(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(exampleTemplate)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func container(t *testing.T, td *ecs.RegisterTaskDefinitionInput, name string) ecstypes.ContainerDefinition {
	t.Helper()
	for _, c := range td.ContainerDefinitions {
		if *c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return ecstypes.ContainerDefinition{}
}

func envOf(c ecstypes.ContainerDefinition) map[string]string {
	m := map[string]string{}
	for _, kv := range c.Environment {
		m[*kv.Name] = *kv.Value
	}
	return m
}

func TestRenderExample(t *testing.T) {
	td, err := Render("stage/ecs-task-def.json", readExample(t), exampleInputs())
	if err != nil {
		t.Fatal(err)
	}
	if *td.Family != "civic-tech-jobs-fullstack-stage" || td.NetworkMode != ecstypes.NetworkModeAwsvpc || *td.Cpu != "1024" {
		t.Errorf("task fields: family %q, network %q, cpu %q", *td.Family, td.NetworkMode, *td.Cpu)
	}
	if len(td.ContainerDefinitions) != 3 {
		t.Fatalf("%d containers", len(td.ContainerDefinitions))
	}
	if got := *container(t, td, "next").Image; got != nextImage {
		t.Errorf("next image %q", got)
	}
	dj := container(t, td, "django")
	if *dj.Image != djangoImage {
		t.Errorf("django image %q", *dj.Image)
	}
	env := envOf(dj)
	for k, want := range map[string]string{"SQL_PORT": "5432", "DEBUG": "false", "DJANGO_ALLOWED_HOSTS": "stage.civictechjobs.org localhost", "SQL_HOST": "localhost"} {
		if env[k] != want {
			t.Errorf("django env %s = %q, want %q", k, env[k], want)
		}
	}
	if len(dj.Secrets) != 2 || *dj.Secrets[0].ValueFrom != "arn:aws:ssm:us-west-2:123456789012:parameter/civic-tech-jobs/fullstack-stage-db-owner-password" {
		t.Errorf("django secrets %+v", dj.Secrets)
	}
	if *dj.PortMappings[0].ContainerPort != 8000 || dj.PortMappings[0].Protocol != ecstypes.TransportProtocolTcp {
		t.Errorf("port mapping %+v", dj.PortMappings[0])
	}
	if dj.DependsOn[0].Condition != ecstypes.ContainerConditionStart {
		t.Errorf("dependsOn %+v", dj.DependsOn)
	}
	pg := container(t, td, "pgdb")
	if *pg.Image != "postgres:18" || *pg.MountPoints[0].ContainerPath != "/var/lib/postgresql" {
		t.Errorf("pgdb %+v", pg)
	}
	if td.Volumes[0].DockerVolumeConfiguration.Scope != ecstypes.ScopeShared || !*td.Volumes[0].DockerVolumeConfiguration.Autoprovision {
		t.Errorf("volume %+v", td.Volumes[0].DockerVolumeConfiguration)
	}
	if got := container(t, td, "next").LogConfiguration.Options["awslogs-group"]; got != "/ecs/civic-tech-jobs-fullstack-stage" {
		t.Errorf("log group %q", got)
	}
}

// A value with quotes, backslashes and newlines stays one string: it can
// neither break nor inject JSON.
func TestRenderEscapes(t *testing.T) {
	in := exampleInputs()
	in.Outputs["evil"] = o(`"x\", \"privileged\": true, \"y\": \"\\\n<&>"`, false)
	tmpl := `{"family": "f", "containerDefinitions": [{"name": "a", "image": "i",
  "environment": [{"name": "E", "value": "{{ tf "evil" }}"}, {"name": "Q", "value": "{{ env "QUOTE" }}"}],
  "memory": {{ tf "sql_port" }}}]}`
	td, err := Render("t.json", []byte(tmpl), in)
	if err != nil {
		t.Fatal(err)
	}
	c := td.ContainerDefinitions[0]
	if c.Privileged != nil {
		t.Fatal("a value injected a JSON field")
	}
	if got := *c.Environment[0].Value; got != "x\", \"privileged\": true, \"y\": \"\\\n<&>" {
		t.Errorf("evil value = %q", got)
	}
	if got := *c.Environment[1].Value; got != `a"b\c` {
		t.Errorf("env value = %q", got)
	}
	if *c.Memory != 5432 {
		t.Errorf("bare number: memory = %d", *c.Memory)
	}
}

func TestRenderErrors(t *testing.T) {
	base := func(container string) string {
		return `{
  "family": "f",
  "containerDefinitions": [
    {"name": "a", "image": "i"},
    ` + container + `
  ]
}`
	}
	tests := []struct {
		name string
		tmpl string
		want []string
	}{
		{"missing output", base(`{"name": "b", "image": "{{ tf "nope" }}"}`),
			[]string{"template: td.json:5:", `no output "nope"`, "db_name, db_password"}},
		{"non-scalar output", base(`{"name": "b", "image": "{{ tf "allowed_hosts_list" }}"}`),
			[]string{"template: td.json:5:", `"allowed_hosts_list" is a list`}},
		{"missing image", base(`{"name": "b", "image": "{{ image "worker" }}"}`),
			[]string{"template: td.json:5:", `no image "worker"`, "django, next"}},
		{"missing env", base(`{"name": "b", "image": "{{ env "NOPE_VAR" }}"}`),
			[]string{"template: td.json:5:", "NOPE_VAR is not set"}},
		{"data reference", base(`{"name": "b", "image": "{{ .image }}"}`),
			[]string{"template: td.json:5:"}},
		{"unknown function", base(`{"name": "b", "image": "{{ terraform "x" }}"}`),
			[]string{"template: td.json:5:", `"terraform" not defined`}},
		{"unclosed action", base(`{"name": "b", "image": "{{ tf "x" "}`),
			[]string{"template: td.json:5:"}},
		{"invalid JSON", base(`{"name": "b", "image": "i",}`),
			[]string{"td.json:5:", "invalid JSON"}},
		{"unknown field", base(`{"name": "b", "image": "i", "enviroment": []}`),
			[]string{"td.json: ", "containerDefinitions[1].enviroment", `unknown field "enviroment"`, `did you mean "environment"`}},
		{"unknown top field", `{"family": "f", "containerDefinitions": [{"name": "a", "image": "i"}], "taskRole": "x"}`,
			[]string{"taskRole", "unknown field"}},
		{"wrong type", base(`{"name": "b", "image": "i", "memoryReservation": "512"}`),
			[]string{"containerDefinitions[1].memoryReservation", "want a number"}},
		{"bad enum", base(`{"name": "b", "image": "i", "portMappings": [{"containerPort": 1, "protocol": "tcpp"}]}`),
			[]string{"containerDefinitions[1].portMappings[0].protocol", `"tcpp" is not one of: tcp, udp`}},
		{"not an object", `[1, 2]`, []string{"must be a JSON object"}},
		{"no family", `{"containerDefinitions": [{"name": "a", "image": "i"}]}`, []string{`"family" is missing`}},
		{"no containers", `{"family": "f"}`, []string{`"containerDefinitions" is empty`}},
		{"duplicate names", base(`{"name": "a", "image": "i"}`), []string{`two containers are named "a"`}},
		{"no image", base(`{"name": "b"}`), []string{"containerDefinitions[1].image is missing"}},
		{"trailing data", `{"family": "f", "containerDefinitions": [{"name": "a", "image": "i"}]} {}`, []string{"td.json:1:", "unexpected data"}},
		{"range", base(`{"name": "b", "image": "i"{{ range 1000000000 }}{{ end }}}`), []string{"template: td.json:5:", "range"}},
		{"range in define", base(`{{ define "y" }}{{ if true }}{{ range 3 }}{{ end }}{{ end }}{{ end }}{"name": "b", "image": "i"}`), []string{"template: td.json:5:", "range"}},
		{"key twice", base(`{"name": "b", "image": "i", "Image": "j"}`), []string{"given twice"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render("td.json", []byte(tc.tmpl), exampleInputs())
			if err == nil {
				t.Fatal("no error")
			}
			if exitcode.Of(err) != exitcode.Invalid {
				t.Errorf("exit code %d, want 2", exitcode.Of(err))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestRenderDropsDescribeOnlyKeys(t *testing.T) {
	tmpl := `{"taskDefinitionArn": "arn:aws:ecs:us-west-2:123456789012:task-definition/f:3", "revision": 3, "status": "ACTIVE",
"registeredAt": "2026-01-01T00:00:00Z", "registeredBy": "arn:aws:iam::123456789012:user/x", "compatibilities": ["EC2"],
"requiresAttributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.21"}],
"family": "f", "containerDefinitions": [{"name": "a", "image": "i"}]}`
	td, err := Render("td.json", []byte(tmpl), exampleInputs())
	if err != nil {
		t.Fatal(err)
	}
	if *td.Family != "f" {
		t.Fatal(*td.Family)
	}
}

func TestRenderSensitive(t *testing.T) {
	envTmpl := `{"family": "f", "containerDefinitions": [{"name": "django", "image": "i",
  "environment": [{"name": "SQL_PASSWORD", "value": "{{ tf "db_password" }}"}]}]}`
	_, err := Render("td.json", []byte(envTmpl), exampleInputs())
	if err == nil {
		t.Fatal("a sensitive output rendered into environment was accepted")
	}
	for _, w := range []string{"td.json", "containerDefinitions[0].environment[0].value", `sensitive Terraform output "db_password"`, "secrets", "valueFrom"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if exitcode.Of(err) != exitcode.Invalid {
		t.Errorf("exit code %d", exitcode.Of(err))
	}

	// In a secret reference it is allowed.
	okTmpl := `{"family": "f", "containerDefinitions": [{"name": "django", "image": "i",
  "secrets": [{"name": "SQL_PASSWORD", "valueFrom": "{{ tf "db_password" }}"}]}]}`
	td, err := Render("td.json", []byte(okTmpl), exampleInputs())
	if err != nil {
		t.Fatalf("sensitive in valueFrom refused: %v", err)
	}
	if *td.ContainerDefinitions[0].Secrets[0].ValueFrom != secretValue {
		t.Fatal("valueFrom not rendered")
	}

	// Anywhere else, including inside a longer string, a key or a number.
	in := exampleInputs()
	in.Outputs["pin"] = o(`987654`, true)
	for name, tmpl := range map[string]string{
		"command":     `{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "command": ["psql", "postgres://u:{{ tf "db_password" }}@h/db"]}]}`,
		"docker key":  `{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "dockerLabels": {"{{ tf "db_password" }}": "x"}}]}`,
		"number":      `{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "memory": {{ tf "pin" }}}]}`,
		"unknown key": `{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "{{ tf "db_password" }}": 1}]}`,
	} {
		_, err := Render("td.json", []byte(tmpl), in)
		if err == nil || !strings.Contains(err.Error(), "sensitive Terraform output") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// No error, rendered text or diff this package produces shows a sensitive
// value.
func TestSensitiveValueNeverShown(t *testing.T) {
	in := exampleInputs()
	in.Outputs["pin"] = o(`987654`, true)
	in.Outputs["creds"] = o(`{"user": "sensitive-user-zz", "password": "`+secretValue+`"}`, true)
	var outputs []string
	templates := []string{
		`{"family": "f", "containerDefinitions": [{"name": "a", "image": "{{ tf "db_password" }}"}]}`,
		`{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "environment": [{"name": "P", "value": "{{ tf "db_password" }}"}]}]}`,
		`{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "secrets": [{"name": "P", "valueFrom": {{ tf "pin" }}}]}]}`,
		`{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "secrets": [{"name": "P", "valueFrom": "{{ tf "db_password" }}", "bogus": 1}]}]}`,
		`{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "secrets": [{"name": "P", "valueFrom": "{{ tf "db_password" }}"}], "memory": "x"}]}`,
		`{"family": "{{ tf "db_password" }}", "containerDefinitions": []}`,
		`{"family": "f", "containerDefinitions": [{"name": "a", "image": {{ tf "db_password" }}}]}`,
		`{"family": "f", "containerDefinitions": [{"name": "a", "image": "i"}]} {{ tf "db_password" }}`,
		`{"family": "f", "containerDefinitions": [{"name": "a", "image": "{{ tf "creds" }}"}]}`,
		`{"family": "f", "containerDefinitions": [{"name": "a", "image": "{{ printf "%d" (tf "db_password") }}"}]}`,
		`{"family": "f", "containerDefinitions": [{"name": "a", "image": "{{ tf "db_password" | len | printf "%s" }}"}]}`,
		`{"family": "f", "containerDefinitions": [{"name": "a", "image": "{{ index (tf "db_password") 99 }}"}]}`,
		`{"family": "f", "containerDefinitions": [{"name": "{{ tf "db_password" }}", "image": "i"}, {"name": "{{ tf "db_password" }}", "image": "i"}]}`,
	}
	for _, tmpl := range templates {
		td, err := Render("td.json", []byte(tmpl), in)
		if err != nil {
			outputs = append(outputs, err.Error())
			continue
		}
		// Rendered fine (the value is in a secret reference): the diff masks it.
		outputs = append(outputs, Diff("arn:live", nil, td, DiffOptions{}), Diff("arn:live", td, nil, DiffOptions{Color: true}))
	}
	if len(outputs) != len(templates)*1 && len(outputs) < len(templates) {
		t.Fatalf("outputs %d", len(outputs))
	}
	for i, s := range outputs {
		for _, secret := range []string{secretValue, "987654", "sensitive-user-zz"} {
			if strings.Contains(s, secret) {
				t.Errorf("output %d shows %q:\n%s", i, secret, s)
			}
		}
	}
}
