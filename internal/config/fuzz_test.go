package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// FuzzParse: Parse never panics; it either fails with exit code 2 and a
// message naming the file, or returns environments whose invariants hold
// (required values set, paths absolute, names matching their keys).
//
//	go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 30s ./internal/config/
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	if b, err := os.ReadFile(filepath.Join("..", "..", "example", "ctjdeploy.yaml")); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"",
		"environments:\n",
		"environments: {}\n",
		"environments:\n  stage:\n    region: us-west-2\n    nope: 1\n",
		"environments:\n  stage: &a\n    region: us-west-2\n  prod: *a\n",
		"a: &a [*a, *a]\n",
		"environments:\n  stage:\n    images:\n      x: {repository: r, context: ., dockerfile: D, build_args: {A: [1]}}\n",
		"environments:\n\tstage: {}\n",
		"environments:\n  stage:\n    region: us-west-2\n  stage:\n    region: us-east-1\n",
		"--- \n...\n---\nenvironments: {}\n",
		"environments:\n  stage:\n    terraform: {dir: infra, init: yes, workspace: ws}\n",
		"!!binary x",
		"environments:\n  s:\n    region: us-west-2\n    cluster: c\n    service: s\n    task_definition: a/../../b\n    images:\n      x: {repository: r, context: ., dockerfile: /proc/self/environ}\n",
		"environments: [1, 2]\n",
	} {
		f.Add([]byte(s))
	}
	const path = "/repo/app/ctjdeploy.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(path, data)
		if err != nil {
			if exitcode.Of(err) != exitcode.Invalid {
				t.Fatalf("exit code %d for %v", exitcode.Of(err), err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if len(file.Environments) == 0 {
			t.Fatal("no environments and no error")
		}
		for name, e := range file.Environments {
			if e == nil || e.Name != name || e.Region == "" || e.Cluster == "" || e.Service == "" {
				t.Fatalf("environment %q incomplete: %+v", name, e)
			}
			if !filepath.IsAbs(e.TaskDefinition) {
				t.Fatalf("task_definition not absolute: %q", e.TaskDefinition)
			}
			// No git repository above /repo/app: its folder is the boundary.
			for _, p := range []string{e.TaskDefinition, e.Local.EnvFile} {
				if p != "" && !inside(filepath.Dir(path), p) {
					t.Fatalf("a path outside the config's folder: %q", p)
				}
			}
			if e.Terraform != nil && !inside(filepath.Dir(path), e.Terraform.Dir) {
				t.Fatalf("terraform.dir outside the config's folder: %q", e.Terraform.Dir)
			}
			for _, img := range e.Images {
				if img != nil && (!inside(filepath.Dir(path), img.Context) || !inside(filepath.Dir(path), img.Dockerfile)) {
					t.Fatalf("image paths outside the config's folder: %+v", img)
				}
			}
			if e.Terraform != nil && !filepath.IsAbs(e.Terraform.Dir) {
				t.Fatalf("terraform.dir not absolute: %q", e.Terraform.Dir)
			}
			for in, img := range e.Images {
				if img == nil || img.Name != in || img.Repository == "" || !filepath.IsAbs(img.Context) || !filepath.IsAbs(img.Dockerfile) {
					t.Fatalf("image %q invalid: %+v", in, img)
				}
			}
		}
	})
}
