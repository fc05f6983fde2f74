package build

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/internal/safego"
)

// Docker builds with the docker CLI (BuildKit) against the engine DOCKER_HOST
// names.
type Docker struct {
	bin string
	rep report.Reporter
	// Cache credentials: registries whose credentials come from a docker
	// credential helper (docker-credential-<helperName>, a symlink to
	// helperBin), and the extra environment the helper needs.
	helperBin  string
	helperName string
	helperEnv  []string
	registries []string
	tailLines  int

	// cacheConfig reads a --cache-from image's raw config (WithCacheConfig).
	cacheConfig func(ctx context.Context, ref string) ([]byte, error)
	versionOnce sync.Once
	version     string // the engine's version (engineVersion)
}

var _ Builder = (*Docker)(nil)

// Option configures NewDocker.
type Option func(*Docker)

// WithReporter sends the build output (one Line event per line, Subject =
// image name) to r.
func WithReporter(r report.Reporter) Option { return func(d *Docker) { d.rep = r } }

// WithCredentialHelper makes the docker CLI read credentials for registries
// (the --cache-from images) from a credential helper: bin is run as
// docker-credential-<name> through a symlink in a private temporary folder
// put first on PATH, with env added to its environment. A temporary
// DOCKER_CONFIG names the helper; no credential is ever written to disk.
func WithCredentialHelper(bin, name string, registries []string, env ...string) Option {
	return func(d *Docker) {
		d.helperBin, d.helperName, d.registries, d.helperEnv = bin, name, registries, env
	}
}

// WithCacheConfig gives the builder read, which reads an image's raw
// config from its registry, nil and no error when the registry has no such
// image (push.ECR.ImageConfig): on an engine before
// Docker Engine 23.0 a --cache-from image whose inline cache loops is left
// out of the build (dropLoopingCaches).
func WithCacheConfig(read func(ctx context.Context, ref string) ([]byte, error)) Option {
	return func(d *Docker) { d.cacheConfig = read }
}

// NewDocker returns a Builder running the docker CLI: $DOCKER if set, else
// /usr/bin/docker if it exists, else docker on PATH.
func NewDocker(opts ...Option) (*Docker, error) {
	d := &Docker{rep: report.Discard, tailLines: 20}
	for _, o := range opts {
		o(d)
	}
	if d.bin == "" {
		bin, err := findDocker()
		if err != nil {
			return nil, err
		}
		d.bin = bin
	}
	return d, nil
}

func findDocker() (string, error) {
	if b := os.Getenv("DOCKER"); b != "" {
		p, err := exec.LookPath(b)
		if err != nil {
			return "", fmt.Errorf("DOCKER=%s: %w; set DOCKER to the docker CLI's path", b, err)
		}
		return p, nil
	}
	if st, err := os.Stat("/usr/bin/docker"); err == nil && !st.IsDir() {
		return "/usr/bin/docker", nil
	}
	p, err := exec.LookPath("docker")
	if err != nil {
		return "", errors.New("docker CLI not found (looked at $DOCKER, /usr/bin/docker, PATH): install docker or set DOCKER to its path; the engine is the one DOCKER_HOST names")
	}
	return p, nil
}

// Validate checks the specs' inputs before any build starts; its errors are
// invalid-input errors (exit 2).
func Validate(specs []Spec) error {
	var errs []error
	for _, s := range specs {
		if st, err := os.Stat(s.Context); err != nil || !st.IsDir() {
			errs = append(errs, exitcode.Invalidf("image %s: build context %s is not a folder: fix `context:` in the config", s.Name, s.Context))
		}
		if st, err := os.Stat(s.Dockerfile); err != nil || st.IsDir() {
			errs = append(errs, exitcode.Invalidf("image %s: Dockerfile %s not found: fix `dockerfile:` in the config", s.Name, s.Dockerfile))
		}
		if s.Tag == "" {
			errs = append(errs, exitcode.Invalidf("image %s: no local tag to build", s.Name))
		}
	}
	if len(errs) > 0 {
		return exitcode.Wrap(exitcode.Invalid, errors.Join(errs...))
	}
	return nil
}

