package build

import (
	"context"
	"net/http"
	"time"

	"github.com/hackforla/ctjdeploy/internal/config"
)

// EnvSpecs are the specs of env's images at tag, as a deploy and `ENV
// local` build them: the engine tag EngineTag(name, tag), labelled with the
// commit (org.opencontainers.image.revision) and, when known, the
// repository's address (…source). With a cacheRegistry, each reuses the
// unchanged steps of the image last pushed for the environment
// (--cache-from REGISTRY/REPOSITORY:ENV, BuildKit's inline cache): what
// makes a fresh CI runner fast. A missing cache image is no error.
func EnvSpecs(env *config.Environment, tag, source, cacheRegistry string) []Spec {
	names := env.ImageNames()
	specs := make([]Spec, 0, len(names))
	for _, n := range names {
		im := env.Images[n]
		labels := map[string]string{"org.opencontainers.image.revision": tag}
		if source != "" {
			labels["org.opencontainers.image.source"] = source
		}
		spec := Spec{Name: n, Context: im.Context, Dockerfile: im.Dockerfile, Target: im.Target,
			BuildArgs: im.BuildArgs, Labels: labels, Tag: EngineTag(n, tag)}
		if cacheRegistry != "" {
			spec.CacheFrom = []string{cacheRegistry + "/" + im.Repository + ":" + env.Name}
		}
		specs = append(specs, spec)
	}
	return specs
}

// RegistryAnswers asks the registry host for its API root (/v2/: plain
// HTTP on loopback, HTTPS elsewhere) within timeout: any HTTP answer, 401 included, means it answers.
// `docker build --cache-from` waits forever on a registry that accepts
// connections and never answers: ask it first, and build without its
// cache when it does not answer.
func RegistryAnswers(ctx context.Context, host string, timeout time.Duration) error {
	scheme := "https"
	if config.IsLoopbackHost(host) {
		scheme = "http"
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
