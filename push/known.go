package push

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"

	"github.com/hackforla/ctjdeploy/internal/engineimage"
	"github.com/hackforla/ctjdeploy/internal/safego"
)

// learn fetches the manifest and config of each ref (tags or digests of
// repo; missing ones are skipped) and maps the config's rootfs.diff_ids to
// the manifest's gzip layer digests. Nothing is read from the engine.
func (p *ECR) learn(ctx context.Context, repo name.Repository, registry string, refs []string) engineimage.Known {
	k := engineimage.Known{Layers: map[v1.Hash]engineimage.KnownLayer{}, Configs: map[v1.Hash][]byte{}, ConfigIn: map[v1.Hash]string{}, Target: repo.String()}
	p.learnInto(ctx, k, repo, registry, refs)
	return k
}

// learnInto adds what refs of repo tell to k; what k knows already stays.
func (p *ECR) learnInto(ctx context.Context, k engineimage.Known, repo name.Repository, registry string, refs []string) {
	for _, r := range refs {
		var ref name.Reference
		if h, err := v1.NewHash(r); err == nil {
			ref = repo.Digest(h.String())
		} else {
			ref = repo.Tag(r)
		}
		desc, err := p.get(ctx, registry, ref)
		if err != nil || !desc.MediaType.IsImage() {
			continue
		}
		img, err := desc.Image()
		if err != nil {
			continue
		}
		m, err := img.Manifest()
		if err != nil {
			continue
		}
		raw, err := img.RawConfigFile()
		if err != nil {
			continue
		}
		cf, err := img.ConfigFile()
		if err != nil || len(cf.RootFS.DiffIDs) != len(m.Layers) {
			continue
		}
		if _, ok := k.Configs[m.Config.Digest]; !ok {
			k.Configs[m.Config.Digest] = raw
			k.ConfigIn[m.Config.Digest] = repo.String()
		}
		for i, l := range m.Layers {
			if l.MediaType != types.DockerLayer && l.MediaType != types.OCILayer {
				continue // only gzip layers line up with what this pusher writes
			}
			if _, ok := k.Layers[cf.RootFS.DiffIDs[i]]; !ok {
				k.Layers[cf.RootFS.DiffIDs[i]] = engineimage.KnownLayer{Digest: l.Digest, Size: l.Size, From: "registry " + ref.String(), In: repo}
			}
		}
	}
}

// digestsPresent HEADs each blob digest in the repository, at most p.jobs
// at once; the first failing HEAD's error is returned.
func (p *ECR) digestsPresent(ctx context.Context, repo name.Repository, registry string, ds []v1.Hash) ([]bool, error) {
	out := make([]bool, len(ds))
	if len(ds) == 0 {
		return out, nil
	}
	hc, err := p.client(ctx, repo, registry)
	if err != nil {
		return nil, err
	}
	var g errgroup.Group
	g.SetLimit(p.jobs)
	for i, d := range ds {
		g.Go(func() (err error) {
			defer safego.Recover("checking blob "+d.String(), func(e error) { err = e })
			out[i], err = headBlob(ctx, hc, repo, d.String())
			return err
		})
	}
	return out, g.Wait()
}

// knownPresent merges what the registry told with this run's pushes and
// this machine's per-layer digest cache, keeps only layers the target
// repository holds (HEAD) or, failing that, the repository they were learnt
// in within the same registry (then marked mount), and returns them by diff
// id.
func (p *ECR) knownPresent(ctx context.Context, repo name.Repository, registry string, diffIDs []v1.Hash, k engineimage.Known, level int) map[v1.Hash]engineimage.KnownLayer {
	cand := map[v1.Hash]engineimage.KnownLayer{}
	for _, d := range diffIDs {
		if l, ok := k.Layers[d]; ok {
			cand[d] = l
		} else if l, ok := p.home(d); ok {
			cand[d] = l
		} else if l, ok := engineimage.CachedLayer(p.cacheDir, level, d); ok {
			cand[d] = l
		}
	}
	var ids []v1.Hash
	var ds []v1.Hash
	for d, l := range cand {
		ids = append(ids, d)
		ds = append(ds, l.Digest)
	}
	present, err := p.digestsPresent(ctx, repo, registry, ds)
	out := map[v1.Hash]engineimage.KnownLayer{}
	if err != nil {
		return out // not knowing is safe: the layer is read and pushed as before
	}
	elsewhere := map[name.Repository][]v1.Hash{} // by the repository that may hold them
	for i, d := range ids {
		l := cand[d]
		switch {
		case present[i]:
			out[d] = l
		case l.In.RepositoryStr() != "" && l.In.RepositoryStr() != repo.RepositoryStr() && l.In.RegistryStr() == repo.RegistryStr():
			elsewhere[l.In] = append(elsewhere[l.In], d)
		}
	}
	for src, dids := range elsewhere {
		var ds []v1.Hash
		for _, d := range dids {
			ds = append(ds, cand[d].Digest)
		}
		present, err := p.digestsPresent(ctx, src, registry, ds)
		if err != nil {
			continue
		}
		for i, d := range dids {
			if present[i] {
				l := cand[d]
				l.Mount = true
				out[d] = l
			}
		}
	}
	return out
}

