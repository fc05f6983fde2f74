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

	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/netclient"
)

// registryClient is this run's way to the registries: one transport
// (timeouts, plain HTTP to loopback only), the credentials, retries, and
// the pullers, pushers and blob clients reused for each registry and
// repository: one ping and auth exchange each, not one per request.
type registryClient struct {
	creds     *credentials
	o         *options // jobs, backoff
	transport http.RoundTripper

	pullMu  sync.Mutex
	pullers map[string]*remote.Puller
	pushers map[string]*remote.Pusher
	clients map[string]*http.Client
}

// loopbackOnlyHTTP refuses plain HTTP to any host that is not loopback
// (go-containerregistry would otherwise speak HTTP to private addresses).
type loopbackOnlyHTTP struct{ next http.RoundTripper }

func (t *loopbackOnlyHTTP) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !config.IsLoopbackHost(r.URL.Host) {
		return nil, fmt.Errorf("refusing plain HTTP to registry %s: only loopback registries are spoken to without TLS", r.URL.Host)
	}
	return t.next.RoundTrip(r)
}

func repository(t Target) (name.Repository, error) {
	var opts []name.Option
	if config.IsLoopbackHost(t.Registry) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRepository(t.Registry+"/"+t.Repository, append(opts, name.StrictValidation)...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("registry %q, repository %q: %w", t.Registry, t.Repository, err)
	}
	return r, nil
}

// retryCodes are the statuses retried with backoff.
var retryCodes = []int{http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
	http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

func (r *registryClient) remoteOpts(ctx context.Context, registry string, extra ...remote.Option) []remote.Option {
	return append([]remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(r.creds.auth(registry)),
		remote.WithTransport(r.transport),
		remote.WithJobs(r.o.jobs),
		remote.WithUserAgent("ctjdeploy"),
		remote.WithRetryStatusCodes(retryCodes...),
		remote.WithRetryBackoff(r.o.backoff),
		remote.WithRetryPredicate(netclient.RegistryRetryable),
	}, extra...)
}

// puller is this run's reader of registry (manifests, configs, blobs).
func (r *registryClient) puller(registry string) (*remote.Puller, error) {
	r.pullMu.Lock()
	defer r.pullMu.Unlock()
	if pl, ok := r.pullers[registry]; ok {
		return pl, nil
	}
	pl, err := remote.NewPuller(r.remoteOpts(context.Background(), registry)...)
	if err != nil {
		return nil, err
	}
	if r.pullers == nil {
		r.pullers = map[string]*remote.Puller{}
	}
	r.pullers[registry] = pl
	return pl, nil
}

// put writes a manifest only (remote.Put) through this run's pusher of
// registry: one ping and auth exchange per repository, not per tag.
func (r *registryClient) put(ctx context.Context, registry string, ref name.Reference, t remote.Taggable) error {
	r.pullMu.Lock()
	pu, ok := r.pushers[registry]
	if !ok {
		var err error
		pu, err = remote.NewPusher(r.remoteOpts(context.Background(), registry)...)
		if err != nil {
			r.pullMu.Unlock()
			return err
		}
		if r.pushers == nil {
			r.pushers = map[string]*remote.Pusher{}
		}
		r.pushers[registry] = pu
	}
	r.pullMu.Unlock()
	return pu.Put(ctx, ref, t)
}

// head is remote.Head through this run's puller.
func (r *registryClient) head(ctx context.Context, registry string, ref name.Reference) (*v1.Descriptor, error) {
	pl, err := r.puller(registry)
	if err != nil {
		return nil, err
	}
	return pl.Head(ctx, ref)
}

// get is remote.Get through this run's puller.
func (r *registryClient) get(ctx context.Context, registry string, ref name.Reference) (*remote.Descriptor, error) {
	pl, err := r.puller(registry)
	if err != nil {
		return nil, err
	}
	return pl.Get(ctx, ref)
}

// client is this run's HTTP client for blob HEADs in repo (pull scope).
func (r *registryClient) client(ctx context.Context, repo name.Repository, registry string) (*http.Client, error) {
	key := repo.String()
	r.pullMu.Lock()
	defer r.pullMu.Unlock()
	if c, ok := r.clients[key]; ok {
		return c, nil
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, r.creds.auth(registry), r.transport, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, err
	}
	// The blob HEADs are retried like every other registry request.
	c := &http.Client{Transport: transport.NewRetry(rt, transport.WithRetryBackoff(r.o.backoff),
		transport.WithRetryPredicate(netclient.RegistryRetryable), transport.WithRetryStatusCodes(retryCodes...))}
	if r.clients == nil {
		r.clients = map[string]*http.Client{}
	}
	r.clients[key] = c
	return c, nil
}
