package push

import (
	"net"
	"net/url"
	"strings"

	"github.com/hackforla/ctjdeploy/internal/config"
)

// normalHost is a registry as host[:port], lowercase, without scheme or
// path, and without the default HTTPS port: "https://X.dkr.ecr.R.amazonaws.com:443/v2/"
// and "x.dkr.ecr.r.amazonaws.com" are the same registry.
func normalHost(s string) string {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		if u, err := url.Parse(s); err == nil {
			s = u.Host
		}
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	s = strings.ToLower(s)
	if h, p, err := net.SplitHostPort(s); err == nil && p == "443" && !strings.Contains(h, ":") {
		s = h
	}
	return s
}

// servesCredentials says whether the ECR token may go to registry: never to
// a host config.AllowedRegistry refuses (neither ECR nor loopback), and, when
// allowed names the configured registries, to those hosts exactly. With no
// configured host, any ECR or loopback registry is served.
func servesCredentials(registry string, allowed []string) bool {
	h := normalHost(registry)
	if h == "" || !config.AllowedRegistry(h) {
		return false
	}
	if len(allowed) == 0 {
		return true
	}
	for _, a := range allowed {
		if normalHost(a) == h {
			return true
		}
	}
	return false
}
