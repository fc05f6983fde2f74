package deploy

import (
	"strings"
	"testing"
)

func TestWritePlanNamesTheMissingLayers(t *testing.T) {
	res := &Result{Env: "stage", Tag: "abc", Service: "svc", Cluster: "c",
		Images: []Image{{Name: "django", Ref: "r/b@sha256:1111", Layers: 3, Missing: 2, MissingBytes: 3 << 20,
			MissingList: []Blob{
				{Digest: "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Size: 1 << 20},
				{Digest: "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", Size: 2 << 20},
			}}},
		Change: "register a new revision", DryRun: true}
	var b strings.Builder
	if err := WritePlan(&b, res); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"push django: 2 of 3 layers missing, 3.0 MiB to upload",
		"sha256:aaaaaaaaaaaa  1.0 MiB",
		"sha256:bbbbbbbbbbbb  2.0 MiB",
		"service change: register a new revision",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	// A deploy's plan says what each image uploads; its push lines say
	// what was uploaded, so the layers are listed in a dry run only.
	res.DryRun = false
	b.Reset()
	if err := WritePlan(&b, res); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "2 of 3 layers missing, 3.0 MiB to upload") || strings.Contains(out, "sha256:aaaaaaaaaaaa") {
		t.Errorf("a deploy's plan:\n%s", out)
	}
}

func TestWritePlanCompactsAnImagesOnlyDiff(t *testing.T) {
	diff := `--- arn:aws:ecs:us-west-2:123456789012:task-definition/f:4
+++ rendered task definition (new revision)
@@ -38,7 +38,7 @@
         }
       ],
       "essential": true,
-      "image": "r/b@sha256:1111",
+      "image": "r/b@sha256:2222",
       "logConfiguration": {
         "logDriver": "awslogs",
`
	for _, c := range []struct {
		diff    string
		compact bool
	}{{diff, true}, {strings.Replace(diff, `"essential": true,`+"\n", `"essential": true,`+"\n-      \"cpu\": 1,\n", 1), false}} {
		var b strings.Builder
		if err := WritePlan(&b, &Result{Env: "stage", Diff: c.diff}); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		if strings.Contains(out, `"essential": true`) == c.compact || !strings.Contains(out, `+      "image": "r/b@sha256:2222",`) {
			t.Errorf("compact %v:\n%s", c.compact, out)
		}
	}
}
