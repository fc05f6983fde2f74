package push

import (
	"fmt"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
)

// credentials hand the ECR token (ecrAuth, one per registry) to the
// registries that may have it, and refuse the others.
type credentials struct {
	api ecrAPI
	// allowed are the only hosts the ECR token goes to (WithRegistry);
	// empty: any ECR or loopback registry (config.AllowedRegistry).
	allowed []string

	authMu sync.Mutex
	auths  map[string]*ecrAuth
}

// auth is the authenticator for requests to registry: the ECR token for the
// configured registry only (see servesCredentials), anonymous for any other.
func (c *credentials) auth(registry string) authn.Authenticator {
	if !servesCredentials(registry, c.allowed) {
		return authn.Anonymous
	}
	c.authMu.Lock()
	defer c.authMu.Unlock()
	a, ok := c.auths[registry]
	if !ok {
		a = &ecrAuth{api: c.api}
		if c.auths == nil {
			c.auths = map[string]*ecrAuth{}
		}
		c.auths[registry] = a
	}
	return a
}

// checkRegistry refuses a push target that is not served credentials: the
// ECR token goes to the configured registry only, and an anonymous push
// elsewhere would hand the image to a registry nobody configured.
func (c *credentials) checkRegistry(registry string) error {
	if servesCredentials(registry, c.allowed) {
		return nil
	}
	if len(c.allowed) > 0 {
		return fmt.Errorf("registry %s is not the configured registry %s: ctjdeploy sends the ECR token only there and pushes nowhere else; fix the target or `registry:` in the config",
			registry, strings.Join(c.allowed, ", "))
	}
	return fmt.Errorf("registry %s is neither an ECR registry (ACCOUNT.dkr.ecr.REGION.amazonaws.com) nor a loopback address with a port: ctjdeploy sends the ECR token to no other host; fix `registry:` in the config", registry)
}
