package build

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/report"
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

// On an engine before 23.0 only a --cache-from image whose inline cache is
// known not to loop stays: a looping one is left out with a warning, so is
// one that cannot be read, and one the registry does not have is left out
// without a word. On a newer engine, or with no reader, every one stays.
func TestDropLoopingCaches(t *testing.T) {
	configs := map[string]string{}
	for ref, file := range map[string]string{"reg/next:stage": "testdata/next-inline-cache.json", "reg/django:stage": "testdata/django-inline-cache.json"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		configs[ref] = string(b)
	}
	read := func(_ context.Context, ref string) ([]byte, error) {
		switch c, ok := configs[ref]; {
		case ok:
			return []byte(c), nil
		case ref == "reg/missing:stage":
			return nil, nil
		}
		return nil, errors.New("500 Internal Server Error")
	}
	spec := Spec{Name: "next", CacheFrom: []string{"reg/next:stage", "reg/django:stage", "reg/missing:stage", "reg/broken:stage"}}
	for _, c := range []struct {
		version string
		read    func(context.Context, string) ([]byte, error)
		want    []string
		warned  []string // the refs a warning names
	}{
		{"20.10.24+dfsg1", read, []string{"reg/django:stage"}, []string{"reg/next:stage", "reg/broken:stage"}},
		{"28.0.0", read, spec.CacheFrom, nil},
		{"20.10.24+dfsg1", nil, spec.CacheFrom, nil}, // no reader: nothing checked
	} {
		dir := t.TempDir()
		docker := filepath.Join(dir, "docker")
		if err := os.WriteFile(docker, []byte("#!/bin/sh\n[ \"$1\" = version ] && echo "+c.version+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		var rec report.Recorder
		d := &Docker{bin: docker, cacheConfig: c.read}
		got := d.dropLoopingCaches(context.Background(), spec, report.For(&rec, "build"))
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("engine %s, reader %v: kept %v, want %v", c.version, c.read != nil, got, c.want)
		}
		var warned []string
		for _, e := range rec.Events {
			if e.Kind != report.Warn || !strings.Contains(e.Message, "moby/buildkit#2024") || !strings.Contains(e.Message, c.version) {
				continue
			}
			for _, ref := range spec.CacheFrom {
				if strings.Contains(e.Message, " "+ref+":") {
					warned = append(warned, ref)
				}
			}
		}
		if !reflect.DeepEqual(warned, c.warned) {
			t.Errorf("engine %s, reader %v: warnings name %v, want %v: %+v", c.version, c.read != nil, warned, c.warned, rec.Events)
		}
	}
}
