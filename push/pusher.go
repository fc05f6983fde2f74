package push

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/klauspost/compress/gzip"

	"github.com/hackforla/ctjdeploy/build"
	"github.com/hackforla/ctjdeploy/internal/engineimage"
	"github.com/hackforla/ctjdeploy/internal/netclient"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/internal/safego"
)

// ECR is the Pusher: go-containerregistry against an ECR registry (or a
// loopback test registry), credentials from ecr:GetAuthorizationToken held in
// memory only. Each concern is its own part: the options, the Docker engine
// connection that images are read from, the credentials, the transport to
// the registries, and what this run has learnt (repositories described,
// images already pushed, where each pushed layer is).
type ECR struct {
	ecr ecrAPI
	options
	level int

	engine *engineimage.Conn // where images are read from
	*credentials
	*registryClient

	// repos remembers, for this run, what DescribeRepositories said of each
	// registry/repository: Plan and Push of the same image ask once.
	repos memo[mutability]
	// same remembers alreadyPushed's answers for this run: Plan and Push of
	// the same image ask once.
	same memo[*remote.Descriptor]
	// homes remembers, for this run, which repository each pushed layer
	// (by diff id) is in: another repository mounts it from there.
	homes layerHomes
}

var _ Pusher = (*ECR)(nil)

// New returns a Pusher that reads registry credentials from ECR with awsCfg.
// The Docker engine (DOCKER_HOST) is contacted only when an image is read.
// It fails when an option does.
func New(ctx context.Context, awsCfg aws.Config, opts ...Option) (*ECR, error) {
	o := options{rep: report.Discard, jobs: max(4, runtime.NumCPU()), timeouts: netclient.Default, backoff: DefaultBackoff}
	if d, err := os.UserCacheDir(); err == nil {
		o.cacheDir = filepath.Join(d, "ctjdeploy", "push")
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return newECR(ecr.NewFromConfig(awsCfg), o), nil
}

// newECR is New with the ECR API given (tests give a fake) and the options
// applied.
func newECR(api ecrAPI, o options) *ECR {
	p := &ECR{ecr: api, options: o, level: gzip.DefaultCompression, engine: &engineimage.Conn{}, credentials: &credentials{api: api, allowed: o.registries}}
	base := netclient.RegistryTransport(remote.DefaultTransport.(*http.Transport), o.timeouts)
	p.registryClient = &registryClient{creds: p.credentials, o: &p.options, transport: &loopbackOnlyHTTP{next: base}}
	return p
}

// Close releases the engine client.
func (p *ECR) Close() error { return p.engine.Close() }

func (p *ECR) open(ctx context.Context, img build.Image, t Target) (*engineimage.Image, error) {
	eng, err := p.engine.Engine(ctx)
	if err != nil {
		return nil, err
	}
	ref := img.LocalRef
	if ref == "" {
		ref = img.ID
	}
	if ref == "" {
		return nil, fmt.Errorf("image %s: no local reference or id to push", img.Name)
	}
	repo, err := repository(t)
	if err != nil {
		return nil, err
	}
	known := func(diffIDs []v1.Hash) engineimage.Known {
		// The images last pushed under the target's tags (ENV) and the
		// digests the caller names: their configs map diff ids to the
		// compressed digests the registry holds.
		refs := append(append([]string(nil), t.Tags...), t.KnownFrom...)
		k := p.learn(ctx, repo, t.Registry, refs)
		for _, other := range t.MountFrom {
			// The same tags in the other repositories of the registry:
			// their layers are mounted rather than read and uploaded.
			if o, err := repository(Target{Registry: t.Registry, Repository: other}); err == nil && o.String() != repo.String() {
				p.learnInto(ctx, k, o, t.Registry, t.Tags)
			}
		}
		k.Layers = p.knownPresent(ctx, repo, t.Registry, diffIDs, k, p.level)
		return k
	}
	li, err := engineimage.Open(ctx, eng, ref, engineimage.Options{Level: p.level, CacheDir: p.cacheDir, Known: known})
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Name, err)
	}
	p.findMounts(ctx, repo, t, li)
	return li, nil
}

