package push

import (
	"archive/tar"
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
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/moby/moby/client"

	"github.com/hackforla/ctjdeploy/internal/safego"
)

// engineAPI is the part of the Docker engine API the pusher uses.
type engineAPI interface {
	ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImageSave(ctx context.Context, images []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error)
}

// compressor names the gzip implementation and level: a layer's compressed
// digest depends on both, so cached digests are only valid for the same one.
func compressor(level int) string { return fmt.Sprintf("klauspost-gzip-1.19-l%d", level) }

// localImage is an image of the engine's store as a v1.Image with gzip
// layers. Its manifest is computed without reading any layer when the blob
// cache knows the image; the layers are then read from the engine (one
// `docker save`, compressed once into a private temporary folder) only if
// the registry lacks one of them.
type localImage struct {
	src      *source
	config   []byte
	layers   []*blobLayer
	manifest []byte
	digest   v1.Hash
	uploaded atomic.Int64       // compressed layer bytes read by the uploader
	from     map[v1.Hash]string // by diff id: where a layer's digest was known from without reading it
	// mounts are the layers (by digest) the target repository lacks and
	// another repository of the registry holds: mounted from there.
	mounts map[v1.Hash]name.Repository
	// present says the target repository was seen (this run, by HEAD or by
	// reading it there) to hold every layer and the config: a push writes
	// the manifest only.
	present bool
}

var _ partial.CompressedImageCore = (*localImage)(nil)

func (i *localImage) RawConfigFile() ([]byte, error)      { return i.config, nil }
func (i *localImage) MediaType() (types.MediaType, error) { return types.DockerManifestSchema2, nil }
func (i *localImage) RawManifest() ([]byte, error)        { return i.manifest, nil }
func (i *localImage) layerBytes() (total int64) {
	for _, l := range i.layers {
		total += l.size
	}
	return total
}

