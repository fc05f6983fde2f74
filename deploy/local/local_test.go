package local

import (
	"encoding/json"

	"context"
	"errors"
	"github.com/hackforla/ctjdeploy/tfvars"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		want          bool
	}{
		{"/api/*", "/api/healthcheck", true},
		{"/api/*", "/api/", true},
		{"/api/*", "/api", false},
		{"/api/*", "/API/healthcheck", false}, // case-sensitive
		{"/api/*", "/api/v1/jobs/3", true},    // * crosses /
		{"/*", "/", true},
		{"/*", "/_next/static/x.js", true},
		{"/a?c", "/abc", true},
		{"/a?c", "/ac", false},
		{"/a?c", "/abbc", false},
		{"*.png", "/img/logo.png", true},
		{"/img/*.png", "/img/logo.jpg", false},
		{"/admin/*/edit", "/admin/jobs/3/edit", true},
		{"/admin/*/edit", "/admin/jobs/3/editx", false},
		{"/exact", "/exact", true},
		{"/exact", "/exact/", false},
	} {
		if got := Match(tc.pattern, tc.path); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
	if ValidPattern("/api/<x>") == nil || ValidPattern("") == nil || ValidPattern("/api/*") != nil {
		t.Error("ValidPattern: want <> and empty refused, /api/* accepted")
	}
}