// Push pushes img to t.Registry/t.Repository under t.Tags (the first one
// carries the upload; the others are written as manifests only) and checks
// that the registry holds the manifest digest computed locally.
func (p *ECR) Push(ctx context.Context, img build.Image, t Target) (Result, error) {
	ph := report.For(p.rep, "push")
	repo, mut, li, err := p.openTarget(ctx, img, t, "pushing "+img.Name)
	if err != nil {
		return Result{}, err
	}
	defer li.Close()
	vimg, err := li.V1()
	if err != nil {
		return Result{}, err
	}
	wimg, mounts, err := p.withMounts(ctx, vimg, li, t.Registry)
	if err != nil {
		return Result{}, err
	}
	digest, manifest, skipWrite := li.Digest(), remote.Taggable(vimg), false
	if desc, ok := p.samePushed(ctx, repo, t, li); ok {
		// A rebuild of the same commit: same layers, same config but for
		// the inline build cache. Keep the image already pushed.
		digest, manifest, skipWrite = desc.Digest, desc, true
		ph.Infof("%s: %s already holds this image under %s (%s); only its build cache record differs: nothing to push",
			img.Name, repo, t.Tags[0], desc.Digest)
	}
	res := Result{Image: img.Name, Digest: digest.String(), Ref: repo.Digest(digest.String()).String()}
	what := fmt.Sprintf("pushing %s to %s", img.Name, repo)
	primary, rest := pushRefs(repo, t, digest)
	if !skipWrite && mut == immutable && len(t.Tags) > 0 {
		// An immutable tag that already names this digest is done; one that
		// names another digest cannot be moved.
		if d, err := p.head(ctx, t.Registry, primary); err == nil {
			if d.Digest != digest {
				return res, fmt.Errorf("%s: tag %s already names %s in repository %s, whose tags are immutable; push under another --tag", what, t.Tags[0], d.Digest, repo)
			}
			skipWrite = true
		}
	}
	if !skipWrite {
		if err := p.write(ctx, t, primary, vimg, wimg, li, img.Name, what, ph); err != nil {
			return res, err
		}
	}
	total := p.account(&res, repo, li, mounts)
	ph.Progress(img.Name, total, total, "bytes")
	if err := p.verifyPushed(ctx, t, primary, digest, img.Name, what); err != nil {
		return res, err
	}
	for _, tag := range rest {
		if slices.Contains(t.MoveLater, tag) {
			continue // moved by the caller once every image is pushed (Tag)
		}
		if err := p.tag(ctx, repo.Tag(tag), manifest, digest, mut, t.Registry, ph); err != nil {
			return res, registryErr(fmt.Sprintf("tagging %s as %s", img.Name, repo.Tag(tag)), t.Registry, t.Repository, err)
		}
	}
	ph.Fields(fmt.Sprintf("%s: %s (uploaded %d of %d layer bytes; %d of %d layers known without reading them, %d layer bytes read from the engine)",
		img.Name, res.Ref, res.UploadedBytes, total, res.KnownLayers, len(li.Blobs()), res.EngineReadBytes),
		map[string]any{"image": img.Name, "ref": res.Ref, "uploaded_bytes": res.UploadedBytes, "reused_bytes": res.ReusedBytes,
			"known_layers": res.KnownLayers, "engine_read_bytes": res.EngineReadBytes, "engine_stream_bytes": res.EngineStreamBytes})
	return res, nil
}

// openTarget checks the target (a registry served credentials, a valid
// repository that exists) and opens img for it; verb ("pushing django")
// heads the errors.
func (p *ECR) openTarget(ctx context.Context, img build.Image, t Target, verb string) (name.Repository, mutability, *engineimage.Image, error) {
	if err := p.checkRegistry(t.Registry); err != nil {
		return name.Repository{}, 0, nil, fmt.Errorf("%s: %w", verb, err)
	}
	repo, err := repository(t)
	if err != nil {
		return name.Repository{}, 0, nil, err
	}
	mut, err := p.repository(ctx, t.Registry, t.Repository)
	if err != nil {
		return name.Repository{}, 0, nil, fmt.Errorf("%s: %w", verb, err)
	}
	li, err := p.open(ctx, img, t)
	if err != nil {
		return name.Repository{}, 0, nil, err
	}
	return repo, mut, li, nil
}

