package engineimage

import (
	"archive/tar"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// buildTwoLayers builds FROM python:3.13-alpine an image with two layers
// of 1 KiB of random bytes each on top, tagged tag (removed at the end).
func buildTwoLayers(t *testing.T, st *teststack.Stack, tag string) string {
	t.Helper()
	dir := t.TempDir()
	for f, b := range map[string][]byte{
		"base.bin":   randomBytes(t, 1<<10),
		"top.bin":    randomBytes(t, 1<<10),
		"Dockerfile": []byte("FROM python:3.13-alpine\nCOPY base.bin /base.bin\nCOPY top.bin /top.bin\n"),
	} {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := st.Command("/usr/bin/docker", "build", "-q", "-t", tag, dir).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = st.Command("/usr/bin/docker", "rmi", "-f", tag).Run() })
	return tag
}

// TestLegacySaveIDs checks legacyIDs against the engine's own export: in a
// legacy `docker save` (engines before 25), every layer below the top one
// is found by its v1 id, worked out from one layer's v1 config.
func TestLegacySaveIDs(t *testing.T) {
	st := teststack.Start(t)
	st.Setenv(t)
	ctx := context.Background()
	n := teststack.NewNames(t)
	ref := buildTwoLayers(t, st, "ctjdeploy-test/"+n.Prefix+"app:a")
	var c Conn
	defer c.Close()
	eng, err := c.Engine(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := eng.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	var diffIDs []v1.Hash
	for _, d := range ins.RootFS.Layers {
		h, _ := v1.NewHash(d)
		diffIDs = append(diffIDs, h)
	}
	rc, err := eng.ImageSave(ctx, []string{ref})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	jsons := map[string][]byte{}
	var manifest []struct{ Layers []string }
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(h.Name, "/json"):
			b, _ := io.ReadAll(tr)
			jsons[strings.TrimSuffix(h.Name, "/json")] = b
		case h.Name == "manifest.json":
			b, _ := io.ReadAll(tr)
			if err := json.Unmarshal(b, &manifest); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(manifest) != 1 || len(manifest[0].Layers) != len(diffIDs) {
		t.Fatalf("manifest.json %+v, %d diff ids", manifest, len(diffIDs))
	}
	if !strings.HasSuffix(manifest[0].Layers[0], "/layer.tar") {
		t.Skipf("the engine writes the OCI layout (%s): layers are named by diff id, no v1 ids to work out", manifest[0].Layers[0])
	}
	dirs := make([]string, len(diffIDs))
	for i, l := range manifest[0].Layers {
		dirs[i] = strings.TrimSuffix(l, "/layer.tar")
	}
	top := dirs[len(dirs)-1]
	if got := legacyIDs(jsons[top], top, diffIDs); got != nil {
		t.Errorf("the top layer's v1 config predicted %v, want nothing", got)
	}
	for _, from := range dirs[:len(dirs)-1] {
		got := legacyIDs(jsons[from], from, diffIDs)
		if len(got) != len(diffIDs)-1 {
			t.Fatalf("from %s: %d ids worked out, want %d", from, len(got), len(diffIDs)-1)
		}
		for i, d := range dirs[:len(dirs)-1] {
			if got[d] != diffIDs[i] {
				t.Errorf("from %s: layer %d (%s) maps to %s, want %s", from, i, d, got[d], diffIDs[i])
			}
		}
	}
}