func TestParseDotenv(t *testing.T) {
	got, err := ParseDotenv("t.env", []byte(`# a comment
PLAIN=value one   # trailing comment
export EXPORTED=yes
DQ="with \"quotes\" and # hash\nnewline"
SQ='raw \n $x'
EMPTY=

  SPACED = padded  
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"PLAIN": "value one", "EXPORTED": "yes", "DQ": "with \"quotes\" and # hash\nnewline", "SQ": `raw \n $x`, "EMPTY": "", "SPACED": "padded"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d keys %v, want %d", len(got), got, len(want))
	}
	for _, bad := range []string{"NOEQUALS", `X="open`, "1X=a", `X="a" b`} {
		_, err := ParseDotenv("t.env", []byte(bad))
		if err == nil {
			t.Errorf("ParseDotenv(%q): no error", bad)
		} else if strings.Contains(err.Error(), "open") && strings.Contains(bad, "open") && strings.Contains(err.Error(), `"open`) {
			t.Errorf("the error shows the value: %v", err)
		}
	}
}

const testTemplate = `{
  "family": "f",
  "containerDefinitions": [
    {"name": "next", "image": "{{ image "next" }}", "portMappings": [{"containerPort": 3000}],
     "dependsOn": [{"containerName": "django", "condition": "START"}],
     "environment": [{"name": "WHO", "value": "{{ env "WHO" }}"}]},
    {"name": "django", "image": "{{ image "django" }}", "essential": true, "portMappings": [{"containerPort": 8000}],
     "environment": [{"name": "SQL_HOST", "value": "{{ tf "sql_host" }}"}, {"name": "DB", "value": "{{ tf "db_name" }}"}],
     "secrets": [{"name": "SQL_PASSWORD", "valueFrom": "{{ tf "pw_arn" }}"}, {"name": "SECRET_KEY", "valueFrom": "arn:aws:ssm:us-west-2:1:parameter/k"}],
     "dependsOn": [{"containerName": "pgdb", "condition": "HEALTHY"}],
     "stopTimeout": 5, "user": "1000", "workingDirectory": "/code", "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}],
     "logConfiguration": {"logDriver": "awsfirelens"}},
    {"name": "pgdb", "image": "postgres:18", "memory": 512, "cpu": 256,
     "healthCheck": {"command": ["CMD-SHELL", "pg_isready"], "interval": 5, "retries": 3, "startPeriod": 10},
     "mountPoints": [{"sourceVolume": "pgdata", "containerPath": "/var/lib/postgresql"}, {"sourceVolume": "efs", "containerPath": "/efs"}]}
  ],
  "volumes": [{"name": "pgdata", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true, "driver": "local"}},
              {"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}]
}`

func testEnv(t *testing.T, routes []config.Route, dotenv string) *config.Environment {
	dir := t.TempDir()
	td := filepath.Join(dir, "td.json")
	if err := os.WriteFile(td, []byte(testTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	env := &config.Environment{Name: "stage", TaskDefinition: td, Local: &config.Local{Port: 8080, Routes: routes,
		Values: map[string]string{"sql_host": "localhost", "pw_arn": "arn:pw"}}}
	if dotenv != "" {
		env.Local.EnvFile = filepath.Join(dir, "stage.env")
		if err := os.WriteFile(env.Local.EnvFile, []byte(dotenv), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return env
}

// The same template as a deploy: {{ image }} the local image, {{ tf }}
// from local.values before Terraform's outputs, {{ env }} from the
// environment, secrets by name from the env_file then the environment
// (masked), the container parameters carried over, what cannot run locally
// warned about once.
func TestRenderLocalValuesAndSecrets(t *testing.T) {
	env := testEnv(t, []config.Route{{Path: "/api/*", Container: "django"}, {Path: "/*", Container: "next"}},
		"SQL_PASSWORD=\"pw-from-dotenv-7f3a\"\n")
	envs := map[string]string{"WHO": "me", "SECRET_KEY": "key-from-environment-91bc", "SQL_PASSWORD": "not-this-one"}
	tfOuts := map[string]string{"sql_host": "db.internal", "db_name": "ctj"}
	outs := tfOutputs(tfOuts)
	task, err := Render(env, Inputs{Images: map[string]string{"next": "ctjdeploy/next:abc", "django": "ctjdeploy/django:abc"}, Outputs: outs,
		Getenv: func(k string) (string, bool) { v, ok := envs[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]int{}
	for i, c := range task.Spec.Containers {
		by[c.Name] = i
	}
	next, dj, pg := task.Spec.Containers[by["next"]], task.Spec.Containers[by["django"]], task.Spec.Containers[by["pgdb"]]
	if next.Image != "ctjdeploy/next:abc" || dj.Image != "ctjdeploy/django:abc" || pg.Image != "postgres:18" {
		t.Errorf("images: %s %s %s", next.Image, dj.Image, pg.Image)
	}
	if dj.Environment["SQL_HOST"] != "localhost" || dj.Environment["DB"] != "ctj" {
		t.Errorf("django env %v: want SQL_HOST=localhost (local.values first) and DB=ctj (Terraform)", dj.Environment)
	}
	if next.Environment["WHO"] != "me" {
		t.Errorf("{{ env }}: WHO=%q", next.Environment["WHO"])
	}
	if dj.Environment["SQL_PASSWORD"] != "pw-from-dotenv-7f3a" || dj.Environment["SECRET_KEY"] != "key-from-environment-91bc" {
		t.Errorf("secrets: SQL_PASSWORD from the env_file, SECRET_KEY from the environment; got %q %q", dj.Environment["SQL_PASSWORD"], dj.Environment["SECRET_KEY"])
	}
	if m := report.Mask("pw=pw-from-dotenv-7f3a key=key-from-environment-91bc"); strings.Contains(m, "7f3a") || strings.Contains(m, "91bc") {
		t.Errorf("the secrets are not masked: %s", m)
	}
	if !next.Essential || !dj.Essential || !pg.Essential {
		t.Error("essential defaults to true")
	}
	if dj.StopTimeout != 5 || pg.StopTimeout != 30 || dj.User != "1000" || dj.WorkingDir != "/code" || len(dj.Ulimits) != 1 || dj.Ulimits[0].Soft != 1024 {
		t.Errorf("container parameters: django %+v, pgdb stopTimeout %d", dj, pg.StopTimeout)
	}
	if pg.HealthCheck == nil || pg.HealthCheck.Interval.Seconds() != 5 || pg.HealthCheck.StartPeriod.Seconds() != 10 || pg.Memory != 512 || pg.CPU != 256 {
		t.Errorf("pgdb: health %+v memory %d cpu %d", pg.HealthCheck, pg.Memory, pg.CPU)
	}
	if len(pg.Mounts) != 1 || pg.Mounts[0].SourceVolume != "pgdata" || len(task.Spec.Volumes) != 1 || task.Spec.VolumePrefix != "ctjdeploy-stage" {
		t.Errorf("volumes: mounts %+v volumes %+v prefix %s", pg.Mounts, task.Spec.Volumes, task.Spec.VolumePrefix)
	}
	w := strings.Join(task.Warnings, "\n")
	if !strings.Contains(w, "volume efs is an EFS") || !strings.Contains(w, "awsfirelens") || len(task.Warnings) != 2 {
		t.Errorf("warnings: %q", task.Warnings)
	}
	if task.Spec.Labels[EnvLabel] != "stage" {
		t.Errorf("labels %v", task.Spec.Labels)
	}
	if r := task.RouteFor("/api/healthcheck"); r == nil || r.Container != "django" || r.ContainerPort != 8000 {
		t.Errorf("route for /api/healthcheck: %+v", r)
	}
	if r := task.RouteFor("/"); r == nil || r.Container != "next" || r.ContainerPort != 3000 {
		t.Errorf("route for /: %+v", r)
	}
}

func TestRenderMissingSecretAndDefaultRoute(t *testing.T) {
	env := testEnv(t, nil, "OTHER=x\n")
	in := Inputs{Images: map[string]string{"next": "n", "django": "d"}, Outputs: tfOutputs(map[string]string{"db_name": "x"}),
		Getenv: func(k string) (string, bool) { return map[string]string{"WHO": "me"}[k], k == "WHO" }}
	_, err := Render(env, in)
	if exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "secret SQL_PASSWORD has no local value") || !strings.Contains(err.Error(), "stage.env") {
		t.Fatalf("missing secret: exit %d, %v", exitcode.Of(err), err)
	}
	in.Getenv = func(k string) (string, bool) {
		v, ok := map[string]string{"WHO": "me", "SQL_PASSWORD": "a-pw-1234", "SECRET_KEY": "a-key-5678"}[k]
		return v, ok
	}
	task, err := Render(env, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(task.Routes) != 1 || task.Routes[0].Container != "next" || task.Routes[0].Path != "/*" {
		t.Errorf("default route: %+v, want every path to next (the first container with a port mapping)", task.Routes)
	}
	delete(env.Local.Values, "sql_host")
	if _, err := Render(env, in); exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "sql_host") {
		t.Errorf("missing output: %v", err)
	}
}

func TestLB(t *testing.T) {
	var got []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, "django "+r.URL.RequestURI())
		io.WriteString(w, "api")
	}))
	defer api.Close()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, "next "+r.URL.RequestURI())
		io.WriteString(w, "web")
	}))
	defer web.Close()
	var logged []string
	lb := &LB{Routes: []Route{{"/api/*", "django", 8000}, {"/admin/*", "down", 9}, {"/*", "next", 3000}},
		Backend: func(_ context.Context, c string, _ int) (string, error) {
			switch c {
			case "django":
				return strings.TrimPrefix(api.URL, "http://"), nil
			case "next":
				return strings.TrimPrefix(web.URL, "http://"), nil
			}
			return "", errors.New("container down is not running (it exited with code 1)")
		},
		Logf: func(f string, a ...any) { logged = append(logged, f) }}
	srv := httptest.NewServer(lb)
	defer srv.Close()
	for path, want := range map[string]string{"/api/healthcheck?x=1": "api", "/": "web", "/jobs/3": "web", "/API/x": "web"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want || resp.StatusCode != 200 {
			t.Errorf("GET %s = %d %q, want %q", path, resp.StatusCode, b, want)
		}
	}
	if strings.Join(got, ",") == "" || !contains(got, "django /api/healthcheck?x=1") || !contains(got, "next /jobs/3") {
		t.Errorf("the backends saw %v: want the path unchanged", got)
	}
	resp, err := http.Get(srv.URL + "/admin/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 || !strings.Contains(string(b), "exited with code 1") {
		t.Errorf("GET /admin/ = %d %q, want 502 with the reason", resp.StatusCode, b)
	}
	if len(logged) != 5 {
		t.Errorf("%d request log lines, want 5", len(logged))
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func tfOutputs(m map[string]string) tfvars.Outputs {
	o := tfvars.Outputs{}
	for k, v := range m {
		raw, _ := json.Marshal(v)
		o[k] = tfvars.Output{Value: raw}
	}
	return o
}
