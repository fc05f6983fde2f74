package push

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrTagNotFound is returned (wrapped) by Resolve when the tag does not
// exist in the repository.
var ErrTagNotFound = errors.New("tag not found")

// iamActions names the ECR IAM actions behind a registry API request, for
// "access denied" messages.
func iamActions(method, path string) []string {
	switch {
	case strings.Contains(path, "/blobs/uploads"):
		switch method {
		case http.MethodPost:
			return []string{"ecr:InitiateLayerUpload"}
		case http.MethodPatch:
			return []string{"ecr:UploadLayerPart"}
		case http.MethodPut:
			return []string{"ecr:CompleteLayerUpload"}
		}
		return []string{"ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"}
	case strings.Contains(path, "/blobs/"):
		if method == http.MethodHead {
			return []string{"ecr:BatchCheckLayerAvailability"}
		}
		return []string{"ecr:GetDownloadUrlForLayer"}
	case strings.Contains(path, "/manifests/"):
		if method == http.MethodPut {
			return []string{"ecr:PutImage"}
		}
		return []string{"ecr:BatchGetImage"}
	case strings.Contains(path, "/tags/list"):
		return []string{"ecr:ListImages"}
	}
	return []string{"ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage"}
}

// hasCode reports whether a registry error carries one of codes.
func hasCode(te *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range te.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

// isImmutableTagErr reports whether err is a registry refusing to move a
// tag (ECR: ImageTagAlreadyExistsException, surfaced as TAG_INVALID or a
// message naming immutability).
func isImmutableTagErr(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	if hasCode(te, transport.TagInvalidErrorCode) {
		return true
	}
	msg := strings.ToLower(te.Error())
	return strings.Contains(msg, "immutable") || strings.Contains(msg, "already exists")
}

// registryErr turns a registry error into one a user can act on: what
// failed, on which repository, and what to do next.
func registryErr(what, registry, repo string, err error) error {
	if err == nil {
		return nil
	}
	var te *transport.Error
	if errors.As(err, &te) {
		method, path := "", ""
		if te.Request != nil {
			method, path = te.Request.Method, te.Request.URL.Path
		}
		switch {
		case te.StatusCode == http.StatusUnauthorized || hasCode(te, transport.UnauthorizedErrorCode):
			return fmt.Errorf("%s: registry %s rejected the credentials from ecr:GetAuthorizationToken (401 Unauthorized): "+
				"check that `registry:` is the ECR registry of the account and region ctjdeploy runs with, and that its clock is right: %w",
				what, registry, err)
		case te.StatusCode == http.StatusForbidden || hasCode(te, transport.DeniedErrorCode):
			return fmt.Errorf("%s: registry %s denied %s %s (403): the identity running ctjdeploy needs IAM action %s on repository %s "+
				"(print the whole policy with `ctjdeploy ENV iam-policy`): %w",
				what, registry, method, path, strings.Join(iamActions(method, path), ", "), repo, err)
		case hasCode(te, transport.NameUnknownErrorCode):
			return fmt.Errorf("%s: %w (%v)", what, repoNotFound(registry, repo), err)
		case hasCode(te, transport.TagInvalidErrorCode):
			return fmt.Errorf("%s: registry %s refused the tag in %s (an ECR repository with immutable tags keeps a tag on its first image): %w", what, registry, repo, err)
		case te.StatusCode == http.StatusTooManyRequests || te.StatusCode >= 500:
			return fmt.Errorf("%s: registry %s kept failing (HTTP %d) after retries; try again later: %w", what, registry, te.StatusCode, err)
		}
		return fmt.Errorf("%s: registry %s: %w", what, registry, err)
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) {
		return fmt.Errorf("%s: cannot reach registry %s: %w; check `registry:` in the config and the network", what, registry, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
