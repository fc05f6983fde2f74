// Package engineimage reads an image of the Docker engine's store as a
// go-containerregistry v1.Image with gzip layers: it is the one package
// (besides build, which runs the docker CLI) that talks to the engine's
// image API (inspect, and one `docker save` per image).
//
// Open computes the manifest without reading a layer when this machine's
// digest cache knows the image id, or when the caller's Known (what the
// registry holds: layers by diff id, configs by image id) covers it; else it
// reads the export once, passing by the layers the registry holds and
// compressing the others into a private temporary folder, spooling layers
// for parallel workers on machines with CPUs to spare. Compression is
// reproducible (klauspost gzip, fixed level, no name or time), so two
// machines compute one digest for one layer. The per-layer cache also
// remembers which repositories this machine pushed a layer to (LayerHomes,
// NoteLayerHome), for mounts.
package engineimage

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/moby/moby/client"
)

// Engine is the part of the Docker engine API an Image is read through.
type Engine interface {
	ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImageSave(ctx context.Context, images []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error)
}

// KnownLayer is a layer whose compressed digest is known without reading it
// from the engine: from an image the registry already holds, or from this
// machine's digest cache, and present in the target repository.
type KnownLayer struct {
	Digest v1.Hash
	Size   int64
	From   string // where it was learnt: "registry <ref>" or "cache"
	// In is the repository the digest was learnt in (zero for the cache);
	// Mount says the target repository lacks the blob but In holds it, in
	// the same registry: the push mounts it from there.
	In    name.Repository
	Mount bool
}

// Known is what the registry's earlier pushes tell about local layers:
// compressed digests by diff id, and raw configs by config digest (the
// image id), so an unchanged image needs nothing from the engine.
type Known struct {
	Layers  map[v1.Hash]KnownLayer
	Configs map[v1.Hash][]byte
	// ConfigIn says which repository (REGISTRY/REPOSITORY) each config was
	// read from; Target is the repository being pushed to. A config read
	// from the target is a blob the target holds.
	ConfigIn map[v1.Hash]string
	Target   string
}

// compressor names the gzip implementation and level: a layer's compressed
// digest depends on both, so cached digests are only valid for the same one.
func compressor(level int) string { return fmt.Sprintf("klauspost-gzip-1.19-l%d", level) }

// Image is an image of the engine's store as a v1.Image (V1) with gzip
// layers. Its manifest is computed without reading any layer when the blob
// cache knows the image, or the registry knows its layers (Known); the
// layers are then read from the engine (one `docker save`, compressed once
// into a private temporary folder) only if the registry lacks one of them.
// Close removes the temporary folder.
type Image struct {
	src      *source
	config   []byte
	layers   []*blobLayer
	manifest []byte
	digest   v1.Hash
	uploaded atomic.Int64 // compressed layer bytes read by the uploader
	// From says, by diff id, where a layer's digest was known from without
	// reading it ("registry REF", "cache", "pushed to REPO"); absent: read.
	From map[v1.Hash]string
	// Mounts are the layers (by digest) the target repository lacks and
	// another repository of the registry holds: mounted from there. The
	// pusher adds those it finds.
	Mounts map[v1.Hash]name.Repository
	// Present says the target repository was seen (by HEAD or by reading it
	// there) to hold every layer and the config: a push writes the manifest
	// only.
	Present bool
}

var _ partial.CompressedImageCore = (*Image)(nil)

func (i *Image) RawConfigFile() ([]byte, error)      { return i.config, nil }
func (i *Image) MediaType() (types.MediaType, error) { return types.DockerManifestSchema2, nil }
func (i *Image) RawManifest() ([]byte, error)        { return i.manifest, nil }

// LayerBytes is the compressed size of the image's layers.
func (i *Image) LayerBytes() (total int64) {
	for _, l := range i.layers {
		total += l.size
	}
	return total
}

func (i *Image) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range i.layers {
		if l.digest == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("image has no layer %s", h)
}

// V1 returns the image as a go-containerregistry v1.Image.
func (i *Image) V1() (v1.Image, error) { return partial.CompressedToImage(i) }

// Digest is the manifest digest.
func (i *Image) Digest() v1.Hash { return i.digest }

// Config is the raw config (its digest is the engine's image id).
func (i *Image) Config() []byte { return i.config }

// Blob is one layer of an Image: its diff id, and the digest and size of
// its gzip blob.
type Blob struct {
	DiffID, Digest v1.Hash
	Size           int64
}

