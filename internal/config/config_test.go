package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

const good = `environments:
  stage:
    region: us-west-2
    cluster: incubator-prod
    service: civic-tech-jobs-fullstack-stage
    task_definition: stage/ecs-task-def.json
    registry: ""
    terraform:
      dir: infra/stage
    images:
      django: {repository: civic-tech-jobs-backend,  context: backend,  dockerfile: stage/django.dockerfile}
      next:   {repository: civic-tech-jobs-frontend, context: frontend, dockerfile: stage/next.dockerfile}
  prod:
    region: us-east-1
    cluster: c
    service: s
    task_definition: prod/td.json
    registry: 127.0.0.1:5055
    ephemeral_database: true
    images:
      web: {repository: team/web, context: ., dockerfile: Dockerfile, target: runner, build_args: {A: "1"}}
`

func TestParseGood(t *testing.T) {
	f, err := Parse("/repo/app/ctjdeploy.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.Names(), ","); got != "prod,stage" {
		t.Fatalf("Names = %s", got)
	}
	s, err := f.Env("stage")
	if err != nil {
		t.Fatal(err)
	}
	if s.Region != "us-west-2" || s.Cluster != "incubator-prod" || s.Service != "civic-tech-jobs-fullstack-stage" {
		t.Errorf("stage = %+v", s)
	}
	if s.TaskDefinition != "/repo/app/stage/ecs-task-def.json" {
		t.Errorf("task_definition not resolved against the config's folder: %s", s.TaskDefinition)
	}
	if s.Terraform == nil || s.Terraform.Dir != "/repo/app/infra/stage" {
		t.Errorf("terraform.dir = %+v", s.Terraform)
	}
	d := s.Images["django"]
	if d.Repository != "civic-tech-jobs-backend" || d.Context != "/repo/app/backend" || d.Dockerfile != "/repo/app/stage/django.dockerfile" {
		t.Errorf("django = %+v", d)
	}
	if got := strings.Join(s.ImageNames(), ","); got != "django,next" {
		t.Errorf("ImageNames = %s", got)
	}
	if s.Registry != "" || s.EphemeralDatabase {
		t.Errorf("defaults: registry %q ephemeral %v", s.Registry, s.EphemeralDatabase)
	}
	p, _ := f.Env("prod")
	if p.TaskDefinition != "/repo/app/prod/td.json" || p.Registry != "127.0.0.1:5055" || !p.EphemeralDatabase || p.Terraform != nil {
		t.Errorf("prod = %+v", p)
	}
	if w := p.Images["web"]; w.Target != "runner" || w.BuildArgs["A"] != "1" || w.Context != "/repo/app" {
		t.Errorf("web = %+v", w)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string // substrings of the message
	}{
		{"empty file", "", []string{"empty"}},
		{"not yaml", "environments: [", []string{"not valid YAML"}},
		{"unknown top key", "environments: {}\nfoo: 1\n", []string{":2:", `unknown key "foo"`}},
		{"no environments", "foo: 1\n", []string{`unknown key "foo"`}},
		{"empty environments", "environments: {}\n", []string{"environments: is empty"}},
		{"unknown env key", strings.Replace(good, "    registry: \"\"\n", "    registy: \"\"\n", 1), []string{":7:", `unknown key "registy"`, "environments.stage", "known keys"}},
		{"unknown image key", strings.Replace(good, "context: backend,", "contxt: backend,", 1), []string{":11:", `unknown key "contxt"`, "environments.stage.images.django"}},
		{"unknown terraform key", strings.Replace(good, "      dir: infra/stage\n", "      dir: infra/stage\n      workspaces: x\n", 1), []string{":10:", `unknown key "workspaces"`}},
		{"missing region", strings.Replace(good, "    region: us-west-2\n", "", 1), []string{":3:", `missing the required key "region"`, "environments.stage"}},
		{"missing images", strings.Replace(good, "    ephemeral_database: true\n    images:\n      web: {repository: team/web, context: ., dockerfile: Dockerfile, target: runner, build_args: {A: \"1\"}}\n", "", 1), []string{`missing the required key "images"`, "environments.prod"}},
		{"missing repository", strings.Replace(good, "{repository: civic-tech-jobs-backend,  ", "{", 1), []string{":11:", `missing the required key "repository"`}},
		{"missing terraform dir", strings.Replace(good, "      dir: infra/stage\n", "      workspace: w\n", 1), []string{`missing the required key "dir"`, "environments.stage.terraform"}},
		{"empty cluster", strings.Replace(good, "cluster: incubator-prod", "cluster: \"\"", 1), []string{":4:", "cluster is empty"}},
		{"bad region", strings.Replace(good, "us-west-2", "oregon", 1), []string{":3:", "not an AWS region"}},
		{"bad repository", strings.Replace(good, "civic-tech-jobs-backend", "Civic_Backend!", 1), []string{":11:", "not a repository name"}},
		{"bad registry", strings.Replace(good, "127.0.0.1:5055", "https://127.0.0.1:5055", 1), []string{"without scheme"}},
		{"ephemeral not bool", strings.Replace(good, "ephemeral_database: true", "ephemeral_database: yes please", 1), []string{"true or false"}},
		{"images not mapping", strings.Replace(good, "    ephemeral_database: true\n    images:\n      web: {repository: team/web, context: ., dockerfile: Dockerfile, target: runner, build_args: {A: \"1\"}}\n", "    images: [1]\n", 1), []string{"environments.prod.images must be a mapping", "not a list"}},
		{"duplicate key", strings.Replace(good, "    cluster: c\n", "    cluster: c\n    cluster: d\n", 1), []string{"appears twice"}},
		{"command env name", "environments:\n  status:\n    region: us-west-2\n", []string{"is a ctjdeploy command"}},
		{"lock not a name", strings.Replace(good, "    ephemeral_database: true\n", "    ephemeral_database: true\n    lock: [a]\n", 1), []string{"lock must be an SSM parameter name"}},
		{"lock bad name", strings.Replace(good, "    ephemeral_database: true\n", "    ephemeral_database: true\n    lock: \"no spaces/here\"\n", 1), []string{"lock \"no spaces/here\" is not an SSM parameter name"}},
		{"lock reserved name", strings.Replace(good, "    ephemeral_database: true\n", "    ephemeral_database: true\n    lock: /aws/lock\n", 1), []string{"not beginning with aws"}},
		{"lock path without leading slash", strings.Replace(good, "    ephemeral_database: true\n", "    ephemeral_database: true\n    lock: a/b\n", 1), []string{"beginning with / when it has levels"}},
		{"lock ttl too short", strings.Replace(good, "    ephemeral_database: true\n", "    ephemeral_database: true\n    lock: {ttl: 10s}\n", 1), []string{"lock.ttl \"10s\"", "between 1m and 24h"}},
		{"lock unknown key", strings.Replace(good, "    ephemeral_database: true\n", "    ephemeral_database: true\n    lock: {name: /x}\n", 1), []string{`unknown key "name"`}},
		{"two documents", good + "---\nenvironments: {}\n", []string{"second YAML document"}},
		{"secret_env not a list", strings.Replace(good, "    ephemeral_database: true\n", "    ephemeral_database: true\n    secret_env: DJANGO_*\n", 1), []string{"secret_env must be a list"}},
		{"secret_env bad pattern", strings.Replace(good, "    ephemeral_database: true\n", "    ephemeral_database: true\n    secret_env: [\"a[\"]\n", 1), []string{"secret_env[0]", "not a valid pattern"}},
		{"smoke not a list", strings.Replace(good, "    ephemeral_database: true\n", "    ephemeral_database: true\n    smoke: {url: x}\n", 1), []string{"smoke must be a list"}},
		{"smoke without url", strings.Replace(good, "    ephemeral_database: true\n", "    ephemeral_database: true\n    smoke:\n      - status: 200\n", 1), []string{`missing the required key "url"`, "smoke[0]"}},
		{"smoke bad url", strings.Replace(good, "    ephemeral_database: true\n", "    ephemeral_database: true\n    smoke:\n      - url: ftp://x/y\n", 1), []string{"smoke[0].url", "not an http(s) URL"}},
		{"smoke bad status", strings.Replace(good, "    ephemeral_database: true\n", "    ephemeral_database: true\n    smoke:\n      - {url: https://x/, status: 99}\n", 1), []string{"smoke[0].status", "not an HTTP status"}},
		{"smoke bad timeout", strings.Replace(good, "    ephemeral_database: true\n", "    ephemeral_database: true\n    smoke:\n      - {url: https://x/, timeout: soon}\n", 1), []string{"smoke[0].timeout", "not a duration"}},
		{"smoke unknown key", strings.Replace(good, "    ephemeral_database: true\n", "    ephemeral_database: true\n    smoke:\n      - {url: https://x/, contain: y}\n", 1), []string{`unknown key "contain"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("/repo/ctjdeploy.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if exitcode.Of(err) != exitcode.Invalid {
				t.Errorf("exit code %d, want 2", exitcode.Of(err))
			}
			if !strings.HasPrefix(err.Error(), "/repo/ctjdeploy.yaml") {
				t.Errorf("error does not name the file: %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestEnvUnknownListsEnvironments(t *testing.T) {
	f, err := Parse("/repo/ctjdeploy.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Env("staging")
	if err == nil || exitcode.Of(err) != exitcode.Invalid {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), `"staging"`) || !strings.Contains(err.Error(), "prod, stage") {
		t.Errorf("message should name the env and list the environments: %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("err = %v", err)
	}
}

func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ctjdeploy.yaml")
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := f.Env("stage")
	err = s.CheckFiles(true)
	if exitcode.Of(err) != exitcode.Invalid {
		t.Fatalf("err = %v", err)
	}
	for _, w := range []string{"ecs-task-def.json", "infra/stage", "django.dockerfile", "frontend"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%v lacks %s", err, w)
		}
	}
	for _, p := range []string{"stage", "infra/stage", "backend", "frontend"} {
		os.MkdirAll(filepath.Join(dir, p), 0o755)
	}
	for _, p := range []string{"stage/ecs-task-def.json", "stage/django.dockerfile", "stage/next.dockerfile"} {
		os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644)
	}
	if err := s.CheckFiles(true); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "stage/next.dockerfile"))
	if err := s.CheckFiles(false); err != nil {
		t.Fatalf("without build, Dockerfiles do not matter: %v", err)
	}
	if err := s.CheckFiles(true); err == nil {
		t.Fatal("missing Dockerfile not reported")
	}
}

func TestAllowedRegistry(t *testing.T) {
	ok := []string{
		"123456789012.dkr.ecr.us-west-2.amazonaws.com",
		"123456789012.dkr.ecr.us-west-2.amazonaws.com:443",
		"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
		"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
		"127.0.0.1:5055", "127.1.2.3:80", "[::1]:5000", "localhost:5000",
	}
	bad := []string{
		"", "evil.example.com", "evil.example.com:443", "127.0.0.1", "localhost", "[::1]",
		"123456789012.dkr.ecr.us-west-2.amazonaws.com.evil.com",
		"123456789012.dkr.ecr.us-west-2.amazonaws.com:5000",
		"12345.dkr.ecr.us-west-2.amazonaws.com", "public.ecr.aws",
		"123456789012.dkr.ecr-fips.cn-north-1.amazonaws.com.cn",
		"10.0.0.1:5000", "0.0.0.0:5000", "127.0.0.1:99999", "127.0.0.1:x",
		"localhost.evil.com:5000", "::1:5000",
	}
	for _, r := range ok {
		if !AllowedRegistry(r) {
			t.Errorf("AllowedRegistry(%q) = false, want true", r)
		}
	}
	for _, r := range bad {
		if AllowedRegistry(r) {
			t.Errorf("AllowedRegistry(%q) = true, want false", r)
		}
	}
}

func TestRegistryNotAllowedIsInvalidWithLine(t *testing.T) {
	bad := strings.Replace(good, "127.0.0.1:5055", "registry.evil.example.com", 1)
	_, err := Parse("/repo/ctjdeploy.yaml", []byte(bad))
	if err == nil {
		t.Fatal("a non-ECR, non-loopback registry was accepted")
	}
	for _, want := range []string{"ctjdeploy.yaml:", ".registry", "registry.evil.example.com", "not an ECR registry host"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if exitcode.Of(err) != exitcode.Invalid {
		t.Errorf("exit code %d, want %d", exitcode.Of(err), exitcode.Invalid)
	}
}

func TestParseSmoke(t *testing.T) {
	y := strings.Replace(good, "    ephemeral_database: true\n", `    ephemeral_database: true
    smoke:
      - url: https://stage.example.org/api/healthcheck
        contains: uptime
      - {url: "http://127.0.0.1:8000/", status: 404, timeout: 30s}
`, 1)
	f, err := Parse("/repo/ctjdeploy.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	e := f.Environments["prod"]
	if len(e.Smoke) != 2 {
		t.Fatalf("smoke = %+v", e.Smoke)
	}
	a, b := e.Smoke[0], e.Smoke[1]
	if a.URL != "https://stage.example.org/api/healthcheck" || a.Status != 200 || a.Contains != "uptime" || a.Timeout != 2*time.Minute {
		t.Errorf("first check (defaults) = %+v", a)
	}
	if b.Status != 404 || b.Timeout != 30*time.Second || b.Contains != "" {
		t.Errorf("second check = %+v", b)
	}
	if e.URL != a.URL {
		t.Errorf("url defaults to the first smoke URL: %q", e.URL)
	}
	y2 := strings.Replace(good, "    ephemeral_database: true\n", "    ephemeral_database: true\n    secret_env: [DJANGO_*, SENTRY_DSN]\n", 1)
	f2, err := Parse("/repo/ctjdeploy.yaml", []byte(y2))
	if err != nil || strings.Join(f2.Environments["prod"].SecretEnv, ",") != "DJANGO_*,SENTRY_DSN" {
		t.Errorf("secret_env: %v %v", err, f2)
	}
	if f.Environments["stage"].Smoke != nil {
		t.Errorf("stage has no smoke: %+v", f.Environments["stage"].Smoke)
	}
}

func TestParseLock(t *testing.T) {
	for _, c := range []struct {
		yaml, param string
		ttl         time.Duration
	}{
		{"", "/ctjdeploy/c/s/lock", DefaultLockTTL},
		{"    lock: /team/stage-deploy\n", "/team/stage-deploy", DefaultLockTTL},
		{"    lock: plain-name\n", "plain-name", DefaultLockTTL},
		{"    lock: {parameter: /a/b, ttl: 45m}\n", "/a/b", 45 * time.Minute},
		{"    lock: {ttl: 2h}\n", "/ctjdeploy/c/s/lock", 2 * time.Hour},
		{"    lock: true\n", "/ctjdeploy/c/s/lock", DefaultLockTTL},
		{"    lock: false\n", "", DefaultLockTTL},
	} {
		y := strings.Replace(good, "    ephemeral_database: true\n", "    ephemeral_database: true\n"+c.yaml, 1)
		f, err := Parse("/repo/ctjdeploy.yaml", []byte(y))
		if err != nil {
			t.Fatalf("%q: %v", c.yaml, err)
		}
		e := f.Environments["prod"]
		if got := e.LockParameter(); got != c.param || e.LockTTL() != c.ttl {
			t.Errorf("%q: parameter %q ttl %s, want %q %s", c.yaml, got, e.LockTTL(), c.param, c.ttl)
		}
	}
}
