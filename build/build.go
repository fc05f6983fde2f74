// Package build builds an environment's images with the Docker engine
// (BuildKit). It knows nothing of registries beyond the build cache.
package build

import "context"

// Spec is one image to build.
type Spec struct {
	Name       string // image name in the config (django, next)
	Context    string // absolute path of the build context
	Dockerfile string // absolute path of the Dockerfile
	Target     string // optional stage
	BuildArgs  map[string]string
	Labels     map[string]string // OCI labels: org.opencontainers.image.revision, .source
	Tag        string            // local tag to give the result (e.g. ctjdeploy/django:<tag>)
	// CacheFrom lists image references to reuse layers from (registry cache).
	CacheFrom []string
}

// Image is a built image in the engine's store.
type Image struct {
	Name     string // image name in the config
	LocalRef string // the local tag it was given
	ID       string // sha256:... config digest
}

// Builder builds images.
type Builder interface {
	Build(ctx context.Context, spec Spec) (Image, error)
}