// samePushed is alreadyPushed under the target's first tag (none: false).
func (p *ECR) samePushed(ctx context.Context, repo name.Repository, t Target, li *engineimage.Image) (*remote.Descriptor, bool) {
	if len(t.Tags) == 0 {
		return nil, false
	}
	return p.alreadyPushed(ctx, repo, t.Registry, t.Tags[0], li)
}

// pushRefs are where a push writes the manifest first (the target's first
// tag, or the digest when it has none) and the tags written after it.
func pushRefs(repo name.Repository, t Target, digest v1.Hash) (name.Reference, []string) {
	if len(t.Tags) > 0 {
		return repo.Tag(t.Tags[0]), t.Tags[1:]
	}
	return repo.Digest(digest.String()), nil
}

// write uploads what the registry lacks of the image and its manifest under
// primary, reporting the bytes as they go; when li is present in the
// repository already, only the manifest is written. A failed write is
// explained by registryErr under what.
func (p *ECR) write(ctx context.Context, t Target, primary name.Reference, vimg, wimg v1.Image, li *engineimage.Image, image, what string, ph *report.Phase) error {
	updates := make(chan v1.Update, 64)
	done := make(chan struct{})
	var progressErr error
	go func() {
		defer close(done)
		defer safego.Recover("reporting the push progress of "+image, func(e error) {
			progressErr = e
			for range updates { // keep the uploader from blocking
			}
		})
		var last time.Time
		for u := range updates {
			if u.Error == nil && time.Since(last) > 200*time.Millisecond {
				ph.Progress(image, u.Complete, u.Total, "bytes")
				last = time.Now()
			}
		}
	}()
	var err error
	if li.Present {
		// Every blob was seen in the repository moments ago (the layers'
		// HEADs, the config read from there): only the manifest is new.
		close(updates)
		err = p.put(ctx, t.Registry, primary, vimg)
	} else {
		err = remote.Write(primary, wimg, p.remoteOpts(ctx, t.Registry, remote.WithProgress(updates))...)
	}
	<-done
	if err != nil {
		return registryErr(what, t.Registry, t.Repository, err)
	}
	return progressErr
}

// account fills res's byte and layer counts from the push of li into repo,
// which the rest of the run remembers, and returns the image's layer bytes.
func (p *ECR) account(res *Result, repo name.Repository, li *engineimage.Image, mounts int) (total int64) {
	total = li.LayerBytes()
	res.UploadedBytes = li.Uploaded()
	res.EngineReadBytes = li.EngineRead()
	res.EngineStreamBytes = li.EngineStreamed()
	res.MountedLayers = mounts
	p.remember(repo, li)
	for _, l := range li.Blobs() {
		if li.From[l.DiffID] != "" {
			res.KnownLayers++
		}
	}
	res.ReusedBytes = max(0, total-res.UploadedBytes)
	return total
}

// verifyPushed checks that the registry holds, under primary, the manifest
// digest computed here.
func (p *ECR) verifyPushed(ctx context.Context, t Target, primary name.Reference, digest v1.Hash, image, what string) error {
	d, err := p.head(ctx, t.Registry, primary)
	if err != nil {
		return registryErr(fmt.Sprintf("checking the pushed manifest of %s", image), t.Registry, t.Repository, err)
	}
	if d.Digest != digest {
		return fmt.Errorf("%s: the registry holds manifest %s under %s, not the pushed %s", what, d.Digest, primary, digest)
	}
	return nil
}

var _ Tagger = (*ECR)(nil)

