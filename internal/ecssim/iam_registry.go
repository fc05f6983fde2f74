package ecssim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
)

// RegistryProxy is a reverse proxy in front of the stack's registry
// (upstream, e.g. http://127.0.0.1:5055) that authorizes each docker
// distribution API call as ECR does, against the simulator's policy: the
// ECR action behind it ("Amazon ECR registry API operations and IAM
// permissions": a pull needs ecr:BatchGetImage and
// ecr:GetDownloadUrlForLayer, a push ecr:BatchCheckLayerAvailability,
// ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload and
// ecr:PutImage) on the repository's ARN in moto's account and region:
//
//	HEAD/GET  /v2/NAME/manifests/REF     ecr:BatchGetImage
//	PUT       /v2/NAME/manifests/REF     ecr:PutImage
//	DELETE    /v2/NAME/manifests/REF     ecr:BatchDeleteImage
//	HEAD      /v2/NAME/blobs/DIGEST      ecr:BatchCheckLayerAvailability
//	GET       /v2/NAME/blobs/DIGEST      ecr:GetDownloadUrlForLayer
//	POST      /v2/NAME/blobs/uploads/    ecr:InitiateLayerUpload
//	PATCH     /v2/NAME/blobs/uploads/ID  ecr:UploadLayerPart
//	PUT       /v2/NAME/blobs/uploads/ID  ecr:CompleteLayerUpload
//	GET       /v2/NAME/tags/list         ecr:ListImages
//
// A denied call is answered 403 with the distribution error ECR sends,
// {"errors":[{"code":"DENIED","message":"User: ... is not authorized to
// perform: ACTION on resource: ARN ..."}]} (a HEAD has no body), and is
// recorded in Denials. /v2/ itself (the login check) is not evaluated: ECR
// authorizes it by the token. A cross-repository mount (POST
// ?mount=&from=) is authorized on the target only. Without a policy every
// call passes.
func (s *Sim) RegistryProxy(upstream, region string) (http.Handler, error) {
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("ecssim: registry upstream %q is not a URL", upstream)
	}
	if region == "" {
		region = "us-west-2"
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.iam.mu.Lock()
		p, principal := s.iam.policy, s.iam.principal
		s.iam.mu.Unlock()
		if p != nil {
			if action, repo, ok := registryAction(r.Method, r.URL.Path); ok {
				res := fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s", region, simAccount, repo)
				c := check{action: action, resource: res}
				explicit, allowed := p.allows(c)
				if !allowed {
					body, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": "DENIED",
						"message": s.deny(principal, c, explicit)}}})
					_, _ = io.Copy(io.Discard, r.Body)
					w.Header().Set("Content-Type", "application/json; charset=utf-8")
					w.WriteHeader(http.StatusForbidden)
					if r.Method != http.MethodHead {
						_, _ = w.Write(body)
					}
					return
				}
			}
		}
		rp.ServeHTTP(w, r)
	}), nil
}

var registryPathRE = regexp.MustCompile(`^/v2/(.+)/(manifests|blobs|tags)/(.*)$`)

// registryAction maps a distribution API call to its ECR action and
// repository name.
func registryAction(method, path string) (action, repo string, ok bool) {
	m := registryPathRE.FindStringSubmatch(path)
	if m == nil {
		return "", "", false
	}
	repo, kind, rest := m[1], m[2], m[3]
	switch {
	case kind == "manifests" && (method == http.MethodGet || method == http.MethodHead):
		return "ecr:BatchGetImage", repo, true
	case kind == "manifests" && method == http.MethodPut:
		return "ecr:PutImage", repo, true
	case kind == "manifests" && method == http.MethodDelete:
		return "ecr:BatchDeleteImage", repo, true
	case kind == "blobs" && strings.HasPrefix(rest, "uploads"):
		switch method {
		case http.MethodPost:
			return "ecr:InitiateLayerUpload", repo, true
		case http.MethodPatch:
			return "ecr:UploadLayerPart", repo, true
		case http.MethodPut:
			return "ecr:CompleteLayerUpload", repo, true
		}
	case kind == "blobs" && method == http.MethodHead:
		return "ecr:BatchCheckLayerAvailability", repo, true
	case kind == "blobs" && method == http.MethodGet:
		return "ecr:GetDownloadUrlForLayer", repo, true
	case kind == "tags" && method == http.MethodGet:
		return "ecr:ListImages", repo, true
	}
	return "", "", false
}