// args is the docker CLI command line for spec.
func args(spec Spec, iidfile string) []string {
	a := []string{"build", "--progress=plain", "-f", spec.Dockerfile, "-t", spec.Tag, "--iidfile", iidfile}
	if spec.Target != "" {
		a = append(a, "--target", spec.Target)
	}
	for _, k := range sortedKeys(spec.Labels) {
		a = append(a, "--label", k+"="+spec.Labels[k])
	}
	// Inline cache metadata in the image, so a later build can use the
	// pushed image as its cache (--cache-from).
	a = append(a, "--build-arg", "BUILDKIT_INLINE_CACHE=1")
	for _, k := range sortedKeys(spec.BuildArgs) {
		a = append(a, "--build-arg", k+"="+spec.BuildArgs[k])
	}
	for _, c := range spec.CacheFrom {
		a = append(a, "--cache-from", c)
	}
	return append(a, spec.Context)
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Build runs `docker build` for spec, streaming its output as Line events.
// A --cache-from image the engine cannot import safely is left out first
// (dropLoopingCaches); a build that failed only on a build cache is run
// once more, without --cache-from (cacheBroke).
func (d *Docker) Build(ctx context.Context, spec Spec) (Image, error) {
	if err := Validate([]Spec{spec}); err != nil {
		return Image{}, err
	}
	ph := report.For(d.rep, "build")
	spec.CacheFrom = d.dropLoopingCaches(ctx, spec, ph)
	img, lines, err := d.run(ctx, spec, ph)
	if err == nil || ctx.Err() != nil {
		return img, err
	}
	why, imported, ok := cacheBroke(lines)
	switch {
	case !ok || imported && len(spec.CacheFrom) == 0:
		return img, err
	case len(spec.CacheFrom) > 0:
		ph.Warnf("%s: the build failed on its registry cache (%s); building again without --cache-from", spec.Name, why)
		spec.CacheFrom = nil
	default:
		ph.Warnf("%s: the build failed on the engine's build cache (%s); building again", spec.Name, why)
	}
	img, _, err = d.run(ctx, spec, ph)
	return img, err
}

// cacheBroke says whether a failed build's output shows that it failed on
// a build cache, and nothing else. It returns the error to name, and
// whether it was the import of a --cache-from image:
//   - every step that printed an ERROR is an "importing cache manifest
//     from" step (imported);
//   - or no step printed one and the build's last line is BuildKit's
//     "invalid incomplete links": a cache graph with broken links. Docker
//     Engine 20.10's BuildKit (Debian's docker.io) ends a build there when
//     the graph came from an inline cache (moby/buildkit#1509, fixed by
//     #1659 in later BuildKits), and also, with no cache import at all,
//     when builds of one Dockerfile run at once on the engine: measured
//     here, 5 of 180 builds of the example's next image, four at a time
//     (imported when a cache was imported).
func cacheBroke(lines []string) (why string, imported, ok bool) {
	importing := map[string]bool{}
	last := ""
	for _, l := range lines {
		if t := strings.TrimSpace(l); t != "" {
			last = t
		}
		step, rest, ok := strings.Cut(l, " ")
		if !ok || !strings.HasPrefix(step, "#") {
			continue
		}
		switch {
		case strings.HasPrefix(rest, "importing cache manifest from "):
			importing[step] = true
		case strings.HasPrefix(rest, "ERROR"):
			if !importing[step] {
				return "", false, false // another step failed: a real failure
			}
			if why == "" {
				why = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(rest, "ERROR"), ":"))
			}
		}
	}
	if why == "" && strings.Contains(last, "invalid incomplete links") {
		why = last
	}
	return why, len(importing) > 0, why != ""
}

