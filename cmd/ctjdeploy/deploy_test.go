package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Outside a git repository and without --tag, deploy is invalid (exit 2),
// and --output json still prints one document saying so.
func TestDeployNoGitNoTagJSON(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"backend/x", "frontend/x", "stage/django.dockerfile", "stage/next.dockerfile", "stage/td.json", "infra/x"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "ctjdeploy.yaml")
	os.WriteFile(cfg, []byte(`environments:
  stage:
    region: us-west-2
    cluster: c
    service: s
    task_definition: stage/td.json
    registry: 127.0.0.1:1
    terraform: {dir: infra}
    images:
      django: {repository: b, context: backend, dockerfile: stage/django.dockerfile}
      next: {repository: f, context: frontend, dockerfile: stage/next.dockerfile}
`), 0o644)
	t.Setenv("GIT_CEILING_DIRECTORIES", filepath.Dir(dir))
	var out, errb bytes.Buffer
	code := run([]string{"--config", cfg, "--output", "json", "stage"}, &out, &errb)
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr: %s", code, errb.String())
	}
	var doc map[string]any
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, out.String())
	}
	if doc["outcome"] != "invalid" || doc["exitCode"] != float64(2) || doc["error"] == "" {
		t.Errorf("document: %s", out.String())
	}
}
