package build

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

func TestEngineChecksCacheLoops(t *testing.T) {
	for v, want := range map[string]bool{
		"20.10.24":            false, // Debian 12's docker.io: BuildKit v0.8
		"19.03.13":            false,
		"18.09.1":             false,
		"23.0.0":              true, // BuildKit v0.10, with moby/buildkit#2024
		"28.1.1":              true,
		"v27.5.0":             true,
		"1.13.1":              true, // no BuildKit
		"":                    true, // unknown: nothing changes
		"not-a-version":       true,
		" 20.10.24+dfsg1\n":   false,
		"20.10.24+dfsg1-1+b3": false,
	} {
		if got := engineChecksCacheLoops(v); got != want {
			t.Errorf("engineChecksCacheLoops(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestInlineCacheLoops(t *testing.T) {
	for file, want := range map[string]bool{
		// The example's next.dockerfile (deps -> builder -> runner), built
		// alone on an empty build cache: its records merged by key loop
		// through four keys. Importing it killed docker.io 20.10.24.
		"testdata/next-inline-cache.json": true,
		// The example's django.dockerfile: one stage, no loop.
		"testdata/django-inline-cache.json": false,
	} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		got, err := inlineCacheLoops(raw)
		if err != nil || got != want {
			t.Errorf("%s: inlineCacheLoops = %v, %v; want %v", file, got, err, want)
		}
	}
	// Hand-made graphs: records are merged by digest, as BuildKit does.
	for _, c := range []struct {
		name, cfg string
		want      bool
	}{
		{"no cache", `{"architecture":"amd64"}`, false},
		{"chain", cache(`[{"digest":"a"},{"digest":"b","inputs":[[{"link":0}]]},{"digest":"c","inputs":[[{"link":1}]]}]`), false},
		{"fork and merge without a shared key", cache(`[{"digest":"a"},{"digest":"b","inputs":[[{"link":0}]]},{"digest":"c","inputs":[[{"link":0}],[{"link":1}]]}]`), false},
		{"two records of one key close a loop", cache(`[{"digest":"a"},{"digest":"b","inputs":[[{"link":0}]]},{"digest":"a","inputs":[[{"link":1}]]}]`), true},
		{"self link", cache(`[{"digest":"a","inputs":[[{"link":0}]]}]`), true},
		{"link out of range", cache(`[{"digest":"a","inputs":[[{"link":7}]]}]`), false},
	} {
		got, err := inlineCacheLoops([]byte(c.cfg))
		if err != nil || got != c.want {
			t.Errorf("%s: inlineCacheLoops = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	if _, err := inlineCacheLoops([]byte(`{"moby.buildkit.cache.v0":"bm90IGpzb24="}`)); err == nil {
		t.Error("an unreadable inline cache gave no error")
	}
}

// cache is an image config whose inline cache is records.
func cache(records string) string {
	b, _ := json.Marshal(map[string][]byte{"moby.buildkit.cache.v0": []byte(records)})
	return string(b)
}

// The credential helper answers for its registries; for any other the
// user's docker config does (as the docker CLI reads them).
func TestCacheKeychain(t *testing.T) {
	dir := t.TempDir()
	helper := filepath.Join(dir, "helper")
	script := "#!/bin/sh\n[ \"$1\" = get ] && [ \"$(cat)\" = 127.0.0.1:5055 ] && [ \"$HELPER_ENV\" = yes ] || exit 1\necho '{\"Username\":\"AWS\",\"Secret\":\"from-helper\"}'\n"
	if err := os.WriteFile(helper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config")
	if err := os.Mkdir(cfg, 0o700); err != nil {
		t.Fatal(err)
	}
	auth := base64.StdEncoding.EncodeToString([]byte("user:from-config"))
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"auths":{"registry.example.com":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", cfg)
	d := &Docker{helperBin: helper, helperName: "ctjdeploy", registries: []string{"127.0.0.1:5055"}, helperEnv: []string{"HELPER_ENV=yes"}}
	for reg, want := range map[string]string{"127.0.0.1:5055": "from-helper", "registry.example.com": "from-config", "other.example.com": ""} {
		r, err := name.NewRegistry(reg)
		if err != nil {
			t.Fatal(err)
		}
		a, err := d.keychain().Resolve(r)
		if err != nil {
			t.Fatal(err)
		}
		c, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		if c.Password != want {
			t.Errorf("%s: password %q, want %q", reg, c.Password, want)
		}
	}
}
