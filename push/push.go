// Package push puts the images build made into a registry (ECR, or a
// loopback test registry) with go-containerregistry, pinned by digest, with
// the ECR token held in memory only and sent to the configured registry
// alone.
//
// An image is read out of the Docker engine's store (one `docker save`),
// its layers gzip-compressed once; layers the registry already holds, known
// from images pushed before (their configs map diff ids to digests) or from
// this machine's digest cache, are neither read nor uploaded, and layers
// another repository of the registry holds are mounted from there. Plan says
// what a push would upload without writing; Push uploads, writes the
// manifest under the first tag and checks that the registry holds the
// digest computed here; Tag moves tags by writing manifests only; Resolve,
// Tags and HasDigest read the registry. A rebuild of an unchanged commit
// (same layers, same config but for BuildKit's inline cache record) keeps
// the image already pushed. RegistryFor finds the default ECR registry, and
// RunCredentialHelper serves the token to `docker build --cache-from`.
//
// The ECR pusher is made of separate parts: its options (options.go), the
// credentials (creds.go, ecr.go), the transport to registries
// (transport.go), and what the run learns about layers (known.go, same.go).
// Images come from internal/engineimage, the engine-backed v1.Image, which
// push opens with what the registry knows of the target.
package push

import (
	"context"

	"github.com/hackforla/ctjdeploy/build"
)

// Target is where an image goes.
type Target struct {
	Registry   string   // host[:port]
	Repository string   // e.g. civic-tech-jobs-backend
	Tags       []string // e.g. the commit SHA and the environment name
	// KnownFrom names more tags or digests (sha256:...) of Repository, e.g.
	// the images the live revision pins, whose layers a push may reuse
	// without reading them from the engine.
	KnownFrom []string
	// MountFrom names other repositories of Registry (e.g. the other images
	// of the deploy) whose images under Tags may hold this image's layers:
	// those are mounted from there instead of read and uploaded.
	MountFrom []string
	// MoveLater names tags of Tags (the environment's, e.g. "stage") that
	// Push does not write: the caller moves them with Tagger.Tag once every
	// image of the deploy is pushed, so that a failure between two images
	// never leaves the environment's tag on two commits. They are still read
	// for known layers and mounts.
	MoveLater []string
}

// Layer is one blob of an image, present in the registry or not.
type Layer struct {
	Digest  string
	Size    int64
	Missing bool // the registry lacks it: a push would upload Size bytes
	// KnownFrom says where the digest was known from without reading the
	// layer from the engine ("registry REF" or "cache"); "" when it was read.
	KnownFrom string
	// MountFrom is the repository of the same registry a push would mount
	// the missing layer from instead of uploading it; "" when none.
	MountFrom string
}

// Plan is what a push of one image would do.
type Plan struct {
	Image        string // image name in the config
	Repository   string // REGISTRY/REPOSITORY
	Digest       string // manifest digest the push would produce
	Layers       []Layer
	MissingBytes int64    // bytes a push would upload: missing layers not mounted
	ExistingTags []string // tags of Target that already point at Digest
	// Tagged maps each tag of Target that exists in the repository to the
	// digest it names now (Digest or another).
	Tagged map[string]string
}

// Result is a pushed image.
type Result struct {
	Image         string // image name in the config
	Ref           string // REGISTRY/REPOSITORY@sha256:...
	Digest        string // sha256:...
	UploadedBytes int64
	ReusedBytes   int64
	// EngineReadBytes is how many uncompressed layer bytes were read out of
	// the engine's image export (docker save), hashed and compressed: 0 when
	// every layer was known from the registry or the digest cache.
	EngineReadBytes int64
	// EngineStreamBytes is every byte read from the export stream, layers
	// passed by unhashed included (the engine exports whole images only): 0
	// when the image was not exported at all.
	EngineStreamBytes int64
	// KnownLayers counts the layers whose digest was known without reading
	// them (from the registry's earlier push or the digest cache).
	KnownLayers int
	// MountedLayers counts the layers offered to the registry as mounts
	// from another repository (a declined mount is uploaded instead).
	MountedLayers int
}

// Tagger points tags at an image already in a repository (by digest),
// writing the manifest only.
type Tagger interface {
	Tag(ctx context.Context, registry, repository, digest string, tags ...string) error
}

// Pusher plans and performs pushes, and resolves tags already pushed.
type Pusher interface {
	Plan(ctx context.Context, img build.Image, t Target) (Plan, error)
	Push(ctx context.Context, img build.Image, t Target) (Result, error)
	// Resolve returns REGISTRY/REPOSITORY@sha256:... for a tag that exists.
	Resolve(ctx context.Context, registry, repository, tag string) (string, error)
}
