package push

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// HasDigest says whether the registry still holds the manifest digest
// (sha256:...) in repository: a revision pinned by digest can only run if
// it does (a lifecycle policy may have expired it while a tag moved on).
func (p *ECR) HasDigest(ctx context.Context, registry, repository_, digest string) (bool, error) {
	repo, err := repository(Target{Registry: registry, Repository: repository_})
	if err != nil {
		return false, err
	}
	_, err = remote.Head(repo.Digest(digest), p.remoteOpts(ctx, registry)...)
	if err == nil {
		return true, nil
	}
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return false, nil
	}
	return false, registryErr(fmt.Sprintf("looking up %s@%s", repo, digest), registry, repository_, err)
}