// remember records, for the rest of this run, that repo holds the layers of
// li: a later push of a layer into another repository mounts it from there.
// The per-layer cache on disk is written under the same lock, so that two
// images pushed at once do not lose each other's repositories there.
func (p *ECR) remember(repo name.Repository, li *engineimage.Image) {
	p.homes.mu.Lock()
	defer p.homes.mu.Unlock()
	if p.homes.m == nil {
		p.homes.m = map[v1.Hash]engineimage.KnownLayer{}
	}
	for _, l := range li.Blobs() {
		if _, ok := p.homes.m[l.DiffID]; !ok {
			p.homes.m[l.DiffID] = engineimage.KnownLayer{Digest: l.Digest, Size: l.Size, From: "pushed to " + repo.String(), In: repo}
		}
		engineimage.NoteLayerHome(p.cacheDir, p.level, l.DiffID, l.Digest, l.Size, repo.String())
	}
}

func (p *ECR) home(diffID v1.Hash) (engineimage.KnownLayer, bool) { return p.homes.get(diffID) }

// layerHomes are the repositories this run pushed each layer (by diff id)
// to: the first one each.
type layerHomes struct {
	mu sync.Mutex
	m  map[v1.Hash]engineimage.KnownLayer
}

func (h *layerHomes) get(diffID v1.Hash) (engineimage.KnownLayer, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.m[diffID]
	return l, ok
}

// sourceLayer is a layer read back from the repository that holds it: what
// a declined mount uploads instead, so the engine is not read for it.
type sourceLayer struct {
	ref    name.Digest
	diffID v1.Hash
	digest v1.Hash
	size   int64
	opts   []remote.Option
	count  func(io.ReadCloser) io.ReadCloser // counts the bytes uploaded
}

var _ v1.Layer = (*sourceLayer)(nil)

func (l *sourceLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *sourceLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *sourceLayer) Size() (int64, error)                { return l.size, nil }
func (l *sourceLayer) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }
func (l *sourceLayer) Compressed() (io.ReadCloser, error) {
	rl, err := remote.Layer(l.ref, l.opts...)
	if err != nil {
		return nil, err
	}
	rc, err := rl.Compressed()
	if err != nil {
		return nil, err
	}
	return l.count(rc), nil
}
func (l *sourceLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &gunzipReadCloser{Reader: zr, under: rc}, nil
}

type gunzipReadCloser struct {
	*gzip.Reader
	under io.Closer
}

func (g *gunzipReadCloser) Close() error {
	_ = g.Reader.Close()
	return g.under.Close()
}

// mountingImage is a local image whose layers held by another repository of
// the registry are handed to remote.Write as mountable: go-containerregistry
// then asks POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<other>, and
// uploads the layer read back from the other repository when the registry
// declines (202 Accepted, as distribution and ECR without BLOB_MOUNTING do).
//
// ECR ("Blob mounting in Amazon ECR", Amazon ECR User Guide): mounting works
// only within one registry (same account and region), between repositories
// with the same encryption type and keys, when the registry's BLOB_MOUNTING
// account setting is enabled, and needs ecr:GetDownloadUrlForLayer on the
// source repository; ECR mounts only when the POST carries the mount
// parameters. Any refusal (an error status too) makes go-containerregistry
// retry the upload without them.
type mountingImage struct {
	v1.Image
	layers []v1.Layer
	config name.Repository // where to try mounting the config blob from
}

