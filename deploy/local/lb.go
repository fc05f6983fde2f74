package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/hackforla/ctjdeploy/internal/taskrun"
)

// Backend says where a container's port answers on this machine: its
// loopback address, or why it cannot be reached now.
type Backend func(ctx context.Context, container string, containerPort int) (addr string, err error)

// LB is the local load balancer: it routes each request by the first route
// whose path pattern matches (ALB path-pattern syntax) to the container's
// published port, the path unchanged, as an ALB forwards it. A target that
// is not up answers 502 with the reason.
type LB struct {
	Routes  []Route
	Backend Backend
	// Logf, when set, gets one line per request.
	Logf func(format string, args ...any)

	once  sync.Once
	proxy *httputil.ReverseProxy
}

type ctxKey struct{}

type target struct {
	route *Route
	addr  string
}

func (l *LB) init() {
	l.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			t := r.In.Context().Value(ctxKey{}).(*target)
			r.SetURL(&url.URL{Scheme: "http", Host: t.addr})
			// The path goes unchanged (SetURL joins it with the empty
			// base path); the Host header stays the client's, as an ALB
			// passes it on.
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			t := r.Context().Value(ctxKey{}).(*target)
			http.Error(w, fmt.Sprintf("ctjdeploy local: container %s (port %d) does not answer: %v", t.route.Container, t.route.ContainerPort, err), http.StatusBadGateway)
		},
	}
}

// rw records the status for the request log.
type rw struct {
	http.ResponseWriter
	status int
}

func (w *rw) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *rw) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *rw) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (l *LB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.once.Do(l.init)
	t0 := time.Now()
	rec := &rw{ResponseWriter: w}
	to := "-"
	defer func() {
		if l.Logf != nil {
			l.Logf("%s %s -> %s %d %s", r.Method, r.URL.RequestURI(), to, rec.status, time.Since(t0).Round(time.Millisecond))
		}
	}()
	var route *Route
	for i := range l.Routes {
		if Match(l.Routes[i].Path, r.URL.Path) {
			route = &l.Routes[i]
			break
		}
	}
	if route == nil {
		// An ALB answers with its default action; here there is none.
		http.Error(rec, fmt.Sprintf("ctjdeploy local: no route matches %s (local.routes in the config)", r.URL.Path), http.StatusNotFound)
		return
	}
	to = route.Container
	addr, err := l.Backend(r.Context(), route.Container, route.ContainerPort)
	if err != nil {
		http.Error(rec, "ctjdeploy local: "+err.Error(), http.StatusBadGateway)
		return
	}
	ctx := context.WithValue(r.Context(), ctxKey{}, &target{route: route, addr: addr})
	l.proxy.ServeHTTP(rec, r.WithContext(ctx))
}

// Listen opens 127.0.0.1:port, with a message that says what to do when
// the port is taken.
func Listen(port int) (net.Listener, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("the local load balancer cannot listen on %s: %w (another program, or another `local` run, uses the port: stop it, or pick another with --port N or local.port)", addr, err)
	}
	return ln, nil
}

// DockerBackend finds the containers of `ENV local` by their Docker names:
// a container's port is the one the task's network sandbox published on
// 127.0.0.1. Answers are cached for a second.
func DockerBackend(e *taskrun.Engine, env string) Backend {
	var mu sync.Mutex
	type entry struct {
		at   time.Time
		addr string
		err  error
	}
	cache := map[string]entry{}
	return func(ctx context.Context, container string, containerPort int) (string, error) {
		key := container + "/" + strconv.Itoa(containerPort)
		mu.Lock()
		if c, ok := cache[key]; ok && time.Since(c.at) < time.Second {
			mu.Unlock()
			return c.addr, c.err
		}
		mu.Unlock()
		addr, err := dockerLookup(ctx, e, env, container, containerPort)
		mu.Lock()
		cache[key] = entry{time.Now(), addr, err}
		mu.Unlock()
		return addr, err
	}
}

func dockerLookup(ctx context.Context, e *taskrun.Engine, env, container string, containerPort int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := e.Inspect(ctx, e.ContainerName(env, container))
	switch {
	case err != nil:
		return "", err
	case !st.Exists:
		return "", fmt.Errorf("container %s is not up (not started yet, or stopped)", container)
	case !st.Running:
		return "", fmt.Errorf("container %s is not running (it exited with code %d)", container, st.ExitCode)
	}
	sb, err := e.Inspect(ctx, e.SandboxName(env))
	if err != nil {
		return "", err
	}
	hp := sb.Ports[containerPort]
	if hp == 0 {
		return "", errors.New("the task's network sandbox publishes no port " + strconv.Itoa(containerPort) + " for container " + container)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(hp)), nil
}
