package engineimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"

	"github.com/hackforla/ctjdeploy/internal/safego"
)

// gzipSlots bounds the spooled layers gzip-compressed at once in this
// process, for every image pushed in parallel together: one per CPU (each
// image's reader compresses its last layer besides, without a slot).
var gzipSlots = make(chan struct{}, runtime.NumCPU())

// memPool is memory for layers waiting for a compressor: limit bytes at
// most, used now.
type memPool struct {
	limit int64
	used  atomic.Int64
}

// processSpool is the memory the process holds at most for spooled layers
// (a 4-CPU CI runner has 16 GB), shared by every image pushed; a layer that
// does not fit in what is left waits in a temporary file instead, which
// costs a write and a read of the layer more.
var processSpool = &memPool{limit: 256 << 20}

// reserve takes n bytes of the pool, or says there are not enough.
func (m *memPool) reserve(n int64) bool {
	for {
		cur := m.used.Load()
		if cur+n > m.limit {
			return false
		}
		if m.used.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// saveMode is how save compresses the layers it reads: the process's
// (defaultSaveMode) outside tests.
type saveMode struct {
	// sequential compresses each layer as it is read from the stream, one
	// after another (as before the spool): tests compare the two ways.
	sequential bool
	// forceSpool spools every layer but the last, compressible or not, on
	// any machine (tests of the spool).
	forceSpool bool
	mem        *memPool // where spooled layers are held in memory
}

func defaultSaveMode() saveMode { return saveMode{mem: processSpool} }

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
// spooled raw (to memory while the mode's memPool has room, else to a
// temporary file), its diff id hashed on the way, and compressed by a worker
// (at most gzipSlots at once, shared by the images of the process) while the
// stream goes on to the next entry. Every other layer, and the last needed
// one (nothing is left to overlap with it), is compressed straight from the
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
	r := newSaveRun(s, dir)
	// Every return waits for the workers (after cancelling them on an
	// error), so that nothing writes into dir once save has returned and
	// close may remove it.
	defer r.stop()
	rc, err := s.eng.ImageSave(s.ctx, []string{s.ref})
	if err != nil {
		return engineErr(fmt.Sprintf("reading image %s from the engine (docker save)", s.ref), err)
	}
	defer rc.Close()
	es := &engineStream{r: rc}
	defer func() { err = s.brokeOff(err, es) }()
	if err := r.read(tar.NewReader(&countingReader{r: es, n: &s.streamed})); err != nil {
		return err
	}
	_ = rc.Close() // the engine may stop writing: every entry needed is read
	if err := r.g.Wait(); err != nil {
		return err
	}
	return s.check(r.need)
}

// brokeOff names the engine in err when the save stream broke off (the
// engine stopped or dropped the connection): that shows as a truncated tar
// or gzip input ("unexpected EOF") wherever it was being read.
func (s *source) brokeOff(err error, es *engineStream) error {
	if err != nil && (es.err != nil || errors.Is(err, io.ErrUnexpectedEOF)) && s.ctx.Err() == nil {
		return fmt.Errorf("reading image %s (docker save) from the Docker engine at %s broke off: %w; the engine stopped, restarted or dropped the connection mid-export: check it (`docker info`, the engine's log) and deploy again", s.ref, engineHost(), err)
	}
	return err
}

// check says whether save read what the image needs: the config, whose
// digest is the image id, and every needed layer.
func (s *source) check(need map[v1.Hash]bool) error {
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

// saveRun is one save's reading of the stream: which layers it wants and
// needs, which it has seen, and the workers compressing spooled ones.
type saveRun struct {
	s      *source
	dir    string
	want   map[v1.Hash]bool   // the image's layers
	need   map[v1.Hash]bool   // layers to read: wanted and not skipped
	seen   map[v1.Hash]bool   // needed layers read from the stream (being compressed or done)
	legacy map[string]v1.Hash // v1 id (legacy dir name) -> diff id
	n      int                // layer entries read, for file names

	mu     sync.Mutex // s.blobs
	g      *errgroup.Group
	ctx    context.Context // the workers': ends on the first failure
	cancel context.CancelFunc
}

func newSaveRun(s *source, dir string) *saveRun {
	r := &saveRun{s: s, dir: dir, want: map[v1.Hash]bool{}, need: map[v1.Hash]bool{}, seen: map[v1.Hash]bool{}}
	for _, d := range s.diffIDs {
		r.want[d] = true
		if !s.skip[d] {
			r.need[d] = true
		}
	}
	ctx, cancel := context.WithCancel(s.ctx)
	r.g, r.ctx = errgroup.WithContext(ctx)
	r.cancel = cancel
	return r
}

// stop cancels the workers still running and waits for them.
func (r *saveRun) stop() {
	r.cancel()
	_ = r.g.Wait()
}

// done says whether the config and every needed layer have been read.
func (r *saveRun) done() bool {
	if r.s.config == nil {
		return false
	}
	for d := range r.need {
		if !r.seen[d] {
			return false
		}
	}
	return true
}

// failed is the first worker's error once the workers' context has ended
// (or the push's, when no worker failed).
func (r *saveRun) failed() error {
	if r.ctx.Err() == nil {
		return nil
	}
	if err := r.g.Wait(); err != nil {
		return err
	}
	return fmt.Errorf("reading docker save of %s: %w", r.s.ref, r.s.ctx.Err())
}

// read goes through the save stream's entries until everything needed is
// read, the stream ends, or a worker fails.
func (r *saveRun) read(tr *tar.Reader) error {
	for !r.done() {
		if err := r.failed(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading docker save of %s: %w", r.s.ref, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if err := r.entry(tr, h); err != nil {
			return err
		}
	}
	return nil
}

// entry reads one file of the save stream: the config, a legacy layer's v1
// config, or a layer; anything else is passed by.
func (r *saveRun) entry(tr io.Reader, h *tar.Header) error {
	s := r.s
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
	case base == "json" && r.legacy == nil && len(s.skip) > 0 && !strings.Contains(dirName, "/"):
		// A legacy layer's v1 config: small, read whole.
		if raw, err := io.ReadAll(io.LimitReader(tr, 1<<20)); err == nil {
			r.legacy = legacyIDs(raw, dirName, s.diffIDs)
		}
	case base == "layer.tar":
		return r.layer(tr, h.Size, r.legacy[dirName])
	case strings.HasPrefix(name, "blobs/sha256/"):
		if d := (v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(name, "blobs/sha256/")}); r.want[d] {
			return r.layer(tr, h.Size, d)
		}
	}
	return nil
}

