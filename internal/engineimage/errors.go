package engineimage

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/moby/moby/client"
)

// engineHost says where the Docker engine is looked for.
func engineHost() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h + " (from DOCKER_HOST)"
	}
	return client.DefaultDockerHost + " (DOCKER_HOST is unset)"
}

// engineErr turns a Docker engine error into one a user can act on.
func engineErr(what string, err error) error {
	if client.IsErrConnectionFailed(err) {
		return fmt.Errorf("%s: cannot reach the Docker engine at %s: %w; ctjdeploy reads DOCKER_HOST "+
			"(and DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) like the docker CLI but not docker contexts: start the engine or set DOCKER_HOST",
			what, engineHost(), err)
	}
	var nf interface{ NotFound() }
	if errors.As(err, &nf) || strings.Contains(strings.ToLower(err.Error()), "no such image") {
		return fmt.Errorf("%s: the engine at %s has no such image: %w; build it first (or deploy with --no-build)", what, engineHost(), err)
	}
	return fmt.Errorf("%s (engine at %s): %w", what, engineHost(), err)
}
