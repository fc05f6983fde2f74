package taskdef

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// FuzzTaint builds templates of many shapes (maps with arbitrary keys,
// nested objects and lists, the secret reference positions and keys that
// read like them) with a sensitive value, or one derived from it, at one
// place; whatever Render accepts, the document it returns (what a deploy
// registers) holds the value only in the value of a secret reference
// located by structure, and there only as a reference.
//
//	go test -run '^$' -fuzz '^FuzzTaint$' -fuzztime 10s ./deploy/taskdef/
func FuzzTaint(f *testing.F) {
	for _, k := range []string{"x.secrets[0].valueFrom", "secrets", "valueFrom", "repositoryCredentials.credentialsParameter", "k", "", `a"b\c`, "{{", "secretOptions[0].valueFrom"} {
		for shape := range uint8(12) {
			f.Add(k, "secrets", shape, uint8(shape%5))
		}
	}
	f.Fuzz(func(t *testing.T, k1, k2 string, shape, expr uint8) {
		key := func(s string) string { return strings.ReplaceAll(jsonEscape(s), "{{", "{ {") }
		k1, k2 = key(k1), key(k2)
		x := []string{
			`{{ tf "db_password" }}`,
			`{{ printf "%x" (tf "db_password") }}`,
			`pre-{{ tf "db_password" }}`,
			`{{ env "AWS_SESSION_TOKEN" }}`,
			`arn:aws:ssm:us-west-2:123456789012:parameter/{{ tf "db_password" }}`,
			`{{ print "p=" (tf "db_password") }}`,
		}[int(expr)%6]
		ref := `{"name": "S", "valueFrom": "` + x + `"}`
		c := map[int]string{
			0:  `"dockerLabels": {"` + k1 + `": "` + x + `"}`,
			1:  `"logConfiguration": {"logDriver": "awslogs", "options": {"` + k1 + `": "` + x + `"}}`,
			2:  `"environment": [{"name": "` + k1 + `", "value": "` + x + `"}]`,
			3:  `"secrets": [` + ref + `]`,
			4:  `"logConfiguration": {"logDriver": "awslogs", "secretOptions": [` + ref + `]}`,
			5:  `"repositoryCredentials": {"credentialsParameter": "` + x + `"}`,
			6:  `"dockerLabels": {"` + x + `": "` + k1 + `"}`,
			7:  `"` + k1 + `": {"` + k2 + `": [` + ref + `]}`,
			8:  `"` + k1 + `": [{"` + k2 + `": "` + x + `"}]`,
			9:  `"dockerLabels": {"` + k1 + `": "` + k2 + `", "` + k2 + `x": "` + x + `"}`,
			10: `"linuxParameters": {"` + k1 + `": {"` + k2 + `": "` + x + `"}}`,
			11: `"dockerLabels": {"` + k1 + `{{ if eq (slice (tf "db_password") 0 1) "s" }}y{{ end }}": "v"}`,
		}[int(shape)%12]
		tmpl := `{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", ` + c + `}]}`
		if shape%24 >= 12 {
			// The same at the top level, or in a second container.
			tmpl = `{"family": "f", ` + c + `, "containerDefinitions": [{"name": "a", "image": "i"}]}`
		}
		in := exampleInputs()
		token := "IQoJb3JpZ2luX2VjEXAMPLEsessiontoken"
		in.Env = func(k string) (string, bool) { return token, k == "AWS_SESSION_TOKEN" }
		td, err := Render("fuzz.json", []byte(tmpl), in)
		if err != nil {
			if exitcode.Of(err) != exitcode.Invalid {
				t.Fatalf("exit code %d: %v", exitcode.Of(err), err)
			}
			for _, s := range []string{secretValue, token, hex.EncodeToString([]byte(secretValue))} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error shows a secret: %v", err)
				}
			}
			return
		}
		b, err := Marshal(td)
		if err != nil {
			t.Fatal(err)
		}
		v, err := parseJSON(b)
		if err != nil {
			t.Fatal(err)
		}
		var check func(p pos, v any)
		leak := func(s string) bool {
			return strings.Contains(s, secretValue) || strings.Contains(s, token) || strings.Contains(s, hex.EncodeToString([]byte(secretValue)))
		}
		check = func(p pos, v any) {
			switch v := v.(type) {
			case map[string]any:
				for k, e := range v {
					if leak(k) {
						t.Fatalf("a secret in a key at %s:\n%s", p, tmpl)
					}
					check(p.key(k), e)
				}
			case []any:
				for i, e := range v {
					check(p.at(i), e)
				}
			case string:
				if leak(v) && (!p.isSecretRef() || !looksLikeRef(v)) {
					t.Fatalf("a secret registered at %s:\n%s", p, tmpl)
				}
			}
		}
		check(nil, v)
	})
}
