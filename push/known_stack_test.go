package push

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/client"

	"github.com/hackforla/ctjdeploy/build"
	"github.com/hackforla/ctjdeploy/internal/engineimage"
	"github.com/hackforla/ctjdeploy/internal/registrytest"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// countingEngine counts, at the engine API boundary, how many image exports
// (docker save) were asked for and how many bytes were read from them.
type countingEngine struct {
	engineimage.Engine
	saves atomic.Int32
	bytes atomic.Int64
}

func (e *countingEngine) ImageSave(ctx context.Context, images []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error) {
	e.saves.Add(1)
	rc, err := e.Engine.ImageSave(ctx, images, opts...)
	if err != nil {
		return nil, err
	}
	return &countingRC{ReadCloser: rc, n: &e.bytes}, nil
}

// countingRC counts the bytes read through it into n.
type countingRC struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingRC) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// freshPusher is a pusher as on a fresh CI runner: an empty digest cache,
// and an engine whose exports are counted.
func freshPusher(t *testing.T, st *teststack.Stack) (*ECR, *countingEngine) {
	t.Helper()
	return cachedPusher(t, st, t.TempDir())
}

// cachedPusher is a new pusher (a new process) with the digest cache dir.
func cachedPusher(t *testing.T, st *teststack.Stack, dir string) (*ECR, *countingEngine) {
	t.Helper()
	ctx := context.Background()
	p, err := New(ctx, st.AWSConfig(t), WithCacheDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	eng, err := p.engine.Engine(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ce := &countingEngine{Engine: eng}
	real := p.engine
	t.Cleanup(func() { _ = real.Close() })
	p.engine = engineimage.With(ce)
	return p, ce
}

// buildLayered builds FROM python:3.13-alpine an image with a base layer of
// baseBytes random bytes (the same for every call with the same base) and a
// top layer of topBytes random bytes (new on each call).
func buildLayered(t *testing.T, st *teststack.Stack, tag string, base []byte, topBytes int) build.Image {
	t.Helper()
	return buildLayeredFill(t, st, tag, base, topBytes, func([]byte) {})
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPushFreshRunnerKnownLayers: an image pushed once is pushed again by a
// pusher with an empty digest cache (a fresh CI runner): its layers are known
// from the image the registry holds under ENV, so nothing is read from the
// engine and nothing is uploaded. Then only the top layer changes: only that
// layer is read and compressed.
func TestPushFreshRunnerKnownLayers(t *testing.T) {
	st := teststack.Start(t)
	st.Setenv(t)
	ctx := context.Background()
	n := teststack.NewNames(t)
	repoName := n.BackendRepo
	st.CreateRepository(t, repoName, "")
	proxy := registrytest.Start(t, st.Registry)
	const baseSize, topSize = 8 << 20, 2 << 20
	base := randomBytes(t, baseSize)
	imgA := buildLayered(t, st, "ctjdeploy-test/"+n.Prefix+"app:a", base, topSize)
	target := func(tags ...string) Target {
		return Target{Registry: proxy.Addr, Repository: repoName, Tags: tags}
	}

	// The first push, from a machine that knows nothing: every layer read.
	p1, e1 := freshPusher(t, st)
	first, err := p1.Push(ctx, imgA, target("c1", "stage"))
	if err != nil {
		t.Fatal(err)
	}
	if first.EngineReadBytes < baseSize+topSize || e1.saves.Load() != 1 || first.KnownLayers != 0 {
		t.Fatalf("cold push: %+v, %d exports; want every layer read (≥ %d bytes) from one export", first, e1.saves.Load(), baseSize+topSize)
	}
	t.Logf("cold push: read %d layer bytes (%d streamed), uploaded %d", first.EngineReadBytes, e1.bytes.Load(), first.UploadedBytes)

	// The same image from a fresh runner, under a new commit tag.
	p2, e2 := freshPusher(t, st)
	proxy.Reset()
	pl, err := p2.Plan(ctx, imgA, target("c2", "stage"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range pl.Layers {
		if l.Missing || !strings.HasPrefix(l.KnownFrom, "registry ") || !strings.HasSuffix(l.KnownFrom, ":stage") {
			t.Errorf("plan layer %+v: want present and known from the registry's stage image", l)
		}
	}
	if pl.Digest != first.Digest || pl.MissingBytes != 0 {
		t.Errorf("plan %+v: want digest %s and nothing missing", pl, first.Digest)
	}
	proxy.Reset()
	res, err := p2.Push(ctx, imgA, target("c2", "stage"))
	if err != nil {
		t.Fatal(err)
	}
	// Each layer is HEADed once (what is known is not asked again by the
	// write): the manifest is all that is written.
	if h := proxy.Count("HEAD blob"); h != len(pl.Layers) || proxy.Count("PUT manifest") != 2 {
		t.Errorf("fresh-runner re-push: %d blob HEADs for %d layers, %d manifest PUTs (want 2): %v", h, len(pl.Layers), proxy.Count("PUT manifest"), proxy.Requests())
	}
	t.Logf("fresh-runner re-push: %d registry requests", len(proxy.Requests()))
	if e2.saves.Load() != 0 || e2.bytes.Load() != 0 || res.EngineReadBytes != 0 || res.EngineStreamBytes != 0 {
		t.Errorf("fresh-runner re-push read from the engine: %d exports, %d bytes; result %+v", e2.saves.Load(), e2.bytes.Load(), res)
	}
	if res.UploadedBytes != 0 || proxy.UploadedBytes() != 0 || proxy.Count("POST upload") != 0 {
		t.Errorf("fresh-runner re-push uploaded: result %d bytes, registry got %d bytes, %d uploads started", res.UploadedBytes, proxy.UploadedBytes(), proxy.Count("POST upload"))
	}
	if res.Digest != first.Digest || res.KnownLayers != len(pl.Layers) {
		t.Errorf("fresh-runner re-push %+v: want digest %s, %d known layers", res, first.Digest, len(pl.Layers))
	}
	repo, err := name.NewRepository(st.Registry+"/"+repoName, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"c1", "c2", "stage"} {
		d, err := remote.Head(repo.Tag(tag), p2.remoteOpts(ctx, st.Registry)...)
		if err != nil || d.Digest.String() != first.Digest {
			t.Errorf("%s: %v %v, want %s", tag, d, err, first.Digest)
		}
	}

	// Only the top layer changed, again from a fresh runner.
	imgB := buildLayered(t, st, "ctjdeploy-test/"+n.Prefix+"app:b", base, topSize)
	p3, e3 := freshPusher(t, st)
	proxy.Reset()
	resB, err := p3.Push(ctx, imgB, target("c3", "stage"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("top layer changed: read %d layer bytes (%d streamed from the export, %d counted at the engine), uploaded %d (registry got %d), %d layers known",
		resB.EngineReadBytes, resB.EngineStreamBytes, e3.bytes.Load(), resB.UploadedBytes, proxy.UploadedBytes(), resB.KnownLayers)
	// The top layer is a tar of one 2 MiB file: a few KiB of tar headers
	// and padding on top.
	if resB.EngineReadBytes < topSize || resB.EngineReadBytes > topSize+64<<10 {
		t.Errorf("top layer changed: read %d layer bytes, want about %d (the top layer only)", resB.EngineReadBytes, topSize)
	}
	if e3.saves.Load() != 1 || e3.bytes.Load() != resB.EngineStreamBytes || resB.EngineStreamBytes < resB.EngineReadBytes {
		t.Errorf("export counts: %d exports, %d bytes at the engine, %d in the result", e3.saves.Load(), e3.bytes.Load(), resB.EngineStreamBytes)
	}
	// Random bytes do not compress: the upload is the top layer and the config.
	if up := proxy.UploadedBytes(); up < topSize || up > topSize+256<<10 || resB.UploadedBytes < topSize || resB.UploadedBytes > topSize+64<<10 {
		t.Errorf("top layer changed: uploaded %d (registry got %d), want about %d", resB.UploadedBytes, up, topSize)
	}
	if resB.Digest == first.Digest || resB.KnownLayers == 0 {
		t.Errorf("top layer changed: %+v", resB)
	}
	// What the registry holds under stage is whole and valid: every blob
	// present, each layer's gzip matching its diff id.
	img, err := remote.Image(repo.Tag("stage"), p3.remoteOpts(ctx, st.Registry)...)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d.String() != resB.Digest {
		t.Errorf("stage = %s, want %s", d, resB.Digest)
	}
	checkImage(t, img)
}

// checkImage reads every layer of a registry image back: its compressed
// bytes hash to its digest and its uncompressed bytes to its diff id.
func checkImage(t *testing.T, img v1.Image) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != len(cf.RootFS.DiffIDs) {
		t.Fatalf("%d layers, %d diff ids", len(ls), len(cf.RootFS.DiffIDs))
	}
	for i, l := range ls {
		d, _ := l.Digest()
		for _, c := range []struct {
			open func() (io.ReadCloser, error)
			want v1.Hash
		}{{l.Compressed, d}, {l.Uncompressed, cf.RootFS.DiffIDs[i]}} {
			rc, err := c.open()
			if err != nil {
				t.Fatalf("layer %d: %v", i, err)
			}
			h := sha256.New()
			_, err = io.Copy(h, rc)
			rc.Close()
			if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); err != nil || got != c.want.String() {
				t.Errorf("layer %d reads back as %s (%v), want %s", i, got, err, c.want)
			}
		}
	}
}
