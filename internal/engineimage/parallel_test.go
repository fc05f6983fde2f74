package engineimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"
)

// mixedLayer is a layer tar of n bytes, its first half random and its
// second half text (both of the compressor's code paths).
func mixedLayer(t *testing.T, n int) []byte {
	t.Helper()
	data := make([]byte, n)
	if _, err := rand.Read(data[:n/2]); err != nil {
		t.Fatal(err)
	}
	for i := n / 2; i < n; i++ {
		data[i] = "ctjdeploy pushes layers\n"[i%24]
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Size: int64(n), Typeflag: tar.TypeReg})
	_, _ = tw.Write(data)
	_ = tw.Close()
	return buf.Bytes()
}

// fourLayers is an OCI-layout engine with four layers, the config after
// the first three, and a save mode with 8 MiB of spool memory: the first two
// in the stream (10 and 9 MiB) are spooled to files, the third to memory,
// the last compressed from the stream.
func fourLayers(t *testing.T) (*ociEngine, [][]byte, saveMode) {
	t.Helper()
	mode := saveMode{mem: &memPool{limit: 8 << 20}, forceSpool: true} // layerTar's random layer too
	layers := [][]byte{mixedLayer(t, 9<<20), mixedLayer(t, 256<<10), layerTar(t, 10<<20), mixedLayer(t, 1<<20)}
	var ids []string
	for _, l := range layers {
		ids = append(ids, digestOf(l))
	}
	q := func(s []string) string { b, _ := json.Marshal(s); return string(b) }
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":%s}}`, q(ids)))
	id := digestOf(cfg)
	hx := func(d string) string { return strings.TrimPrefix(d, "sha256:") }
	eng := &ociEngine{id: id, diffIDs: ids, entries: []tarEntry{
		{"blobs/sha256/" + hx(ids[2]), layers[2]},
		{"blobs/sha256/" + hx(ids[0]), layers[0]},
		{"blobs/sha256/" + hx(ids[1]), layers[1]},
		{"blobs/sha256/" + hx(id), cfg},
		{"blobs/sha256/" + hx(ids[3]), layers[3]},
		{"index.json", []byte(`{}`)},
		{"manifest.json", []byte(`[]`)},
	}}
	return eng, layers, mode
}

// TestParallelCompressSameBytes: layers spooled and compressed by the
// workers give byte for byte the blobs of compressing each one from the
// stream in turn (the way before the spool), so digests pushed from either
// match; every spool is gone once the layers are compressed, and the
// temporary folder once the source is closed.
func TestParallelCompressSameBytes(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	eng, layers, mode := fourLayers(t)
	blobsOf := func(sequential bool) (map[string][]byte, map[string]v1.Hash) {
		t.Helper()
		m := mode
		m.sequential = sequential
		li, err := open(context.Background(), eng, "img", 6, "", nil, m)
		if err != nil {
			t.Fatal(err)
		}
		defer li.src.close()
		if got := li.src.read.Load(); got != int64(len(layers[0])+len(layers[1])+len(layers[2])+len(layers[3])) {
			t.Errorf("sequential=%v: read %d layer bytes", sequential, got)
		}
		ents, _ := os.ReadDir(li.src.dir)
		if len(ents) != len(layers) {
			t.Errorf("sequential=%v: temporary folder holds %d files, want the %d compressed layers only", sequential, len(ents), len(layers))
		}
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".gz") {
				t.Errorf("sequential=%v: %s left in the temporary folder", sequential, e.Name())
			}
		}
		out, dg := map[string][]byte{}, map[string]v1.Hash{}
		for _, l := range li.layers {
			b, err := li.src.blob(l.diffID)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(b.path)
			if err != nil {
				t.Fatal(err)
			}
			if digestOf(data) != l.digest.String() || int64(len(data)) != l.size {
				t.Errorf("sequential=%v: layer %s: file is %s (%d bytes), manifest says %s (%d)", sequential, l.diffID, digestOf(data), len(data), l.digest, l.size)
			}
			out[l.diffID.String()], dg[l.diffID.String()] = data, l.digest
		}
		return out, dg
	}
	seq, seqDg := blobsOf(true)
	par, parDg := blobsOf(false)
	if len(seq) != 4 || len(par) != 4 {
		t.Fatalf("%d and %d layers, want 4", len(seq), len(par))
	}
	for i, l := range layers {
		d := digestOf(l)
		if !bytes.Equal(seq[d], par[d]) || seqDg[d] != parDg[d] {
			t.Errorf("layer %d (%s): sequential %s (%d bytes), parallel %s (%d bytes)", i, d, seqDg[d], len(seq[d]), parDg[d], len(par[d]))
		}
		// And the same as compressLayer of the layer's bytes on their own.
		b, diff, err := compressLayer(bytes.NewReader(l), filepath.Join(t.TempDir(), "one.gz"), 6)
		if err != nil || diff.String() != d || b.digest != parDg[d] {
			t.Errorf("layer %d: compressLayer gives %s (diff id %s, %v), the save %s", i, b.digest, diff, err, parDg[d])
		}
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("%d entries left in TMPDIR after close, want none", len(ents))
	}
	if m := mode.mem.used.Load(); m != 0 {
		t.Errorf("%d bytes of spool memory still held", m)
	}
}

// brokenEngine's save stream breaks (err) after cut bytes of e's.
type brokenEngine struct {
	*ociEngine
	cut int
	err error
}

func (e *brokenEngine) ImageSave(ctx context.Context, images []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error) {
	rc, _ := e.ociEngine.ImageSave(ctx, images, opts...)
	buf, _ := io.ReadAll(rc)
	return io.NopCloser(io.MultiReader(bytes.NewReader(buf[:e.cut]), iotest.ErrReader(e.err))), nil
}

// TestSaveErrorRemovesSpools: a save stream that breaks while layers are
// spooled or being compressed (and a cancelled push) fails naming the image
// and leaves no temporary file behind.
func TestSaveErrorRemovesSpools(t *testing.T) {
	eng, layers, mode := fourLayers(t)
	broken := errors.New("connection reset by the engine")
	for _, cut := range []int{len(layers[2]) / 2, len(layers[2]) + len(layers[0]) + len(layers[1]) + 4096} {
		tmp := t.TempDir()
		t.Setenv("TMPDIR", tmp)
		_, err := open(context.Background(), &brokenEngine{ociEngine: eng, cut: cut, err: broken}, "img", 6, "", nil, mode)
		if !errors.Is(err, broken) || !strings.Contains(err.Error(), "img") {
			t.Errorf("cut at %d: error %v, want the engine's, naming the image", cut, err)
		}
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			t.Errorf("cut at %d: %d entries left in TMPDIR, want none", cut, len(ents))
		}
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := open(ctx, eng, "img", 6, "", nil, mode); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: error %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("cancelled: %d entries left in TMPDIR, want none", len(ents))
	}
	if m := mode.mem.used.Load(); m != 0 {
		t.Errorf("%d bytes of spool memory still held", m)
	}
}

// TestShrinks: random bytes (gzip stores them) are not worth a spool, text
// is.
func TestShrinks(t *testing.T) {
	if shrinks(randomBytes(t, trialBytes), 6) {
		t.Error("random bytes: shrinks says gzip makes them smaller")
	}
	text := bytes.Repeat([]byte("import django.db.models\n"), trialBytes/24)
	if !shrinks(text, 6) {
		t.Error("text: shrinks says gzip does not make it smaller")
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