// run is one `docker build` of spec, with the output's lines.
func (d *Docker) run(ctx context.Context, spec Spec, ph *report.Phase) (Image, []string, error) {
	tmp, err := os.MkdirTemp("", "ctjdeploy-build-")
	if err != nil {
		return Image{}, nil, err
	}
	defer os.RemoveAll(tmp)
	iid := filepath.Join(tmp, "iid")
	env, err := d.environ(tmp)
	if err != nil {
		return Image{}, nil, err
	}
	cmd := exec.CommandContext(ctx, d.bin, args(spec, iid)...)
	cmd.Env = env
	cmd.Dir = spec.Context
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.WaitDelay = 5 * time.Second
	var lines []string
	var lineErr error // a panic reading the output (safego)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer safego.Recover("reading the build output of "+spec.Name, func(e error) { lineErr = e; _, _ = io.Copy(io.Discard, pr) })
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			l := sc.Text()
			lines = append(lines, l)
			ph.Line(spec.Name, l)
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err = cmd.Run()
	pw.Close()
	<-done
	if err == nil && lineErr != nil {
		return Image{}, lines, lineErr
	}
	if err != nil {
		if ctx.Err() != nil {
			return Image{}, lines, fmt.Errorf("build of %s stopped: %w", spec.Name, ctx.Err())
		}
		return Image{}, lines, d.failure(spec, lines, err)
	}
	id, err := os.ReadFile(iid)
	if err != nil || !strings.HasPrefix(string(id), "sha256:") {
		return Image{}, lines, fmt.Errorf("build of %s: docker build succeeded but wrote no image id", spec.Name)
	}
	return Image{Name: spec.Name, LocalRef: spec.Tag, ID: strings.TrimSpace(string(id))}, lines, nil
}

// environ is the docker CLI's environment: BuildKit on, and with a
// credential helper a private DOCKER_CONFIG and PATH entry under tmp.
func (d *Docker) environ(tmp string) ([]string, error) {
	env := append(os.Environ(), "DOCKER_BUILDKIT=1")
	if d.helperBin == "" || len(d.registries) == 0 {
		return env, nil
	}
	binDir := filepath.Join(tmp, "bin")
	cfgDir := filepath.Join(tmp, "config")
	if err := os.Mkdir(binDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Mkdir(cfgDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Symlink(d.helperBin, filepath.Join(binDir, "docker-credential-"+d.helperName)); err != nil {
		return nil, err
	}
	cfg := dockerConfig(userDockerConfig(), d.helperName, d.registries)
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), data, 0o600); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(env)+len(d.helperEnv)+2)
	for _, kv := range env {
		if strings.HasPrefix(kv, "DOCKER_CONFIG=") || strings.HasPrefix(kv, "PATH=") {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, "DOCKER_CONFIG="+cfgDir, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return append(out, d.helperEnv...), nil
}

// userDockerConfig reads the user's docker config.json (DOCKER_CONFIG or
// ~/.docker), nil if there is none.
func userDockerConfig() map[string]any {
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil
		}
		dir = filepath.Join(home, ".docker")
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	return m
}

// dockerConfig is the temporary config.json: the user's credential helpers
// and store (so private base images still pull), with the given registries
// sent to helper. Stored credentials ("auths") are not copied.
func dockerConfig(user map[string]any, helper string, registries []string) map[string]any {
	out := map[string]any{}
	helpers := map[string]any{}
	if user != nil {
		if s, ok := user["credsStore"].(string); ok && s != "" {
			out["credsStore"] = s
		}
		if h, ok := user["credHelpers"].(map[string]any); ok {
			for k, v := range h {
				helpers[k] = v
			}
		}
	}
	for _, r := range registries {
		helpers[r] = helper
	}
	out["credHelpers"] = helpers
	return out
}

