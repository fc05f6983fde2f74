package push

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// knownLayer is a layer whose compressed digest is known without reading it
// from the engine: from an image the registry already holds, or from this
// machine's digest cache, and present in the target repository.
type knownLayer struct {
	digest v1.Hash
	size   int64
	from   string // where it was learnt: "registry <ref>" or "cache"
}

// knowledge is what the registry's earlier pushes tell about local layers:
// compressed digests by diff id, and raw configs by config digest (the
// image id), so an unchanged image needs nothing from the engine.
type knowledge struct {
	layers  map[v1.Hash]knownLayer
	configs map[v1.Hash][]byte
}

// learn fetches the manifest and config of each ref (tags or digests of
// repo; missing ones are skipped) and maps the config's rootfs.diff_ids to
// the manifest's gzip layer digests. Nothing is read from the engine.
func (p *ECR) learn(ctx context.Context, repo name.Repository, registry string, refs []string) knowledge {
	k := knowledge{layers: map[v1.Hash]knownLayer{}, configs: map[v1.Hash][]byte{}}
	for _, r := range refs {
		var ref name.Reference
		if h, err := v1.NewHash(r); err == nil {
			ref = repo.Digest(h.String())
		} else {
			ref = repo.Tag(r)
		}
		desc, err := remote.Get(ref, p.remoteOpts(ctx, registry)...)
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
		k.configs[m.Config.Digest] = raw
		for i, l := range m.Layers {
			if l.MediaType != types.DockerLayer && l.MediaType != types.OCILayer {
				continue // only gzip layers line up with what this pusher writes
			}
			if _, ok := k.layers[cf.RootFS.DiffIDs[i]]; !ok {
				k.layers[cf.RootFS.DiffIDs[i]] = knownLayer{digest: l.Digest, size: l.Size, from: "registry " + ref.String()}
			}
		}
	}
	return k
}

// digestsPresent HEADs each blob digest in the repository, in parallel.
func (p *ECR) digestsPresent(ctx context.Context, repo name.Repository, registry string, ds []v1.Hash) ([]bool, error) {
	out := make([]bool, len(ds))
	if len(ds) == 0 {
		return out, nil
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, p.auth(registry), p.transport, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: rt}
	errs := make([]error, len(ds))
	sem := make(chan struct{}, p.jobs)
	var wg sync.WaitGroup
	for i, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), d)
			req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
			if err != nil {
				errs[i] = err
				return
			}
			resp, err := hc.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				out[i] = true
			case http.StatusNotFound:
			default:
				errs[i] = transport.CheckError(resp, http.StatusOK, http.StatusNotFound)
			}
		}()
	}
	wg.Wait()
	var first error
	for _, e := range errs {
		if e != nil {
			first = e
			break
		}
	}
	return out, first
}

// knownPresent merges what the registry told with this machine's per-layer
// digest cache, keeps only layers the repository holds (HEAD), and returns
// them by diff id.
func (p *ECR) knownPresent(ctx context.Context, repo name.Repository, registry string, diffIDs []v1.Hash, k knowledge, level int) map[v1.Hash]knownLayer {
	cand := map[v1.Hash]knownLayer{}
	for _, d := range diffIDs {
		if l, ok := k.layers[d]; ok {
			cand[d] = l
		} else if l, ok := loadLayerCache(p.cacheDir, d, level); ok {
			cand[d] = l
		}
	}
	var ids []v1.Hash
	var ds []v1.Hash
	for d, l := range cand {
		ids = append(ids, d)
		ds = append(ds, l.digest)
	}
	present, err := p.digestsPresent(ctx, repo, registry, ds)
	out := map[v1.Hash]knownLayer{}
	if err != nil {
		return out // not knowing is safe: the layer is read and pushed as before
	}
	for i, d := range ids {
		if present[i] {
			out[d] = cand[d]
		}
	}
	return out
}
