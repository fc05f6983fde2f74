package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// TestHostileInputRefusedBeforeAnyWrite (issue 20, findings 1, 3 and 5, on
// the stack): a template that hides a sensitive output under a Docker label
// whose key reads like a secret reference's path, a template that puts the
// CI's AWS session token in a plain environment entry, and a config whose
// Dockerfile is /proc/self/environ or leaves the repository are each exit 2,
// and the deploy registers nothing (the family's revisions are the same
// before and after) and pushes nothing (the repositories stay empty).
func TestHostileInputRefusedBeforeAnyWrite(t *testing.T) {
	cfg, n := e2eEnv(t)
	dir := filepath.Dir(cfg)
	st := teststack.Start(t)
	t.Setenv("GITHUB_ACTIONS", "")
	const token = "FQoGZXIvYXdzEXAMPLE-session-token-zz7"
	t.Setenv("AWS_SESSION_TOKEN", token)
	tmpl, err := os.ReadFile(filepath.Join(dir, "td.json"))
	if err != nil {
		t.Fatal(err)
	}
	config, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	revisions := func() string {
		out, err := st.ECS(t).ListTaskDefinitions(context.Background(), &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(n.Family)})
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(out.TaskDefinitionArns)
		return strings.Join(out.TaskDefinitionArns, ",")
	}
	images := func() int {
		total := 0
		for _, repo := range []string{n.BackendRepo, n.FrontendRepo} {
			out, err := st.ECR(t).ListImages(context.Background(), &ecr.ListImagesInput{RepositoryName: aws.String(repo)})
			if err != nil {
				t.Fatal(err)
			}
			total += len(out.ImageIds)
		}
		return total
	}
	const first = `"name": "next",`
	if !strings.Contains(string(tmpl), first) {
		t.Fatal("the example template changed: no next container")
	}
	for _, c := range []struct {
		name     string
		template string
		config   string
		says     []string
	}{
		{"finding 1: a sensitive output under a label key that reads like a path",
			strings.Replace(string(tmpl), first, first+` "dockerLabels": {"x.secrets[0].valueFrom": "{{ tf "db_password" }}"},`, 1), "",
			[]string{`containerDefinitions[0].dockerLabels["x.secrets[0].valueFrom"]`, `sensitive Terraform output "db_password"`}},
		{"finding 3: AWS_SESSION_TOKEN in a plain environment entry",
			strings.Replace(string(tmpl), `{"name": "NODE_ENV", "value": "production"}`, `{"name": "NODE_ENV", "value": "{{ env "AWS_SESSION_TOKEN" }}"}`, 1), "",
			[]string{"containerDefinitions[0].environment[0].value", "secret environment variable AWS_SESSION_TOKEN"}},
		{"finding 5: dockerfile /proc/self/environ", "",
			strings.Replace(string(config), "dockerfile: stage/django.dockerfile", "dockerfile: /proc/self/environ", 1),
			[]string{"images.django.dockerfile", "/proc/self/environ", "absolute path"}},
		{"finding 5: dockerfile ../../x", "",
			strings.Replace(string(config), "dockerfile: stage/django.dockerfile", "dockerfile: ../../x", 1),
			[]string{"images.django.dockerfile", "../../x", "leaves"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.template != "" && c.template == string(tmpl) || c.config != "" && c.config == string(config) {
				t.Fatal("the edit did not apply: the example changed")
			}
			t.Cleanup(func() {
				os.WriteFile(filepath.Join(dir, "td.json"), tmpl, 0o644)
				os.WriteFile(cfg, config, 0o644)
			})
			if c.template != "" {
				os.WriteFile(filepath.Join(dir, "td.json"), []byte(c.template), 0o644)
			}
			if c.config != "" {
				os.WriteFile(cfg, []byte(c.config), 0o644)
			}
			before, imgs := revisions(), images()
			var out, errb bytes.Buffer
			code := run([]string{"--config", cfg, "stage", "--tag", "hostile" + strings.ReplaceAll(n.Prefix, "-", "")}, &out, &errb)
			if code != exitcode.Invalid {
				t.Fatalf("exit %d, want 2\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
			}
			for _, w := range c.says {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
			if after := revisions(); after != before {
				t.Errorf("revisions changed: %s -> %s", before, after)
			}
			if got := images(); got != imgs || got != 0 {
				t.Errorf("images in the repositories: %d before, %d after (nothing may be built or pushed)", imgs, got)
			}
			assertNoSecret(t, "stdout", out.String())
			assertNoSecret(t, "stderr", errb.String())
			if strings.Contains(out.String()+errb.String(), token) {
				t.Errorf("the session token is printed")
			}
		})
	}
}