var (
	stepRE  = regexp.MustCompile(`^#(\d+) (\[.*)$`)
	errorRE = regexp.MustCompile(`^#(\d+) ERROR: (.*)$`)
)

// failedStep finds, in BuildKit plain output, the step that failed and its
// error line.
func failedStep(lines []string) (step, msg string) {
	titles := map[string]string{}
	for _, l := range lines {
		if m := stepRE.FindStringSubmatch(l); m != nil {
			if _, ok := titles[m[1]]; !ok {
				titles[m[1]] = m[2]
			}
		}
	}
	for _, l := range lines {
		if m := errorRE.FindStringSubmatch(l); m != nil {
			return titles[m[1]], m[2]
		}
	}
	for _, l := range lines {
		if after, ok := strings.CutPrefix(strings.TrimSpace(l), "> "); ok && strings.HasPrefix(after, "[") {
			return strings.TrimSuffix(after, ":"), ""
		}
	}
	return "", ""
}

func (d *Docker) failure(spec Spec, lines []string, runErr error) error {
	all := strings.ToLower(strings.Join(lines, "\n"))
	if strings.Contains(all, "cannot connect to the docker daemon") || strings.Contains(all, "error during connect") {
		return fmt.Errorf("build of %s: cannot reach the Docker engine (DOCKER_HOST %s): %s; the docker CLI %s reads DOCKER_HOST (or its current context): start the engine or set DOCKER_HOST",
			spec.Name, dockerHost(), lastLine(lines), d.bin)
	}
	if lostEngine(lastLine(lines)) {
		return fmt.Errorf("build of %s: the connection to the Docker engine (DOCKER_HOST %s) broke off mid-build: %s (%v); the engine stopped or restarted: check it (`docker info`, the engine's log) and deploy again",
			spec.Name, dockerHost(), lastLine(lines), runErr)
	}
	tail := lines
	if len(tail) > d.tailLines {
		tail = tail[len(tail)-d.tailLines:]
	}
	step, msg := failedStep(lines)
	where := ""
	if step != "" {
		where = " at step " + step
	}
	if msg != "" {
		where += ": " + msg
	}
	return fmt.Errorf("build of %s (%s) failed%s (%v); last lines:\n%s", spec.Name, spec.Dockerfile, where, runErr, strings.Join(tail, "\n"))
}

// dockerHost is DOCKER_HOST as messages name it.
func dockerHost() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return "unset: the default socket unix:///var/run/docker.sock"
}

// lostEngine says whether the docker CLI's last line is a build stream that
// broke off: the CLI ends such a build with no error of its own but that
// no image id came ("server did not provide an image ID"), or with the
// connection's error.
func lostEngine(last string) bool {
	l := strings.ToLower(last)
	for _, s := range []string{"server did not provide an image id", "connection reset by peer", "unexpected eof", "error reading from server", "broken pipe"} {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func lastLine(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if s := strings.TrimSpace(lines[i]); s != "" {
			return s
		}
	}
	return ""
}

// BuildAll validates every spec (invalid inputs: exit 2 before any build
// starts), then builds them concurrently. It returns the images in the
// order of specs, or every build's error.
func BuildAll(ctx context.Context, b Builder, specs []Spec, r report.Reporter) ([]Image, error) {
	if err := Validate(specs); err != nil {
		return nil, err
	}
	ph := report.For(r, "build")
	out := make([]Image, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer safego.Recover("building "+s.Name, func(e error) { errs[i] = e })
			t0 := time.Now()
			img, err := b.Build(ctx, s)
			if err != nil {
				errs[i] = err
				return
			}
			out[i] = img
			ph.Fields(fmt.Sprintf("built %s: %s (%s) in %.1fs", s.Name, img.LocalRef, shortID(img.ID), time.Since(t0).Seconds()),
				map[string]any{"image": s.Name, "ref": img.LocalRef, "id": img.ID, "seconds": time.Since(t0).Seconds()})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
