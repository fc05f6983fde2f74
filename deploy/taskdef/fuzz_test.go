package taskdef

import (
	"strings"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// FuzzRender: Render never panics; it fails with exit code 2 and never shows
// a sensitive value, or it returns a valid definition that survives
// Marshal → Decode unchanged and normalizes idempotently.
//
//	go test -run '^$' -fuzz '^FuzzRender$' -fuzztime 30s ./deploy/taskdef/
func FuzzRender(f *testing.F) {
	f.Add(readExample(f), "x")
	for _, s := range []string{
		`{"family": "f", "containerDefinitions": [{"name": "a", "image": "{{ image "next" }}"}]}`,
		`{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "environment": [{"name": "E", "value": "{{ tf "fuzz" }}"}]}]}`,
		`{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "secrets": [{"name": "E", "valueFrom": "{{ tf "db_password" }}"}]}]}`,
		`{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "memory": {{ tf "sql_port" }}, "portMappings": [{"containerPort": 80}]}]}`,
		`{"family": "{{ env "FUZZ" }}", "containerDefinitions": [{"name": "a", "image": "i", "resourceRequirements": [{"type": "GPU", "value": "1", "sharingStrategy": {"nvidiaMps": {"memory": 5}}}]}]}`,
		`{"revision": 3, "family": "f", "volumes": [{"name": "v", "host": {}}], "containerDefinitions": [{"name": "a", "image": "i", "dockerLabels": {"k": "{{ tf "fuzz" }}"}}]}`,
		`{{ range $i := .x }}{{ end }}`,
		`{{ define "x" }}{{ template "x" }}{{ end }}{{ template "x" }}`,
		`{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "cpu": 1e400}]}`,
		`{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "healthCheck": {"command": ["CMD"], "interval": -1}}]}`,
		`{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "environment": [{"name": "E", "value": "{{ printf "%x" (tf "db_password") }}"}]}]}`,
		`{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "secrets": [{"name": "E", "valueFrom": "{{ slice (tf "db_password") 1 5 | urlquery }}"}]}]}`,
		`{{ define "p" }}{{ . | printf "%s%s" . }}{{ end }}{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "dockerLabels": {"k": "{{ template "p" (tf "fuzz") }}"}}]}`,
		`{"family": "f{{ if eq (index (tf "db_password") 0) 115 }}x{{ end }}", "containerDefinitions": [{"name": "a", "image": "i"}]}`,
		`{{ $x := "ab" }}{{ $x = printf "%s%s" $x $x }}{{ $x = printf "%s%s" $x $x }}{"family": "{{ $x }}", "containerDefinitions": [{"name": "a", "image": "i"}]}`,
	} {
		f.Add([]byte(s), `va"l\ue`)
	}
	f.Fuzz(func(t *testing.T, tmpl []byte, value string) {
		in := exampleInputs()
		in.Outputs["fuzz"] = o(jsonString(value), false)
		in.Env = func(k string) (string, bool) { return value, k == "FUZZ" }
		td, err := Render("fuzz.json", tmpl, in)
		if err != nil {
			if exitcode.Of(err) != exitcode.Invalid {
				t.Fatalf("exit code %d: %v", exitcode.Of(err), err)
			}
			if strings.Contains(err.Error(), secretValue) {
				t.Fatalf("error shows the secret: %v", err)
			}
			return
		}
		for _, c := range td.ContainerDefinitions {
			for _, kv := range c.Environment {
				if kv.Value != nil && strings.Contains(*kv.Value, secretValue) {
					t.Fatalf("a sensitive value in environment: %q", *kv.Value)
				}
			}
		}
		if d := Diff("x", nil, td, DiffOptions{}); strings.Contains(d, secretValue) {
			t.Fatalf("the diff shows the secret:\n%s", d)
		}
		b, err := Marshal(td)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		back, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(Marshal(td)): %v\n%s", err, b)
		}
		if !Equal(td, back) {
			t.Fatalf("round trip changed the definition:\n%s", Diff("before", td, back, DiffOptions{}))
		}
		n := Normalize(td)
		if !Equal(n, Normalize(n)) || canonical(n) != canonical(Normalize(n)) {
			t.Fatal("Normalize is not idempotent")
		}
		if d := Diff("x", td, td, DiffOptions{}); d != "" {
			t.Fatalf("self diff:\n%s", d)
		}
	})
}

func jsonString(s string) string { return `"` + jsonEscape(s) + `"` }