// Blobs are the image's layers, bottom first.
func (i *Image) Blobs() []Blob {
	out := make([]Blob, len(i.layers))
	for j, l := range i.layers {
		out[j] = Blob{DiffID: l.diffID, Digest: l.digest, Size: l.size}
	}
	return out
}

// CountUploaded counts the bytes read from rc as uploaded, as the image's
// own layers' are (a layer uploaded from elsewhere in its place).
func (i *Image) CountUploaded(rc io.ReadCloser) io.ReadCloser {
	return &countingReader{r: rc, n: &i.uploaded}
}

// Uploaded is how many compressed layer bytes the uploader read.
func (i *Image) Uploaded() int64 { return i.uploaded.Load() }

// EngineRead is how many uncompressed layer bytes were read out of the
// engine's export, hashed and compressed; EngineStreamed every byte read
// from the export stream, layers passed by unhashed included.
func (i *Image) EngineRead() int64     { return i.src.read.Load() }
func (i *Image) EngineStreamed() int64 { return i.src.streamed.Load() }

// Close removes the image's temporary folder.
func (i *Image) Close() { i.src.close() }

// blobLayer is one gzip layer of a Image.
type blobLayer struct {
	img    *Image
	diffID v1.Hash
	digest v1.Hash
	size   int64
}

func (l *blobLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *blobLayer) Size() (int64, error)                { return l.size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }

// Compressed reads the layer from the engine (once per image) and counts the
// bytes the uploader reads.
func (l *blobLayer) Compressed() (io.ReadCloser, error) {
	b, err := l.img.src.blob(l.diffID)
	if err != nil {
		return nil, err
	}
	if b.digest != l.digest || b.size != l.size {
		return nil, fmt.Errorf("layer %s compressed to %s (%d bytes), not %s (%d bytes) as cached: remove the cache folder %s and push again",
			l.diffID, b.digest, b.size, l.digest, l.size, l.img.src.cacheDir)
	}
	f, err := os.Open(b.path)
	if err != nil {
		return nil, err
	}
	return &countingReader{r: f, n: &l.img.uploaded}, nil
}

type countingReader struct {
	r io.ReadCloser
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
func (c *countingReader) Close() error { return c.r.Close() }

// engineStream records the first error reading the engine's save stream
// other than its end.
type engineStream struct {
	r   io.ReadCloser
	err error
}

func (e *engineStream) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && e.err == nil {
		e.err = err
	}
	return n, err
}
func (e *engineStream) Close() error { return e.r.Close() }

// blob is a compressed layer in the temporary folder.
type blob struct {
	digest v1.Hash
	size   int64
	path   string
}

// source reads an image out of the engine with one `docker save`.
type source struct {
	ctx      context.Context
	eng      Engine
	ref      string
	id       v1.Hash
	diffIDs  []v1.Hash
	level    int
	cacheDir string
	mode     saveMode

	once   sync.Once
	err    error
	dir    string
	config []byte
	blobs  map[v1.Hash]blob // by diffID

	// skip holds the diff ids of layers the registry already has under a
	// known digest: they are not compressed (the save stream still passes
	// them by when the engine writes them).
	skip     map[v1.Hash]bool
	read     atomic.Int64 // uncompressed layer bytes read from the save stream, hashed and compressed
	streamed atomic.Int64 // every byte read from the save stream (layers passed by included)
}

func (s *source) blob(diffID v1.Hash) (blob, error) {
	if err := s.materialize(); err != nil {
		return blob{}, err
	}
	b, ok := s.blobs[diffID]
	if !ok {
		return blob{}, fmt.Errorf("docker save of %s has no layer %s", s.ref, diffID)
	}
	return b, nil
}

