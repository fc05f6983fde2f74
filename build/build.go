// Package build builds an environment's images with the docker CLI
// (BuildKit) against the engine DOCKER_HOST names, one image per Spec, and
// hands back each as an Image of the engine's store (its local tag and id),
// which push reads from there. Build output goes to the reporter line by
// line, and a failed build names the step that failed. Registries matter to
// it only as the build cache (--cache-from): their credentials come from a
// credential helper named in a private DOCKER_CONFIG, never from disk.
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

// EngineTag is the engine's local name for image name built at TAG:
// ctjdeploy/NAME:TAG, with TAG made a docker tag (docker tags allow
// [A-Za-z0-9_.-], at most 128 characters; anything else becomes '-').
// A deploy and `ENV local` name their builds so.
func EngineTag(name, tag string) string {
	b := []byte(tag)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) > 128 {
		b = b[:128]
	}
	return "ctjdeploy/" + name + ":" + string(b)
}