// Tag points tags of registry/repository at the manifest digest (which must
// be there), writing the manifest only. Tags of an immutable repository that
// name another image are skipped with a warning, as in Push.
func (p *ECR) Tag(ctx context.Context, registry, repository_, digest string, tags ...string) error {
	ph := report.For(p.rep, "push")
	if err := p.checkRegistry(registry); err != nil {
		return fmt.Errorf("tagging %s: %w", repository_, err)
	}
	repo, err := repository(Target{Registry: registry, Repository: repository_})
	if err != nil {
		return err
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		return fmt.Errorf("tagging %s: digest %q: %w", repo, digest, err)
	}
	mut, err := p.repository(ctx, registry, repository_)
	if err != nil {
		return fmt.Errorf("tagging %s: %w", repo, err)
	}
	desc, err := p.get(ctx, registry, repo.Digest(digest))
	if err != nil {
		return registryErr(fmt.Sprintf("reading manifest %s of %s to tag it", digest, repo), registry, repository_, err)
	}
	for _, tag := range tags {
		if err := p.tag(ctx, repo.Tag(tag), desc, h, mut, registry, ph); err != nil {
			return registryErr(fmt.Sprintf("tagging %s as %s", repo.Digest(digest), repo.Tag(tag)), registry, repository_, err)
		}
	}
	return nil
}

// tag points tag at the pushed manifest by writing the manifest only. In a
// repository with immutable tags a tag that already names another image is
// skipped with a warning.
func (p *ECR) tag(ctx context.Context, tag name.Tag, img remote.Taggable, digest v1.Hash, mut mutability, registry string, ph *report.Phase) error {
	if mut == immutable {
		if d, err := p.head(ctx, registry, tag); err == nil {
			if d.Digest != digest {
				ph.Warnf("repository %s has immutable tags: tag %s stays on %s and does not follow this push; deploys pin images by digest, so only people reading tags see the old one",
					tag.Context(), tag.TagStr(), d.Digest)
			}
			return nil
		}
	}
	err := p.put(ctx, registry, tag, img)
	if err != nil && mut != mutable && isImmutableTagErr(err) {
		ph.Warnf("repository %s refused to move tag %s (immutable tags): skipped; deploys pin images by digest", tag.Context(), tag.TagStr())
		return nil
	}
	return err
}

// Plan reports, writing nothing, which layers of img the registry lacks and
// their bytes, and which of t.Tags already name the image.
func (p *ECR) Plan(ctx context.Context, img build.Image, t Target) (Plan, error) {
	repo, _, li, err := p.openTarget(ctx, img, t, "planning the push of "+img.Name)
	if err != nil {
		return Plan{}, err
	}
	defer li.Close()
	want := li.Digest()
	if desc, ok := p.samePushed(ctx, repo, t, li); ok {
		want = desc.Digest // the same image, pushed by an earlier run of this commit
	}
	pl := Plan{Image: img.Name, Repository: repo.String(), Digest: want.String()}
	present, err := p.blobsPresent(ctx, repo, t.Registry, li.Blobs())
	if err != nil {
		return pl, registryErr(fmt.Sprintf("checking which layers of %s %s has", img.Name, repo), t.Registry, t.Repository, err)
	}
	for i, l := range li.Blobs() {
		pl.Layers = append(pl.Layers, Layer{Digest: l.Digest.String(), Size: l.Size, Missing: !present[i], KnownFrom: li.From[l.DiffID]})
		if src, ok := li.Mounts[l.Digest]; ok && !present[i] {
			pl.Layers[len(pl.Layers)-1].MountFrom = src.RepositoryStr()
		}
	}
	pl.MissingBytes = missingBytes(pl.Layers)
	for _, tag := range t.Tags {
		d, err := p.head(ctx, t.Registry, repo.Tag(tag))
		if err != nil {
			continue
		}
		if pl.Tagged == nil {
			pl.Tagged = map[string]string{}
		}
		pl.Tagged[tag] = d.Digest.String()
		if d.Digest == want {
			pl.ExistingTags = append(pl.ExistingTags, tag)
		}
	}
	return pl, nil
}