func (m *mountingImage) Layers() ([]v1.Layer, error) { return m.layers, nil }

// ConfigLayer offers the config blob as mountable too (partial.ConfigLayer
// asks for it): an unchanged image in another repository shares its config;
// a declined mount uploads it from memory.
func (m *mountingImage) ConfigLayer() (v1.Layer, error) {
	cl, err := partial.ConfigLayer(m.Image)
	if err != nil {
		return nil, err
	}
	d, err := cl.Digest()
	if err != nil {
		return nil, err
	}
	return &remote.MountableLayer{Layer: cl, Reference: m.config.Digest(d.String())}, nil
}

// withMounts wraps img when some of li's layers are to be mounted.
func (p *ECR) withMounts(ctx context.Context, img v1.Image, li *engineimage.Image, registry string) (v1.Image, int, error) {
	if len(li.Mounts) == 0 {
		return img, 0, nil
	}
	ls, err := img.Layers()
	if err != nil {
		return nil, 0, err
	}
	out := make([]v1.Layer, len(ls))
	n := 0
	var cfgFrom name.Repository
	bs := li.Blobs()
	for i, l := range ls {
		out[i] = l
		bl := bs[i]
		src, ok := li.Mounts[bl.Digest]
		if !ok {
			continue
		}
		ref := src.Digest(bl.Digest.String())
		sl := &sourceLayer{ref: ref, diffID: bl.DiffID, digest: bl.Digest, size: bl.Size, opts: p.remoteOpts(ctx, registry), count: li.CountUploaded}
		out[i] = &remote.MountableLayer{Layer: sl, Reference: ref}
		if n == 0 {
			cfgFrom = src
		}
		n++
	}
	return &mountingImage{Image: img, layers: out, config: cfgFrom}, n, nil
}

// findMounts looks, for each layer of li the target repository lacks and
// no earlier step placed, in the repositories that may hold it: the one
// this run pushed it to, and t.MountFrom. Found ones go to li.Mounts. This
// serves images whose digests came from this machine's cache, which the
// registry's knowledge (engineimage.Open) never saw.
func (p *ECR) findMounts(ctx context.Context, repo name.Repository, t Target, li *engineimage.Image) {
	var others []name.Repository
	for _, o := range t.MountFrom {
		if r, err := repository(Target{Registry: t.Registry, Repository: o}); err == nil && r.String() != repo.String() {
			others = append(others, r)
		}
	}
	cands := map[int][]name.Repository{}
	var idx []int
	var ds []v1.Hash
	bs := li.Blobs()
	for i, l := range bs {
		if _, ok := li.Mounts[l.Digest]; ok {
			continue
		}
		var rs []name.Repository
		if h, ok := p.home(l.DiffID); ok && h.Digest == l.Digest && h.In.String() != repo.String() {
			rs = append(rs, h.In)
		}
		for _, in := range engineimage.LayerHomes(p.cacheDir, p.level, l.DiffID, l.Digest) {
			reg, path, _ := strings.Cut(in, "/")
			r, err := repository(Target{Registry: reg, Repository: path})
			if err == nil && r.RegistryStr() == repo.RegistryStr() && r.String() != repo.String() {
				rs = append(rs, r)
			}
		}
		rs = append(rs, others...)
		if len(rs) > 0 {
			cands[i] = rs
			idx = append(idx, i)
			ds = append(ds, l.Digest)
		}
	}
	if len(idx) == 0 {
		return
	}
	present, err := p.digestsPresent(ctx, repo, t.Registry, ds)
	if err != nil {
		return
	}
	for j, i := range idx {
		if present[j] {
			continue
		}
		l := bs[i]
		for _, r := range cands[i] {
			if ok, err := p.digestsPresent(ctx, r, t.Registry, []v1.Hash{l.Digest}); err == nil && ok[0] {
				li.Mounts[l.Digest] = r
				break
			}
		}
	}
}

// headBlob asks the registry whether repo holds the blob digest (HEAD
// /v2/REPO/blobs/DIGEST through hc, the run's client for repo): 200 yes,
// 404 no, anything else an error.
func headBlob(ctx context.Context, hc *http.Client, repo name.Repository, digest string) (bool, error) {
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), digest)
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return false, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, transport.CheckError(resp, http.StatusOK, http.StatusNotFound)
}