// layer reads a layer entry of size bytes whose diff id is known (or zero
// in a legacy save without v1 ids): passed by when the registry holds it,
// else compressed from the stream or spooled for a worker.
func (r *saveRun) layer(tr io.Reader, size int64, known v1.Hash) error {
	s := r.s
	if s.skip[known] {
		return nil // the registry holds it: tar.Reader passes it by
	}
	r.n++
	path := filepath.Join(r.dir, fmt.Sprintf("layer-%d.gz", r.n))
	rd := &countingReader{r: io.NopCloser(tr), n: &s.read}
	if s.mode.sequential || len(r.seen) >= len(r.need)-1 {
		// The last layer still needed (or, in a legacy save without v1 ids,
		// what should be): straight from the stream, by the reader itself.
		// It takes no slot: waiting for one while the workers hold them all
		// would stall the stream (and with it the engine), which is what the
		// spool is there to avoid.
		return r.inline(rd, path)
	}
	head, err := io.ReadAll(io.LimitReader(rd, trialBytes))
	if err != nil {
		return fmt.Errorf("reading docker save of %s: %w", s.ref, err)
	}
	lr := io.MultiReader(bytes.NewReader(head), rd)
	if !s.mode.forceSpool && (runtime.NumCPU() < spoolMinCPUs || !shrinks(head, s.level)) {
		// gzip stores it (random, already compressed data) about as fast as
		// the stream comes: a spool would only add copies.
		return r.inline(lr, path)
	}
	sp, diffID, err := spool(lr, size, filepath.Join(r.dir, fmt.Sprintf("layer-%d.tar", r.n)), s.mode.mem)
	if err != nil {
		return fmt.Errorf("reading a layer of %s from docker save into %s: %w", s.ref, r.dir, err)
	}
	if !r.want[diffID] || r.seen[diffID] {
		sp.remove()
		return nil
	}
	r.seen[diffID] = true
	r.compress(sp, diffID, path)
	return nil
}

// inline compresses a layer straight from the stream (no spool) into path
// and keeps it if it is one of the needed layers not seen yet.
func (r *saveRun) inline(rd io.Reader, path string) error {
	b, diffID, err := compressLayer(rd, path, r.s.level)
	if err != nil {
		return fmt.Errorf("compressing a layer of %s: %w", r.s.ref, err)
	}
	if !r.want[diffID] || r.seen[diffID] {
		_ = os.Remove(b.path)
		return nil
	}
	r.seen[diffID] = true
	r.keep(diffID, b)
	return nil
}

func (r *saveRun) keep(diffID v1.Hash, b blob) {
	r.mu.Lock()
	r.s.blobs[diffID] = b
	r.mu.Unlock()
}

// compress has a worker compress the spooled layer into path once one of
// gzipSlots is free; the spool is removed either way.
func (r *saveRun) compress(sp spooled, diffID v1.Hash, path string) {
	what := fmt.Sprintf("compressing layer %s of %s", diffID, r.s.ref)
	r.g.Go(func() (err error) {
		defer sp.remove()
		defer safego.Recover(what, func(e error) { err = e })
		if err := acquire(r.ctx); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		defer func() { <-gzipSlots }()
		rd, err := sp.open()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		defer rd.Close()
		b, err := compressTo(&ctxReader{ctx: r.ctx, r: rd}, path, r.s.level, nil)
		if err != nil {
			_ = os.Remove(path)
			return fmt.Errorf("%s: %w", what, err)
		}
		r.keep(diffID, b)
		return nil
	})
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

// spooled is a layer's raw tar waiting for a compressor: in memory (taken
// from pool) or in a temporary file.
type spooled struct {
	mem      []byte
	pool     *memPool
	reserved int64 // of pool
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
	if sp.pool != nil {
		sp.pool.used.Add(-sp.reserved)
	}
}

// spool copies a layer of size bytes (the tar header's) out of r, to
// memory while pool has room, else to path, and returns its diff id.
// remove gives back what it took.
func spool(r io.Reader, size int64, path string, pool *memPool) (spooled, v1.Hash, error) {
	dh := sha256.New()
	if pool.reserve(size) {
		sp := spooled{pool: pool, reserved: size}
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