func (i *localImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range i.layers {
		if l.digest == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("image has no layer %s", h)
}

// image returns the full v1.Image.
func (i *localImage) image() (v1.Image, error) { return partial.CompressedToImage(i) }

// blobLayer is one gzip layer of a localImage.
type blobLayer struct {
	img    *localImage
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
	eng      engineAPI
	ref      string
	id       v1.Hash
	diffIDs  []v1.Hash
	level    int
	cacheDir string

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

// gzipSlots bounds the spooled layers gzip-compressed at once in this
// process, for every image pushed in parallel together: one per CPU (each
// image's reader compresses its last layer besides, without a slot).
var gzipSlots = make(chan struct{}, runtime.NumCPU())

// spoolInMemory is the memory the process holds at most for layers
// waiting for a compressor (a 4-CPU CI runner has 16 GB); a layer that
// does not fit in what is left waits in a temporary file instead, which
// costs a write and a read of the layer more.
var spoolInMemory int64 = 256 << 20

var spoolMem atomic.Int64 // bytes of layers spooled in memory now

// reserveMem takes n bytes of spoolInMemory, or says there are not enough.
func reserveMem(n int64) bool {
	for {
		cur := spoolMem.Load()
		if cur+n > spoolInMemory {
			return false
		}
		if spoolMem.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// sequentialCompress makes save compress each layer as it is read from the
// stream, one after another (as before the spool): tests compare the two.
var sequentialCompress = false

// save streams `docker save` once: each layer the registry does not already
// hold is hashed (diff id) and gzip-compressed into a private temporary
// folder (hashing the compressed bytes as they are written), the config is
// kept in memory. Layers in skip are passed by without hashing or
// compressing them, and the stream is closed as soon as the config and every
// layer still needed have been read.
//
// On a machine of spoolMinCPUs or more, the stream is read sequentially
// and does not wait for gzip: a needed layer that gzip shrinks (its first
// 256 KiB by a tenth or more: then gzip is slower than the stream; random
// or already compressed data it stores about as fast as it comes) is
// spooled raw (to memory while spoolInMemory has room, else to a temporary
// file), its diff id hashed on the way, and compressed by a worker (at most
// gzipSlots at once, shared by the images of the process) while the stream
// goes on to the next entry. Every other layer, and the last needed one
// (nothing is left to overlap with it), is compressed straight from the
// stream, as every layer is on smaller machines. Each layer goes through
// compressTo with the same bytes whichever way it came, so its compressed
// digest is the same (TestParallelCompressSameBytes).
//
// The Docker Engine API has no per-layer export: the engine writes the whole
// image, so layers passed by still cross the socket (counted in streamed) up
// to the last entry needed; only read counts bytes hashed and compressed.
//
// Two save formats are understood: the OCI layout of Docker 25 and newer
// (blobs/sha256/<diff id> for layers, blobs/sha256/<image id> for the
// config) and the legacy one of older engines (<v1 id>/layer.tar,
// <image id>.json), whose v1 ids are worked out from the first <v1 id>/json
// entry (see legacyIDs) so that known layers there are passed by too.
func (s *source) save() (err error) {
	dir, err := os.MkdirTemp("", "ctjdeploy-push-")
	if err != nil {
		return err
	}
	s.dir = dir
	s.blobs = map[v1.Hash]blob{}
	want := map[v1.Hash]bool{}
	need := map[v1.Hash]bool{} // layers to read: wanted and not skipped
	for _, d := range s.diffIDs {
		want[d] = true
		if !s.skip[d] {
			need[d] = true
		}
	}
	// Workers compressing spooled layers: every return waits for them
	// (after cancelling them on an error), so that nothing writes into dir
	// once save has returned and close may remove it.
	ctx, cancel := context.WithCancel(s.ctx)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex // blobs, werr
		werr error
	)
	defer wg.Wait()
	defer cancel()
	fail := func(err error) {
		mu.Lock()
		if werr == nil {
			werr = err
		}
		mu.Unlock()
		cancel()
	}

	rc, err := s.eng.ImageSave(s.ctx, []string{s.ref})
	if err != nil {
		return engineErr(fmt.Sprintf("reading image %s from the engine (docker save)", s.ref), err)
	}
	defer rc.Close()
	es := &engineStream{r: rc}
	defer func() {
		// A stream that broke off (the engine stopped or dropped the
		// connection) shows as a truncated tar or gzip input ("unexpected
		// EOF") wherever it was being read: say it was the engine.
		if err != nil && (es.err != nil || errors.Is(err, io.ErrUnexpectedEOF)) && s.ctx.Err() == nil {
			err = fmt.Errorf("reading image %s (docker save) from the Docker engine at %s broke off: %w; the engine stopped, restarted or dropped the connection mid-export: check it (`docker info`, the engine's log) and deploy again", s.ref, engineHost(), err)
		}
	}()
	tr := tar.NewReader(&countingReader{r: es, n: &s.streamed})
	var legacy map[string]v1.Hash // v1 id (legacy dir name) -> diff id
	seen := map[v1.Hash]bool{}    // needed layers read from the stream (being compressed or done)
	n := 0
	done := func() bool {
		if s.config == nil {
			return false
		}
		for d := range need {
			if !seen[d] {
				return false
			}
		}
		return true
	}
	// inline compresses a layer straight from the stream (no spool) into
	// path and keeps it if it is one of the needed layers not seen yet.
	inline := func(r io.Reader, path string) error {
		b, diffID, err := compressLayer(r, path, s.level)
		if err != nil {
			return fmt.Errorf("compressing a layer of %s: %w", s.ref, err)
		}
		if !want[diffID] || seen[diffID] {
			_ = os.Remove(b.path)
			return nil
		}
		seen[diffID] = true
		mu.Lock()
		s.blobs[diffID] = b
		mu.Unlock()
		return nil
	}
	for !done() {
		mu.Lock()
		e := werr
		mu.Unlock()
		if e != nil {
			return e
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading docker save of %s: %w", s.ref, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := h.Name
		dirName, base := filepath.Split(name)
		dirName = strings.TrimSuffix(dirName, "/")
		switch {
		case name == s.id.Hex+".json" || name == "blobs/sha256/"+s.id.Hex:
			cfg, err := io.ReadAll(tr)
			if err != nil {
				return fmt.Errorf("reading docker save of %s: %w", s.ref, err)
			}
			s.config = cfg
		case base == "json" && legacy == nil && len(s.skip) > 0 && !strings.Contains(dirName, "/"):
			// A legacy layer's v1 config: small, read whole.
			if raw, err := io.ReadAll(io.LimitReader(tr, 1<<20)); err == nil {
				legacy = legacyIDs(raw, dirName, s.diffIDs)
			}
		case base == "layer.tar" || strings.HasPrefix(name, "blobs/sha256/") && want[v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(name, "blobs/sha256/")}]:
			known := v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(name, "blobs/sha256/")}
			if base == "layer.tar" {
				known = legacy[dirName]
			}
			if s.skip[known] {
				continue // the registry holds it: tar.Reader passes it by
			}
			n++
			path := filepath.Join(dir, fmt.Sprintf("layer-%d.gz", n))
			r := &countingReader{r: io.NopCloser(tr), n: &s.read}
			if sequentialCompress || len(seen) >= len(need)-1 {
				// The last layer still needed (or, in a legacy save without
				// v1 ids, what should be): straight from the stream, by the
				// reader itself. It takes no slot: waiting for one while the
				// workers hold them all would stall the stream (and with it
				// the engine), which is what the spool is there to avoid.
				if err := inline(r, path); err != nil {
					return err
				}
				continue
			}
			head, err := io.ReadAll(io.LimitReader(r, trialBytes))
			if err != nil {
				return fmt.Errorf("reading docker save of %s: %w", s.ref, err)
			}
			lr := io.MultiReader(bytes.NewReader(head), r)
			if !forceSpool && (runtime.NumCPU() < spoolMinCPUs || !shrinks(head, s.level)) {
				// gzip stores it (random, already compressed data) about as
				// fast as the stream comes: a spool would only add copies.
				if err := inline(lr, path); err != nil {
					return err
				}
				continue
			}
			sp, diffID, err := spool(lr, h.Size, filepath.Join(dir, fmt.Sprintf("layer-%d.tar", n)))
			if err != nil {
				return fmt.Errorf("reading a layer of %s from docker save into %s: %w", s.ref, dir, err)
			}
			if !want[diffID] || seen[diffID] {
				sp.remove()
				continue
			}
			seen[diffID] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer sp.remove()
				defer safego.Recover(fmt.Sprintf("compressing layer %s of %s", diffID, s.ref), fail)
				if err := acquire(ctx); err != nil {
					fail(fmt.Errorf("compressing layer %s of %s: %w", diffID, s.ref, err))
					return
				}
				defer func() { <-gzipSlots }()
				rd, err := sp.open()
				if err != nil {
					fail(fmt.Errorf("compressing layer %s of %s: %w", diffID, s.ref, err))
					return
				}
				defer rd.Close()
				b, err := compressTo(&ctxReader{ctx: ctx, r: rd}, path, s.level, nil)
				if err != nil {
					_ = os.Remove(path)
					fail(fmt.Errorf("compressing layer %s of %s: %w", diffID, s.ref, err))
					return
				}
				mu.Lock()
				s.blobs[diffID] = b
				mu.Unlock()
			}()
		}
	}
	_ = rc.Close() // the engine may stop writing: every entry needed is read
	wg.Wait()
	if werr != nil {
		return werr
	}
	if err := s.ctx.Err(); err != nil {
		return fmt.Errorf("reading docker save of %s: %w", s.ref, err)
	}
	if s.config == nil {
		return fmt.Errorf("docker save of %s has no config %s", s.ref, s.id)
	}
	if got := sha256.Sum256(s.config); hex.EncodeToString(got[:]) != s.id.Hex {
		return fmt.Errorf("docker save of %s: config digest is not the image id %s", s.ref, s.id)
	}
	for d := range need {
		if _, ok := s.blobs[d]; !ok {
			return fmt.Errorf("docker save of %s has no layer %s", s.ref, d)
		}
	}
	return nil
}

// trialBytes is how much of a layer shrinks looks at.
const trialBytes = 256 << 10

// shrinks says whether gzip at level makes head (a layer's first bytes)
// notably smaller: then it costs more CPU than reading the stream, and the
// layer is worth spooling for a worker.
func shrinks(head []byte, level int) bool {
	cn := &countWriter{}
	gz, err := gzip.NewWriterLevel(cn, level)
	if err != nil {
		return true
	}
	_, _ = gz.Write(head)
	_ = gz.Close()
	return cn.n < int64(len(head))*9/10
}

// forceSpool makes every layer but the last spooled, compressible or not,
// on any machine (tests of the spool).
var forceSpool = false

// spoolMinCPUs: below it, no layer is spooled. On the 2-CPU bench machine
// (bench/README.md) dockerd's export and the reader's gzip already take
// both CPUs, and spooling measured slower than compressing from the stream,
// for random and for compressible layers alike; a 4-CPU CI runner has CPUs
// to spare for the workers (not measured here).
const spoolMinCPUs = 4

// acquire takes one of gzipSlots, or fails when ctx ends first.
func acquire(ctx context.Context) error {
	select {
	case gzipSlots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// spooled is a layer's raw tar waiting for a compressor: in memory or in a
// temporary file.
type spooled struct {
	mem      []byte
	reserved int64 // of spoolInMemory
	path     string
}

func (sp spooled) open() (io.ReadCloser, error) {
	if sp.path == "" {
		return io.NopCloser(bytes.NewReader(sp.mem)), nil
	}
	return os.Open(sp.path)
}

func (sp spooled) remove() {
	if sp.path != "" {
		_ = os.Remove(sp.path)
	}
	spoolMem.Add(-sp.reserved)
}

// spool copies a layer of size bytes (the tar header's) out of r, to
// memory while spoolInMemory has room, else to path, and returns its diff
// id. remove gives back what it took.
func spool(r io.Reader, size int64, path string) (spooled, v1.Hash, error) {
	dh := sha256.New()
	if reserveMem(size) {
		sp := spooled{reserved: size}
		buf := bytes.NewBuffer(make([]byte, 0, size))
		if _, err := io.Copy(io.MultiWriter(buf, dh), r); err != nil {
			sp.remove()
			return spooled{}, v1.Hash{}, err
		}
		sp.mem = buf.Bytes()
		return sp, sum(dh), nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return spooled{}, v1.Hash{}, err
	}
	sp := spooled{path: path}
	bw := bufio.NewWriterSize(f, 1<<20)
	_, err = io.Copy(io.MultiWriter(bw, dh), r)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		sp.remove()
		return spooled{}, v1.Hash{}, err
	}
	return sp, sum(dh), nil
}

// ctxReader ends a read with ctx's error once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
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
	data, err := json.Marshal(e)
	if err != nil {
		return
	}
	if os.MkdirAll(s.cacheDir, 0o700) != nil {
		return
	}
	tmp, err := os.CreateTemp(s.cacheDir, ".entry-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), p) != nil {
		_ = os.Remove(tmp.Name())
	}
}

// openLocal inspects ref in the engine and returns it as a localImage: from
// the blob cache when it knows the image id, else by reading it out of the
// engine now.
//
// known, when not nil, is asked (before any layer is read) which layers the
// registry already holds: those are not read or compressed, and an image
// whose config and every layer the registry knows is not read at all.
func openLocal(ctx context.Context, eng engineAPI, ref string, level int, cacheDir string, known func([]v1.Hash) knowledge) (*localImage, error) {
	ins, err := eng.ImageInspect(ctx, ref)
	if err != nil {
		return nil, engineErr(fmt.Sprintf("inspecting image %s", ref), err)
	}
	id, err := v1.NewHash(ins.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s: engine returned id %q: %w", ref, ins.ID, err)
	}
	src := &source{ctx: ctx, eng: eng, ref: ref, id: id, level: level, cacheDir: cacheDir}
	for _, d := range ins.RootFS.Layers {
		h, err := v1.NewHash(d)
		if err != nil {
			return nil, fmt.Errorf("image %s: engine returned layer %q: %w", ref, d, err)
		}
		src.diffIDs = append(src.diffIDs, h)
	}
	img := &localImage{src: src, from: map[v1.Hash]string{}, mounts: map[v1.Hash]name.Repository{}}
	entry, ok := src.loadCache()
	if ok {
		for _, d := range src.diffIDs {
			img.from[d] = "cache"
		}
	} else {
		var k knowledge
		if known != nil {
			k = known(src.diffIDs)
		}
		all := len(src.diffIDs) > 0
		for _, d := range src.diffIDs {
			if _, ok := k.layers[d]; !ok {
				all = false
			}
		}
		cfg, haveCfg := k.configs[id]
		if !all || !haveCfg {
			src.skip = map[v1.Hash]bool{}
			for d := range k.layers {
				src.skip[d] = true
			}
			if err := src.materialize(); err != nil {
				src.close()
				return nil, err
			}
			cfg = src.config
		}
		entry = &cacheEntry{Compressor: compressor(level), ID: id.String(), Config: cfg}
		fromRegistry := false
		for _, d := range src.diffIDs {
			if kl, ok := k.layers[d]; ok {
				img.from[d] = kl.from
				if kl.mount {
					img.mounts[kl.digest] = kl.in
				}
				fromRegistry = fromRegistry || kl.from != "cache"
				entry.Layers = append(entry.Layers, cachedLayer{DiffID: d.String(), Digest: kl.digest.String(), Size: kl.size})
				continue
			}
			b := src.blobs[d]
			l := cachedLayer{DiffID: d.String(), Digest: b.digest.String(), Size: b.size}
			entry.Layers = append(entry.Layers, l)
			// Only what this compressor produced goes into the cache: a
			// digest learnt from the registry may come from another tool's
			// gzip, which a push into another repository could not
			// reproduce.
			storeLayerCache(cacheDir, level, l)
		}
		if !fromRegistry {
			src.storeCache(entry)
		}
		img.present = all && haveCfg && len(img.mounts) == 0 && k.target != "" && k.configIn[id] == k.target
	}
	img.config = entry.Config
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.DockerManifestSchema2,
		Config:        v1.Descriptor{MediaType: types.DockerConfigJSON, Size: int64(len(entry.Config)), Digest: id},
	}
	for _, l := range entry.Layers {
		dg, err := v1.NewHash(l.Digest)
		if err != nil {
			src.close()
			return nil, err
		}
		did, _ := v1.NewHash(l.DiffID)
		img.layers = append(img.layers, &blobLayer{img: img, diffID: did, digest: dg, size: l.Size})
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.DockerLayer, Size: l.Size, Digest: dg})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		src.close()
		return nil, err
	}
	img.manifest = raw
	img.digest = sum(hashOf(raw))
	return img, nil
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

func loadLayerCache(cacheDir string, diffID v1.Hash, level int) (knownLayer, bool) {
	if cacheDir == "" {
		return knownLayer{}, false
	}
	data, err := os.ReadFile(layerCachePath(cacheDir, level, diffID))
	if err != nil {
		return knownLayer{}, false
	}
	var l cachedLayer
	if json.Unmarshal(data, &l) != nil || l.DiffID != diffID.String() {
		return knownLayer{}, false
	}
	dg, err := v1.NewHash(l.Digest)
	if err != nil {
		return knownLayer{}, false
	}
	return knownLayer{digest: dg, size: l.Size, from: "cache"}, true
}

// noteLayerHome records in the per-layer cache that repo holds the layer.
func noteLayerHome(cacheDir string, level int, diffID, digest v1.Hash, size int64, repo string) {
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
	p := layerCachePath(cacheDir, level, d)
	if os.MkdirAll(filepath.Dir(p), 0o700) != nil {
		return
	}
	data, err := json.Marshal(l)
	if err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".layer-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), p) != nil {
		_ = os.Remove(tmp.Name())
	}
}
