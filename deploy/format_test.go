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
		Change: "register a new revision"}
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
}
