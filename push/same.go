package push

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hackforla/ctjdeploy/internal/engineimage"
)

// inlineCacheKey is where BuildKit's inline build cache lives in an image
// config. It describes how the layers were cached, not what the image is, and
// it changes from build to build of the same source when the cache was
// imported from the registry (--cache-from).
const inlineCacheKey = "moby.buildkit.cache.v0"

// sameImage says whether two image configs describe the same image once the
// inline build cache is set aside. Pure.
func sameImage(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var ma, mb map[string]json.RawMessage
	if json.Unmarshal(a, &ma) != nil || json.Unmarshal(b, &mb) != nil {
		return false
	}
	delete(ma, inlineCacheKey)
	delete(mb, inlineCacheKey)
	if len(ma) != len(mb) {
		return false
	}
	for k, va := range ma {
		vb, ok := mb[k]
		if !ok || !jsonEqual(va, vb) {
			return false
		}
	}
	return true
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// alreadyPushed looks at the image the registry holds under tag: when it has
// the same layers as li and the same config but for the inline build cache,
// it is this image, pushed by an earlier run of the same commit, and its
// descriptor is returned. A rebuild of an unchanged commit then uploads
// nothing, keeps its digest, and registers no new revision.
func (p *ECR) alreadyPushed(ctx context.Context, repo name.Repository, registry, tag string, li *engineimage.Image) (*remote.Descriptor, bool) {
	d, _ := p.same.get(repo.Tag(tag).String()+" "+li.Digest().String(), func() (*remote.Descriptor, error) {
		d, _ := p.lookAlreadyPushed(ctx, repo, registry, tag, li)
		return d, nil
	})
	return d, d != nil
}

func (p *ECR) lookAlreadyPushed(ctx context.Context, repo name.Repository, registry, tag string, li *engineimage.Image) (*remote.Descriptor, bool) {
	// HEAD first: on the common paths (a new tag, or the very same digest)
	// that is all it costs.
	if d, err := p.head(ctx, registry, repo.Tag(tag)); err != nil || d.Digest == li.Digest() {
		return nil, false
	}
	desc, err := p.get(ctx, registry, repo.Tag(tag))
	if err != nil || desc.Digest == li.Digest() {
		return nil, false
	}
	img, err := desc.Image()
	if err != nil {
		return nil, false
	}
	m, err := img.Manifest()
	bs := li.Blobs()
	if err != nil || len(m.Layers) != len(bs) {
		return nil, false
	}
	for i, l := range m.Layers {
		if l.Digest != bs[i].Digest {
			return nil, false
		}
	}
	cfg, err := img.RawConfigFile()
	if err != nil || !sameImage(cfg, li.Config()) {
		return nil, false
	}
	return desc, true
}