func (s *source) close() {
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

func (s *source) materialize() error {
	s.once.Do(func() { s.err = s.save() })
	return s.err
}

// legacyIDs works out the v1 ids a legacy `docker save` (engines before 25)
// gives the layers of an image below its top one, from the v1 config (raw)
// of one of them (dir): the engine derives each as the digest of that config
// without "id" and "parent" (and without the platform fields it adds after
// deriving the id: Docker 20.10 adds "os"), plus "layer_id" (the chain id of
// the layers up to it) and "parent" (the v1 id below it), all of them sharing
// the remaining fields. The answer maps v1 id to diff id, and is nil unless
// dir itself is among the ids worked out, which proves the derivation (the
// top layer's config carries the image's fields and predicts nothing; a
// later entry may then be tried).
func legacyIDs(raw []byte, dir string, diffIDs []v1.Hash) map[string]v1.Hash {
	var tmpl map[string]json.RawMessage
	if json.Unmarshal(raw, &tmpl) != nil {
		return nil
	}
	delete(tmpl, "id")
	delete(tmpl, "parent")
	for _, drop := range [][]string{nil, {"os"}, {"os", "architecture", "variant"}} {
		t := make(map[string]json.RawMessage, len(tmpl))
		for k, v := range tmpl {
			t[k] = v
		}
		for _, k := range drop {
			delete(t, k)
		}
		if out := legacyIDsFrom(t, diffIDs); out != nil {
			if _, ok := out[dir]; ok {
				return out
			}
		}
	}
	return nil
}

func legacyIDsFrom(tmpl map[string]json.RawMessage, diffIDs []v1.Hash) map[string]v1.Hash {
	out := map[string]v1.Hash{}
	var chain, parent string
	for i, d := range diffIDs {
		if i == len(diffIDs)-1 {
			break // the top layer's v1 config is the image's: not this template
		}
		if i == 0 {
			chain = d.String()
		} else {
			c := sha256.Sum256([]byte(chain + " " + d.String()))
			chain = "sha256:" + hex.EncodeToString(c[:])
		}
		m := make(map[string]json.RawMessage, len(tmpl)+2)
		for k, v := range tmpl {
			m[k] = v
		}
		m["layer_id"], _ = json.Marshal(chain)
		if parent != "" {
			m["parent"], _ = json.Marshal(parent)
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil
		}
		id := sha256.Sum256(b)
		out[hex.EncodeToString(id[:])] = d
		parent = "sha256:" + hex.EncodeToString(id[:])
	}
	return out
}

// compressLayer gzips r into path and returns the blob and the digest of
// the uncompressed bytes (the diff id).
func compressLayer(r io.Reader, path string, level int) (blob, v1.Hash, error) {
	dh := sha256.New()
	b, err := compressTo(r, path, level, dh)
	if err != nil {
		return blob{}, v1.Hash{}, err
	}
	return b, sum(dh), nil
}

// compressTo gzips r into path (klauspost gzip at level, default header:
// no name, no time, so the same bytes give the same blob everywhere),
// writing r's bytes to dh too when not nil, and returns the blob with the
// digest and size of the compressed bytes.
func compressTo(r io.Reader, path string, level int, dh hash.Hash) (blob, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return blob{}, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	ch := sha256.New()
	cn := &countWriter{}
	gz, err := gzip.NewWriterLevel(io.MultiWriter(bw, ch, cn), level)
	if err != nil {
		return blob{}, err
	}
	// Through a MultiWriter either way: io.Copy then writes the same
	// chunks into gz whether dh is set or not.
	w := io.MultiWriter(gz)
	if dh != nil {
		w = io.MultiWriter(gz, dh)
	}
	if _, err := io.Copy(w, r); err != nil {
		return blob{}, err
	}
	if err := gz.Close(); err != nil {
		return blob{}, err
	}
	if err := bw.Flush(); err != nil {
		return blob{}, err
	}
	if err := f.Close(); err != nil {
		return blob{}, err
	}
	return blob{digest: sum(ch), size: cn.n, path: path}, nil
}

func sum(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// cacheEntry is what the blob cache keeps per image id: enough to write the
// manifest without reading the layers. It holds no credential.
type cacheEntry struct {
	Compressor string        `json:"compressor"`
	ID         string        `json:"id"`
	Config     []byte        `json:"config"`
	Layers     []cachedLayer `json:"layers"`
}

type cachedLayer struct {
	DiffID string `json:"diffID"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	// In lists repositories (REGISTRY/REPOSITORY) this machine pushed the
	// blob to, newest first (per-layer cache only): a push into another
	// repository of the same registry mounts it from one of them.
	In []string `json:"in,omitempty"`
}

func (s *source) cachePath() string {
	if s.cacheDir == "" {
		return ""
	}
	return filepath.Join(s.cacheDir, s.id.Hex+".json")
}

func (s *source) loadCache() (*cacheEntry, bool) {
	p := s.cachePath()
	if p == "" {
		return nil, false
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, false
	}
	var e cacheEntry
	if json.Unmarshal(data, &e) != nil || e.Compressor != compressor(s.level) || e.ID != s.id.String() || len(e.Layers) != len(s.diffIDs) {
		return nil, false
	}
	if got := sha256.Sum256(e.Config); hex.EncodeToString(got[:]) != s.id.Hex {
		return nil, false
	}
	for i, l := range e.Layers {
		if l.DiffID != s.diffIDs[i].String() {
			return nil, false
		}
	}
	return &e, true
}

func (s *source) storeCache(e *cacheEntry) {
	p := s.cachePath()
	if p == "" {
		return
	}
	writeJSON(p, ".entry-*", e)
}

// writeJSON writes v as JSON to path, atomically (a temporary file named
// after pattern, renamed), creating its folder; a cache that cannot be
// written is no cache, so errors are dropped.
func writeJSON(path, pattern string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	if os.MkdirAll(filepath.Dir(path), 0o700) != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), pattern)
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), path) != nil {
		_ = os.Remove(tmp.Name())
	}
}

// Options say how Open reads an image.
type Options struct {
	Level    int    // gzip level of the layers (gzip.DefaultCompression: -1)
	CacheDir string // the digest cache ("": none)
	// Known, when not nil, is asked (before any layer is read) which
	// layers the registry already holds: those are not read or compressed,
	// and an image whose config and every layer the registry knows is not
	// read at all.
	Known func(diffIDs []v1.Hash) Known
	// Sequential compresses each layer as it is read from the export, one
	// after another, never spooling one for a worker (to compare the two).
	Sequential bool
}

// Open inspects ref in the engine and returns it as an Image: from the
// digest cache when it knows the image id, else from what o.Known says and
// by reading the rest out of the engine now.
func Open(ctx context.Context, eng Engine, ref string, o Options) (*Image, error) {
	mode := defaultSaveMode()
	mode.sequential = o.Sequential
	return open(ctx, eng, ref, o.Level, o.CacheDir, o.Known, mode)
}

// open is Open with save's mode (tests set every part of it).
func open(ctx context.Context, eng Engine, ref string, level int, cacheDir string, known func([]v1.Hash) Known, mode saveMode) (*Image, error) {
	src, err := inspect(ctx, eng, ref)
	if err != nil {
		return nil, err
	}
	src.level, src.cacheDir, src.mode = level, cacheDir, mode
	img := &Image{src: src, From: map[v1.Hash]string{}, Mounts: map[v1.Hash]name.Repository{}}
	entry, ok := src.loadCache()
	if ok {
		for _, d := range src.diffIDs {
			img.From[d] = "cache"
		}
	} else {
		var k Known
		if known != nil {
			k = known(src.diffIDs)
		}
		if entry, err = img.learnOrRead(k); err != nil {
			return nil, err
		}
	}
	if err := img.setManifest(entry); err != nil {
		src.close()
		return nil, err
	}
	return img, nil
}

// inspect asks the engine for ref's image id and layers (diff ids).
func inspect(ctx context.Context, eng Engine, ref string) (*source, error) {
	ins, err := eng.ImageInspect(ctx, ref)
	if err != nil {
		return nil, engineErr(fmt.Sprintf("inspecting image %s", ref), err)
	}
	id, err := v1.NewHash(ins.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s: engine returned id %q: %w", ref, ins.ID, err)
	}
	src := &source{ctx: ctx, eng: eng, ref: ref, id: id}
	for _, d := range ins.RootFS.Layers {
		h, err := v1.NewHash(d)
		if err != nil {
			return nil, fmt.Errorf("image %s: engine returned layer %q: %w", ref, d, err)
		}
		src.diffIDs = append(src.diffIDs, h)
	}
	return src, nil
}

// learnOrRead makes the cache entry of an image the blob cache does not
// know: the layers (and config) k knows from the registry are taken from
// there; the rest is read out of the engine, unless there is nothing left
// to read. What this compressor produced goes into the caches.
func (img *Image) learnOrRead(k Known) (*cacheEntry, error) {
	src := img.src
	all := len(src.diffIDs) > 0
	for _, d := range src.diffIDs {
		if _, ok := k.Layers[d]; !ok {
			all = false
		}
	}
	cfg, haveCfg := k.Configs[src.id]
	if !all || !haveCfg {
		src.skip = map[v1.Hash]bool{}
		for d := range k.Layers {
			src.skip[d] = true
		}
		if err := src.materialize(); err != nil {
			src.close()
			return nil, err
		}
		cfg = src.config
	}
	entry := &cacheEntry{Compressor: compressor(src.level), ID: src.id.String(), Config: cfg}
	fromRegistry := false
	for _, d := range src.diffIDs {
		if kl, ok := k.Layers[d]; ok {
			img.From[d] = kl.From
			if kl.Mount {
				img.Mounts[kl.Digest] = kl.In
			}
			fromRegistry = fromRegistry || kl.From != "cache"
			entry.Layers = append(entry.Layers, cachedLayer{DiffID: d.String(), Digest: kl.Digest.String(), Size: kl.Size})
			continue
		}
		b := src.blobs[d]
		l := cachedLayer{DiffID: d.String(), Digest: b.digest.String(), Size: b.size}
		entry.Layers = append(entry.Layers, l)
		// Only what this compressor produced goes into the cache: a digest
		// learnt from the registry may come from another tool's gzip, which
		// a push into another repository could not reproduce.
		storeLayerCache(src.cacheDir, src.level, l)
	}
	if !fromRegistry {
		src.storeCache(entry)
	}
	img.Present = all && haveCfg && len(img.Mounts) == 0 && k.Target != "" && k.ConfigIn[src.id] == k.Target
	return entry, nil
}

// setManifest sets the image's config, layers and manifest from entry.
func (img *Image) setManifest(entry *cacheEntry) error {
	img.config = entry.Config
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.DockerManifestSchema2,
		Config:        v1.Descriptor{MediaType: types.DockerConfigJSON, Size: int64(len(entry.Config)), Digest: img.src.id},
	}
	for _, l := range entry.Layers {
		dg, err := v1.NewHash(l.Digest)
		if err != nil {
			return err
		}
		did, _ := v1.NewHash(l.DiffID)
		img.layers = append(img.layers, &blobLayer{img: img, diffID: did, digest: dg, size: l.Size})
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.DockerLayer, Size: l.Size, Digest: dg})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	img.manifest = raw
	img.digest = sum(hashOf(raw))
	return nil
}

func hashOf(b []byte) hash.Hash {
	h := sha256.New()
	_, _ = io.Copy(h, bytes.NewReader(b))
	return h
}

// layerCachePath is where the per-layer cache keeps one diff id's
// compressed digest, so another image sharing the layer knows it too.
func layerCachePath(cacheDir string, level int, diffID v1.Hash) string {
	return filepath.Join(cacheDir, "layers", compressor(level), diffID.Hex+".json")
}

// CachedLayer is what this machine's per-layer cache (in cacheDir, for
// the gzip level) knows of diff id: the compressed digest and size.
func CachedLayer(cacheDir string, level int, diffID v1.Hash) (KnownLayer, bool) {
	l, ok := readLayerCache(cacheDir, level, diffID)
	if !ok {
		return KnownLayer{}, false
	}
	dg, err := v1.NewHash(l.Digest)
	if err != nil {
		return KnownLayer{}, false
	}
	return KnownLayer{Digest: dg, Size: l.Size, From: "cache"}, true
}

// LayerHomes are the repositories (REGISTRY/REPOSITORY, newest first) this
// machine pushed the layer (diff id, as the blob digest) to, from the
// per-layer cache.
func LayerHomes(cacheDir string, level int, diffID, digest v1.Hash) []string {
	if c, ok := readLayerCache(cacheDir, level, diffID); ok && c.Digest == digest.String() {
		return c.In
	}
	return nil
}

// NoteLayerHome records in the per-layer cache that repo holds the layer.
func NoteLayerHome(cacheDir string, level int, diffID, digest v1.Hash, size int64, repo string) {
	l := cachedLayer{DiffID: diffID.String(), Digest: digest.String(), Size: size, In: []string{repo}}
	if old, ok := readLayerCache(cacheDir, level, diffID); ok && old.Digest == l.Digest {
		for _, r := range old.In {
			if r != repo && len(l.In) < 8 {
				l.In = append(l.In, r)
			}
		}
	}
	storeLayerCache(cacheDir, level, l)
}

func readLayerCache(cacheDir string, level int, diffID v1.Hash) (cachedLayer, bool) {
	if cacheDir == "" {
		return cachedLayer{}, false
	}
	data, err := os.ReadFile(layerCachePath(cacheDir, level, diffID))
	if err != nil {
		return cachedLayer{}, false
	}
	var l cachedLayer
	if json.Unmarshal(data, &l) != nil || l.DiffID != diffID.String() {
		return cachedLayer{}, false
	}
	return l, true
}

func storeLayerCache(cacheDir string, level int, l cachedLayer) {
	if cacheDir == "" {
		return
	}
	d, err := v1.NewHash(l.DiffID)
	if err != nil {
		return
	}
	if len(l.In) == 0 {
		if old, ok := readLayerCache(cacheDir, level, d); ok && old.Digest == l.Digest {
			l.In = old.In
		}
	}
	writeJSON(layerCachePath(cacheDir, level, d), ".layer-*", l)
}
