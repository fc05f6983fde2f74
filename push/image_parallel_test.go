package push

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hackforla/ctjdeploy/build"
	"github.com/hackforla/ctjdeploy/internal/engineimage"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// TestColdPushPhases pushes an image of two layers (CTJDEPLOY_PHASES_MB
// MiB each, default 8; random, or text when CTJDEPLOY_PHASES_TEXT=1) into
// an empty repository with an empty digest cache, and logs where the wall
// time goes: the export (docker save read, diff-id hashing, gzip into the
// temporary folder), three times each way, sequential and parallel
// compression interleaved, then the upload. Run with -cpuprofile to see the
// CPU split. It asserts that both ways give one manifest digest, and that
// every layer byte was compressed once and uploaded.
func TestColdPushPhases(t *testing.T) {
	st := teststack.Start(t)
	st.Setenv(t)
	mb := 8
	if v, err := strconv.Atoi(os.Getenv("CTJDEPLOY_PHASES_MB")); err == nil && v > 0 {
		mb = v
	}
	base := randomBytes(t, mb<<20)
	topFill := func(b []byte) {}
	if os.Getenv("CTJDEPLOY_PHASES_TEXT") == "1" {
		// Random letters and newlines: gzip takes them to about 60 % with
		// all its work (matches, Huffman), as it does real code and text.
		fill := func(b []byte) {
			for i := range b {
				if b[i]%40 == 0 {
					b[i] = '\n'
				} else {
					b[i] = 'a' + b[i]%26
				}
			}
		}
		fill(base)
		topFill = fill
	}
	ctx := context.Background()
	n := teststack.NewNames(t)
	img := buildLayeredFill(t, st, "ctjdeploy-test/"+n.Prefix+"phases:a", base, mb<<20, topFill)
	st.CreateRepository(t, n.Prefix+"phases", "")
	p, e := freshPusher(t, st)
	eng, _ := p.engine.Engine(ctx)
	var times [2][]time.Duration
	var digests [2]string
	var read int64
	for run := 0; run < 6; run++ {
		way := run % 2 // 0 sequential, 1 parallel
		t0 := time.Now()
		li, err := engineimage.Open(ctx, eng, img.LocalRef, engineimage.Options{Level: p.level, Sequential: way == 0})
		if err != nil {
			t.Fatal(err)
		}
		times[way] = append(times[way], time.Since(t0))
		read = li.EngineRead()
		if digests[way] != "" && digests[way] != li.Digest().String() {
			t.Errorf("run %d: manifest %s, an earlier one %s", run, li.Digest(), digests[way])
		}
		digests[way] = li.Digest().String()
		li.Close()
	}
	if digests[0] != digests[1] {
		t.Fatalf("sequential compression gives manifest %s, parallel %s", digests[0], digests[1])
	}
	if read < int64(2*mb)<<20 {
		t.Fatalf("export read %d layer bytes, want at least %d", read, 2*mb<<20)
	}
	t1 := time.Now()
	res, err := p.Push(ctx, img, Target{Registry: st.Registry, Repository: n.Prefix + "phases", Tags: []string{"c1"}})
	if err != nil {
		t.Fatal(err)
	}
	push := time.Since(t1)
	if res.UploadedBytes == 0 || res.Digest != digests[1] || e.saves.Load() != 7 {
		t.Fatalf("pushed %s, %d bytes uploaded, %d exports; want %s, > 0, 7", res.Digest, res.UploadedBytes, e.saves.Load(), digests[1])
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("%d MiB of layers, %d MiB compressed; export+hash+gzip sequential %v, parallel %v; full push (export again + upload) %.2fs; load average %s",
		read>>20, res.UploadedBytes>>20, times[0], times[1], push.Seconds(), strings.Join(strings.Fields(string(load))[:3], " "))
}

// buildLayeredFill is buildLayered with the top layer's bytes from fill
// (random when fill leaves them).
func buildLayeredFill(t *testing.T, st *teststack.Stack, tag string, base []byte, topBytes int, fill func([]byte)) build.Image {
	t.Helper()
	dir := t.TempDir()
	top := randomBytes(t, topBytes)
	fill(top)
	top[0]++ // differs from base even when both are filled alike
	for f, b := range map[string][]byte{
		"base.bin":   base,
		"top.bin":    top,
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
	return build.Image{Name: "app", LocalRef: tag}
}