// missingBytes sums the sizes of the distinct missing blobs.
func missingBytes(ls []Layer) int64 {
	seen := map[string]bool{}
	var n int64
	for _, l := range ls {
		if l.Missing && l.MountFrom == "" && !seen[l.Digest] {
			seen[l.Digest] = true
			n += l.Size
		}
	}
	return n
}

// blobsPresent HEADs each layer's blob in the repository (digestsPresent).
func (p *ECR) blobsPresent(ctx context.Context, repo name.Repository, registry string, ls []engineimage.Blob) ([]bool, error) {
	ds := make([]v1.Hash, len(ls))
	for i, l := range ls {
		ds[i] = l.Digest
	}
	return p.digestsPresent(ctx, repo, registry, ds)
}

// Resolve returns REGISTRY/REPOSITORY@sha256:... for a tag that exists; a
// missing tag is an error wrapping ErrTagNotFound.
func (p *ECR) Resolve(ctx context.Context, registry, repository_, tag string) (string, error) {
	repo, err := repository(Target{Registry: registry, Repository: repository_})
	if err != nil {
		return "", err
	}
	d, err := p.head(ctx, registry, repo.Tag(tag))
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusNotFound && !hasCode(te, transport.NameUnknownErrorCode) {
			return "", fmt.Errorf("%w: %s has no tag %s (images are pushed under the commit SHA and the environment name)", ErrTagNotFound, repo, tag)
		}
		return "", registryErr(fmt.Sprintf("resolving %s:%s", repo, tag), registry, repository_, err)
	}
	return repo.Digest(d.Digest.String()).String(), nil
}

// Tags lists the tags of a repository (for resolving a commit prefix).
func (p *ECR) Tags(ctx context.Context, registry, repository_ string) ([]string, error) {
	repo, err := repository(Target{Registry: registry, Repository: repository_})
	if err != nil {
		return nil, err
	}
	tags, err := remote.List(repo, p.remoteOpts(ctx, registry)...)
	if err != nil {
		return nil, registryErr(fmt.Sprintf("listing the tags of %s", repo), registry, repository_, err)
	}
	return tags, nil
}

// repository is describeRepository, asked once per registry/repository in a
// run. Errors are not remembered.
func (p *ECR) repository(ctx context.Context, registry, repo string) (mutability, error) {
	return p.repos.get(registry+"/"+repo, func() (mutability, error) {
		return describeRepository(ctx, p.ecr, registry, repo)
	})
}

// memo remembers, for this run, one answer per key: the first asker works
// it out (others wait), the rest read it. Errors are not remembered.
type memo[V any] struct {
	mu sync.Mutex
	m  map[string]V
}

func (m *memo[V]) get(key string, f func() (V, error)) (V, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.m[key]; ok {
		return v, nil
	}
	v, err := f()
	if err != nil {
		return v, err
	}
	if m.m == nil {
		m.m = map[string]V{}
	}
	m.m[key] = v
	return v, nil
}

// ImageConfig reads the raw config of the image ref (REGISTRY/REPOSITORY:TAG)
// with this run's registry client: the ECR token for the configured
// registry only, plain HTTP only to loopback, retries. It is nil, with no
// error, when the registry has no such image or repository. The builder
// reads a --cache-from image's inline cache through it
// (build.WithCacheConfig).
func (p *ECR) ImageConfig(ctx context.Context, ref string) ([]byte, error) {
	parsed, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return nil, err
	}
	registry, repoName := parsed.Context().RegistryStr(), parsed.Context().RepositoryStr()
	repo, err := repository(Target{Registry: registry, Repository: repoName})
	if err != nil {
		return nil, err
	}
	var r name.Reference = repo.Tag(parsed.Identifier())
	if _, ok := parsed.(name.Digest); ok {
		r = repo.Digest(parsed.Identifier())
	}
	img, err := remote.Image(r, p.remoteOpts(ctx, registry)...)
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, registryErr("reading the config of "+ref, registry, repoName, err)
	}
	return img.RawConfigFile()
}
