package engineimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
)

// ociEngine is an engine whose `docker save` writes the OCI layout of
// Docker 25 and newer (blobs/sha256/<diff id> for layers, the config under
// the image id), entries in the given order.
type ociEngine struct {
	id      string
	diffIDs []string
	entries []tarEntry
	saves   atomic.Int32
}

type tarEntry struct {
	name string
	data []byte
}

func (e *ociEngine) ImageInspect(context.Context, string, ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	var r client.ImageInspectResult
	r.ID = e.id
	r.RootFS = image.RootFS{Type: "layers", Layers: e.diffIDs}
	return r, nil
}

func (e *ociEngine) ImageSave(context.Context, []string, ...client.ImageSaveOption) (client.ImageSaveResult, error) {
	e.saves.Add(1)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, en := range e.entries {
		_ = tw.WriteHeader(&tar.Header{Name: en.name, Mode: 0o644, Size: int64(len(en.data)), Typeflag: tar.TypeReg})
		_, _ = tw.Write(en.data)
	}
	_ = tw.Close()
	return io.NopCloser(&buf), nil
}

func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// layerTar is a layer: a tar of one file of n random bytes.
func layerTar(t *testing.T, n int) []byte {
	t.Helper()
	data := make([]byte, n)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Size: int64(n), Typeflag: tar.TypeReg})
	_, _ = tw.Write(data)
	_ = tw.Close()
	return buf.Bytes()
}

// TestSaveOCILayoutSkipsKnownLayers: with the OCI-layout save, a layer the
// registry knows is neither hashed nor compressed, and the stream is left
// as soon as the config and the new layer are read.
func TestSaveOCILayoutSkipsKnownLayers(t *testing.T) {
	base, top := layerTar(t, 1<<20), layerTar(t, 64<<10)
	d0, d1 := digestOf(base), digestOf(top)
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%q,%q]}}`, d0, d1))
	id := digestOf(cfg)
	hexOf := func(d string) string { return d[len("sha256:"):] }
	eng := &ociEngine{id: id, diffIDs: []string{d0, d1}, entries: []tarEntry{
		{"blobs/sha256/" + hexOf(d1), top},
		{"blobs/sha256/" + hexOf(id), cfg},
		{"blobs/sha256/" + hexOf(d0), base}, // after everything needed: never read
		{"index.json", []byte(`{}`)},
		{"manifest.json", []byte(`[]`)},
	}}
	known0 := KnownLayer{Digest: v1.Hash{Algorithm: "sha256", Hex: hexOf(digestOf([]byte("gz of base")))}, Size: 1234, From: "registry r:stage"}
	h0, _ := v1.NewHash(d0)
	known := func([]v1.Hash) Known {
		return Known{Layers: map[v1.Hash]KnownLayer{h0: known0}}
	}
	li, err := open(context.Background(), eng, "img", 6, t.TempDir(), known, defaultSaveMode())
	if err != nil {
		t.Fatal(err)
	}
	defer li.src.close()
	if eng.saves.Load() != 1 {
		t.Fatalf("%d exports, want 1", eng.saves.Load())
	}
	if got := li.src.read.Load(); got != int64(len(top)) {
		t.Errorf("read %d layer bytes, want %d (the new layer only)", got, len(top))
	}
	if got := li.src.streamed.Load(); got >= int64(len(base)) {
		t.Errorf("streamed %d bytes: the known layer after the last needed entry was read", got)
	}
	if len(li.layers) != 2 || li.layers[0].digest != known0.Digest || li.layers[0].size != 1234 || li.From[h0] != "registry r:stage" {
		t.Errorf("layer 0 = %+v, from %q; want the known digest", li.layers[0], li.From[h0])
	}
	if b, err := li.src.blob(li.layers[1].diffID); err != nil || b.digest != li.layers[1].digest {
		t.Errorf("the new layer: %+v, %v", b, err)
	}
	if string(li.config) != string(cfg) {
		t.Errorf("config %s", li.config)
	}
}

// cutEngine's save stream breaks off after half of ociEngine's (an engine
// killed mid-export): the read fails with io.ErrUnexpectedEOF.
type cutEngine struct{ *ociEngine }

func (e cutEngine) ImageSave(ctx context.Context, refs []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error) {
	rc, _ := e.ociEngine.ImageSave(ctx, refs, opts...)
	all, _ := io.ReadAll(rc)
	return io.NopCloser(io.MultiReader(bytes.NewReader(all[:len(all)/2]), errReader{io.ErrUnexpectedEOF})), nil
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// TestSaveStreamBrokeOff: a save stream that breaks off is reported as the
// Docker engine's, with what to do.
func TestSaveStreamBrokeOff(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///run/test-engine.sock")
	layer := layerTar(t, 1<<20)
	d0 := digestOf(layer)
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%q]}}`, d0))
	id := digestOf(cfg)
	hexOf := func(d string) string { return d[len("sha256:"):] }
	eng := cutEngine{&ociEngine{id: id, diffIDs: []string{d0}, entries: []tarEntry{
		{"blobs/sha256/" + hexOf(id), cfg},
		{"blobs/sha256/" + hexOf(d0), layer},
	}}}
	_, err := open(context.Background(), eng, "img", 6, t.TempDir(), func([]v1.Hash) Known { return Known{} }, defaultSaveMode())
	if err == nil {
		t.Fatal("no error from a save stream that broke off")
	}
	for _, want := range []string{"Docker engine at unix:///run/test-engine.sock", "broke off", "unexpected EOF", "docker info", "deploy again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
