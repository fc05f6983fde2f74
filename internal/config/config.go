// Package config reads ctjdeploy.yaml: a strict YAML file whose every error
// names the file, the line and the key, and resolves relative paths against
// the file's folder. Loading contacts nothing.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// DefaultFile is the config file looked up in the working directory.
const DefaultFile = "ctjdeploy.yaml"

// File is a loaded config file.
type File struct {
	Path         string // absolute path of the file
	Dir          string // its folder; relative paths resolve against it
	Environments map[string]*Environment
}

// Environment is one key under `environments:`.
type Environment struct {
	Name           string
	Region         string
	Cluster        string
	Service        string
	TaskDefinition string // absolute path of the template
	// Registry is host[:port] without a scheme. Empty means the account's
	// ECR registry, <account>.dkr.ecr.<region>.amazonaws.com.
	Registry  string
	Terraform *Terraform // nil when the environment reads no Terraform outputs
	Images    map[string]*Image
	// EphemeralDatabase says, on purpose, that every deploy starts with an
	// empty database: the data guard then warns instead of refusing when the
	// postgres container has no persistent volume.
	EphemeralDatabase bool
	// SecretEnv names more {{ env }} variables whose values are secret
	// (config secret_env:, names or path.Match patterns), besides the
	// default *SECRET*, *TOKEN*, *PASSWORD*, *_KEY.
	SecretEnv []string
	// Smoke are the checks a deploy runs after the rollout (config smoke:).
	Smoke []Smoke
	// URL is the environment's address for GitHub (config url:; default
	// the first smoke URL).
	URL string
	// Lock is the deploy lock (config lock:); nil: the default lock.
	Lock *Lock
	// FailureThreshold is how many tasks of ctjdeploy's own deployment may
	// stop failing, on a service that neither a circuit breaker nor alarms
	// watch, before ctjdeploy rolls it back itself (config
	// failure_threshold:, default DefaultFailureThreshold).
	FailureThreshold int
	// Local is how `ENV local` runs the task definition on this machine
	// (config local:); never nil after Load.
	Local *Local
	// Line is where the environment is declared, for messages.
	Line int
}

// Lock is the deploy lock of an environment (config lock:): an SSM
// parameter a deploy creates before its first write and deletes at its end.
//
//	lock: /ctjdeploy/stage/lock          # the parameter's name
//	lock: {parameter: NAME, ttl: 45m}    # and how long an unreleased lock holds
//	lock: false                          # no lock (one deployer only)
type Lock struct {
	Off       bool
	Parameter string        // "": DefaultLockParameter(cluster, service)
	TTL       time.Duration // 0: DefaultLockTTL
}

// DefaultLockTTL is how long a deploy lock holds when its run did not
// release it (killed, a lost runner): an older one is taken over with a
// warning. It exceeds a deploy's default budget (build, push and the 15 min
// --timeout).
const DefaultLockTTL = 30 * time.Minute

// DefaultLockParameter is the SSM parameter of a service's deploy lock when
// the config names none.
func DefaultLockParameter(cluster, service string) string {
	return "/ctjdeploy/" + cluster + "/" + service + "/lock"
}

// LockParameter is the environment's deploy lock parameter, "" with
// lock: false.
func (e *Environment) LockParameter() string {
	switch {
	case e.Lock != nil && e.Lock.Off:
		return ""
	case e.Lock != nil && e.Lock.Parameter != "":
		return e.Lock.Parameter
	}
	return DefaultLockParameter(e.Cluster, e.Service)
}

// LockTTL is how long the environment's deploy lock holds unreleased.
func (e *Environment) LockTTL() time.Duration {
	if e.Lock != nil && e.Lock.TTL > 0 {
		return e.Lock.TTL
	}
	return DefaultLockTTL
}

// ssmNameRE is an SSM parameter name (AWS Systems Manager User Guide,
// "Parameter name requirements": letters, digits and _.-/; a hierarchy
// begins with /; at most 1011 characters; not beginning with aws or ssm).
var ssmNameRE = regexp.MustCompile(`^/?[a-zA-Z0-9_.\-]+(/[a-zA-Z0-9_.\-]+)*$`)

// SSMParameterName reports whether v is a valid SSM parameter name (see
// ssmNameRE).
func SSMParameterName(v string) bool {
	low := strings.ToLower(strings.TrimPrefix(v, "/"))
	return len(v) <= 1011 && ssmNameRE.MatchString(v) && (!strings.Contains(v, "/") || strings.HasPrefix(v, "/")) &&
		!strings.HasPrefix(low, "aws") && !strings.HasPrefix(low, "ssm") && strings.Count(v, "/") <= 15
}

func (d *decoder) lock(n *yaml.Node, p string) (*Lock, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		on, err := d.boolean(n, p)
		if err != nil {
			return nil, err
		}
		return &Lock{Off: !on}, nil
	}
	l := &Lock{}
	pn, pp := n, p
	if n.Kind == yaml.MappingNode {
		m, err := d.mapping(n, p, []string{"parameter", "ttl"}, nil)
		if err != nil {
			return nil, err
		}
		if tn, ok := m["ttl"]; ok {
			v, err := time.ParseDuration(tn.Value)
			if err != nil || tn.Kind != yaml.ScalarNode || v < time.Minute || v > 24*time.Hour {
				return nil, d.errf(tn, "%s.ttl %q is not a duration between 1m and 24h (e.g. 45m)", p, tn.Value)
			}
			l.TTL = v
		}
		pn, pp = m["parameter"], p+".parameter"
		if pn == nil {
			return l, nil
		}
	}
	v, err := d.str(pn, pp, true)
	if err != nil {
		return nil, d.errf(pn, "%s must be an SSM parameter name (e.g. /ctjdeploy/stage/lock), {parameter: NAME, ttl: DURATION}, or false", p)
	}
	if !SSMParameterName(v) {
		return nil, d.errf(pn, "%s %q is not an SSM parameter name: letters, digits and _ . - separated by /, beginning with / when it has levels, at most 15 levels and 1011 characters, not beginning with aws or ssm (e.g. /ctjdeploy/stage/lock)", pp, v)
	}
	l.Parameter = v
	return l, nil
}

// DefaultFailureThreshold is failure_threshold when the config gives none.
const DefaultFailureThreshold = 3

// DefaultLocalPort is the local load balancer's port when the config and
// the command line give none.
const DefaultLocalPort = 8080

// Local is the config's local: block (`ENV local`).
type Local struct {
	EnvFile string            // absolute path of a dotenv file; "" when not given
	Values  map[string]string // Terraform output values used locally, before terraform:
	Port    int               // the local load balancer's port (DefaultLocalPort)
	Routes  []Route           // first match wins; none: every path to the first container with a port mapping
}

// Route sends requests whose path matches Path (ALB path-pattern syntax:
// * any run of characters, ? one character, case-sensitive) to Container's
// mapped port.
type Route struct {
	Path      string
	Container string
}

// Smoke is one smoke check: GET URL until it answers Status with a body
// holding Contains, or Timeout passes.
type Smoke struct {
	URL      string
	Status   int           // default 200
	Contains string        // optional
	Timeout  time.Duration // default 2m
}

// Terraform says where `terraform output` runs.
type Terraform struct {
	Dir       string // absolute
	Workspace string // optional: `terraform workspace select` first
	Init      bool   // optional: run `terraform init` before reading outputs
}

// Image is one image the environment builds.
type Image struct {
	Name       string // the key under images:, used by {{ image "name" }}
	Repository string
	Context    string // absolute
	Dockerfile string // absolute
	Target     string // optional build stage
	BuildArgs  map[string]string
}

// ImageNames lists the environment's image names, sorted.
func (e *Environment) ImageNames() []string {
	names := make([]string, 0, len(e.Images))
	for n := range e.Images {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Names lists the environments, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Environments))
	for n := range f.Environments {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Env returns the named environment, or an invalid-input error listing the
// environments the file has.
func (f *File) Env(name string) (*Environment, error) {
	if e, ok := f.Environments[name]; ok {
		return e, nil
	}
	return nil, exitcode.Invalidf("%s: no environment %q; the file defines: %s",
		f.Path, name, strings.Join(f.Names(), ", "))
}

// MaxFileSize bounds the config file: a real one is a few kilobytes, and
// YAML decoding takes many times its size in memory.
const MaxFileSize = 1 << 20

// Load reads and validates the config file at path. Every error it returns
// has exit code 2 (invalid).
func Load(path string) (*File, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, exitcode.Invalidf("config %s: %v", path, err)
	}
	data, err := ReadBounded(abs, MaxFileSize, "config file")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, exitcode.Invalidf("config file %s not found: run ctjdeploy where %s is, or pass --config PATH", abs, DefaultFile)
		}
		return nil, err
	}
	return Parse(abs, data)
}

// ReadBounded reads the file at path, refusing (exit 2) one larger than max
// bytes before reading it whole: its size is checked first, and at most
// max+1 bytes are read (a file that grows, or a device, stops there). what
// names the file in messages ("config file", "task definition template").
// A file that does not exist gives an error that errors.Is os.ErrNotExist.
func ReadBounded(path string, max int64, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, exitcode.Wrap(exitcode.Invalid, fmt.Errorf("%s %s: %w", what, path, err))
		}
		return nil, exitcode.Invalidf("%s %s: %v", what, path, err)
	}
	defer f.Close()
	tooBig := func() error {
		return exitcode.Invalidf("%s %s is larger than %d KiB (%d bytes), the most ctjdeploy reads: a %s is a few kilobytes; check that --config or the path points at the right file", what, path, max>>10, max, what)
	}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > max {
		return nil, tooBig()
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, exitcode.Invalidf("%s %s: %v", what, path, err)
	}
	if int64(len(data)) > max {
		return nil, tooBig()
	}
	return data, nil
}

// Parse validates data as the config file at path (absolute).
//
// Every path in it (task_definition, images.*.context, images.*.dockerfile,
// terraform.dir, local.env_file) must resolve inside the git repository
// that holds the config: the nearest folder above it with a .git (a folder,
// or the file of a worktree or submodule). A config outside any git
// repository keeps its paths inside its own folder. An absolute path, a ..
// that leaves the boundary, and a symlink (of a path that exists, or of its
// nearest existing parent) that leads out of it are refused, naming the
// key: a Dockerfile of /proc/self/environ would print the build's
// environment, credentials included.
func Parse(path string, data []byte) (*File, error) {
	if len(data) > MaxFileSize {
		return nil, exitcode.Invalidf("config file %s is larger than %d KiB, the most ctjdeploy reads", path, MaxFileSize>>10)
	}
	d := &decoder{file: path, dir: filepath.Dir(path)}
	d.root = repoRoot(d.dir)
	d.realRoot = resolveExisting(d.root)
	f, err := d.file0(data)
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Invalid, err)
	}
	return f, nil
}

var (
	envNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	// ECR repository names: lowercase, digits, and . _ - / separators.
	repoRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$`)
	// An image name is used in templates: {{ image "django" }}.
	imageNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	regionRE    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)
	registryRE  = regexp.MustCompile(`^(?:[A-Za-z0-9.-]+|\[::1\])(:\d+)?$`)
	// ECR private registry endpoints, per "Amazon ECR private registry" and
	// "Amazon Elastic Container Registry endpoints and quotas" (standard,
	// FIPS and China partitions).
	ecrHostRE = regexp.MustCompile(`^([0-9]{12})\.dkr\.(?:ecr|ecr-fips)\.[a-z]{2}(?:-[a-z]+)+-[0-9]+\.amazonaws\.com(?:\.cn)?$`)
)

type decoder struct {
	file     string
	dir      string
	root     string // the boundary of every path: the git repository holding the config, or its folder
	realRoot string // root with its symlinks resolved
}

// repoRoot is the nearest folder at or above dir holding .git (a folder,
// or the file of a worktree or submodule); dir itself when there is none.
func repoRoot(dir string) string {
	for d := dir; ; {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return dir
		}
		d = parent
	}
}

// resolveExisting resolves the symlinks of p's longest existing prefix and
// appends the rest unchanged.
func resolveExisting(p string) string {
	rest := ""
	for d := p; ; {
		if r, err := filepath.EvalSymlinks(d); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(d)
		if parent == d {
			return p
		}
		rest = filepath.Join(filepath.Base(d), rest)
		d = parent
	}
}

// inside reports whether p is root or below it (both clean and absolute).
func inside(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

func (d *decoder) errf(n *yaml.Node, format string, args ...any) error {
	if n == nil || n.Line == 0 {
		return fmt.Errorf("%s: %s", d.file, fmt.Sprintf(format, args...))
	}
	return fmt.Errorf("%s:%d: %s", d.file, n.Line, fmt.Sprintf(format, args...))
}

func (d *decoder) file0(data []byte) (*File, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, d.errf(nil, "the file is empty; it needs an `environments:` mapping")
		}
		return nil, d.errf(nil, "not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, d.errf(&extra, "a second YAML document; the config is one document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	top, err := d.mapping(root, "", []string{"environments"}, []string{"environments"})
	if err != nil {
		return nil, err
	}
	envsNode := top["environments"]
	envs, err := d.mapping(envsNode, "environments", nil, nil)
	if err != nil {
		return nil, err
	}
	if len(envs) == 0 {
		return nil, d.errf(envsNode, "environments: is empty; define at least one environment, e.g. `stage:`")
	}
	f := &File{Path: d.file, Dir: d.dir, Environments: map[string]*Environment{}}
	for _, k := range keyNodes(envsNode) {
		name := k.Value
		if !envNameRE.MatchString(name) {
			return nil, d.errf(k, "environment name %q: use letters, digits, '.', '_' or '-'", name)
		}
		if isCommandWord(name) {
			return nil, d.errf(k, "environment name %q is a ctjdeploy command; choose another name", name)
		}
		env, err := d.environment(name, envs[name])
		if err != nil {
			return nil, err
		}
		env.Line = k.Line
		f.Environments[name] = env
	}
	return f, nil
}

// CommandWords are words that cannot name an environment because they are
// commands.
var CommandWords = []string{"version", "help", "completion", "deploy", "rollback", "status", "history", "iam-policy", "doctor", "local"}

func isCommandWord(s string) bool {
	for _, w := range CommandWords {
		if s == w {
			return true
		}
	}
	return false
}

func (d *decoder) environment(name string, n *yaml.Node) (*Environment, error) {
	p := "environments." + name
	keys := []string{"region", "cluster", "service", "task_definition", "registry", "terraform", "images", "ephemeral_database", "smoke", "url", "secret_env", "lock", "failure_threshold", "local"}
	req := []string{"region", "cluster", "service", "task_definition", "images"}
	m, err := d.mapping(n, p, keys, req)
	if err != nil {
		return nil, err
	}
	e := &Environment{Name: name, Images: map[string]*Image{}, FailureThreshold: DefaultFailureThreshold, Local: &Local{Port: DefaultLocalPort}}
	if e.Region, err = d.str(m["region"], p+".region", true); err != nil {
		return nil, err
	}
	if !regionRE.MatchString(e.Region) {
		return nil, d.errf(m["region"], "%s.region %q is not an AWS region (e.g. us-west-2)", p, e.Region)
	}
	if e.Cluster, err = d.str(m["cluster"], p+".cluster", true); err != nil {
		return nil, err
	}
	if e.Service, err = d.str(m["service"], p+".service", true); err != nil {
		return nil, err
	}
	if e.TaskDefinition, err = d.path(m["task_definition"], p+".task_definition"); err != nil {
		return nil, err
	}
	if rn, ok := m["registry"]; ok {
		if e.Registry, err = d.registry(rn, p+".registry"); err != nil {
			return nil, err
		}
	}
	if tn, ok := m["terraform"]; ok {
		if e.Terraform, err = d.terraform(tn, p+".terraform"); err != nil {
			return nil, err
		}
	}
	if en, ok := m["ephemeral_database"]; ok {
		if e.EphemeralDatabase, err = d.boolean(en, p+".ephemeral_database"); err != nil {
			return nil, err
		}
	}
	if sn, ok := m["secret_env"]; ok {
		if e.SecretEnv, err = d.secretEnv(sn, p+".secret_env"); err != nil {
			return nil, err
		}
	}
	if sn, ok := m["smoke"]; ok {
		if e.Smoke, err = d.smoke(sn, p+".smoke"); err != nil {
			return nil, err
		}
	}
	if ln, ok := m["lock"]; ok {
		if e.Lock, err = d.lock(ln, p+".lock"); err != nil {
			return nil, err
		}
	}
	if fn, ok := m["failure_threshold"]; ok {
		v, err := strconv.Atoi(fn.Value)
		if err != nil || fn.Kind != yaml.ScalarNode || fn.Tag != "!!int" || v < 1 || v > 100 {
			return nil, d.errf(fn, "%s.failure_threshold %q is not a whole number between 1 and 100 (failed tasks of ctjdeploy's deployment before it rolls back a service that no circuit breaker watches; default %d)", p, fn.Value, DefaultFailureThreshold)
		}
		e.FailureThreshold = v
	}
	if ln, ok := m["local"]; ok {
		if e.Local, err = d.local(ln, p+".local"); err != nil {
			return nil, err
		}
	}
	if un, ok := m["url"]; ok {
		if e.URL, err = d.str(un, p+".url", true); err != nil {
			return nil, err
		}
		if u, perr := url.Parse(e.URL); perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, d.errf(un, "%s.url %q is not an http(s) URL", p, e.URL)
		}
	}
	if e.URL == "" && len(e.Smoke) > 0 {
		e.URL = e.Smoke[0].URL
	}
	if e.Images, err = d.images(m["images"], p+".images"); err != nil {
		return nil, err
	}
	return e, nil
}

// registry reads registry: host or host:port of an ECR registry or a
// loopback test registry (AllowedRegistry); "" when empty.
func (d *decoder) registry(rn *yaml.Node, p string) (string, error) {
	reg, err := d.str(rn, p, false)
	if err != nil {
		return "", err
	}
	reg = strings.TrimSuffix(reg, "/")
	if reg != "" && !registryRE.MatchString(reg) {
		return "", d.errf(rn, "%s %q: give host or host:port, without scheme or path (e.g. 123456789012.dkr.ecr.us-west-2.amazonaws.com)", p, reg)
	}
	if reg != "" && !AllowedRegistry(reg) {
		return "", d.errf(rn, "%s %q is not an ECR registry host (<account>.dkr.ecr.<region>.amazonaws.com, the ecr-fips form, or the .amazonaws.com.cn form) nor a loopback address with a port (127.0.0.1:5000, [::1]:5000, localhost:5000); the ECR token is sent to this host only, so other hosts are refused", p, reg)
	}
	return reg, nil
}

// secretEnv reads secret_env: a list of variable names or path.Match
// patterns.
func (d *decoder) secretEnv(sn *yaml.Node, p string) ([]string, error) {
	if sn.Kind != yaml.SequenceNode {
		return nil, d.errf(sn, "%s must be a list of variable names or patterns (e.g. [DJANGO_*, SENTRY_DSN])", p)
	}
	var out []string
	for i, it := range sn.Content {
		v, err := d.str(it, fmt.Sprintf("%s[%d]", p, i), true)
		if err != nil {
			return nil, err
		}
		if _, perr := path.Match(v, ""); perr != nil {
			return nil, d.errf(it, "%s[%d] %q is not a valid pattern: %v", p, i, v, perr)
		}
		out = append(out, v)
	}
	return out, nil
}

// images reads images: at least one, by name.
func (d *decoder) images(imgs *yaml.Node, p string) (map[string]*Image, error) {
	im, err := d.mapping(imgs, p, nil, nil)
	if err != nil {
		return nil, err
	}
	if len(im) == 0 {
		return nil, d.errf(imgs, "%s is empty; name at least one image (e.g. django: {repository: ..., context: ..., dockerfile: ...})", p)
	}
	out := map[string]*Image{}
	for _, k := range keyNodes(imgs) {
		if !imageNameRE.MatchString(k.Value) {
			return nil, d.errf(k, "image name %q: use letters, digits, '_' or '-'", k.Value)
		}
		img, err := d.image(k.Value, im[k.Value], p+"."+k.Value)
		if err != nil {
			return nil, err
		}
		out[k.Value] = img
	}
	return out, nil
}

// smoke reads the smoke: list (contract: url, status default 200,
// contains, timeout default 2m).
func (d *decoder) smoke(n *yaml.Node, p string) ([]Smoke, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, d.errf(n, "%s must be a list of checks (- url: https://..., status: 200, contains: ..., timeout: 2m)", p)
	}
	var out []Smoke
	for i, item := range n.Content {
		ip := fmt.Sprintf("%s[%d]", p, i)
		m, err := d.mapping(item, ip, []string{"url", "status", "contains", "timeout"}, []string{"url"})
		if err != nil {
			return nil, err
		}
		c := Smoke{Status: 200, Timeout: 2 * time.Minute}
		if c.URL, err = d.str(m["url"], ip+".url", true); err != nil {
			return nil, err
		}
		u, perr := url.Parse(c.URL)
		if perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, d.errf(m["url"], "%s.url %q is not an http(s) URL", ip, c.URL)
		}
		if a := net.ParseIP(strings.Trim(u.Hostname(), "[]")); a != nil && BlockedSmokeIP(a) {
			return nil, d.errf(m["url"], "%s.url %q is a link-local or instance metadata address (%s): a smoke check would fetch the runner's own credentials; give the environment's public URL", ip, c.URL, a)
		}
		if sn, ok := m["status"]; ok {
			v, err := strconv.Atoi(sn.Value)
			if err != nil || sn.Kind != yaml.ScalarNode || v < 100 || v > 599 {
				return nil, d.errf(sn, "%s.status %q is not an HTTP status code (100-599)", ip, sn.Value)
			}
			c.Status = v
		}
		if cn, ok := m["contains"]; ok {
			if c.Contains, err = d.str(cn, ip+".contains", false); err != nil {
				return nil, err
			}
		}
		if tn, ok := m["timeout"]; ok {
			v, err := time.ParseDuration(tn.Value)
			if err != nil || tn.Kind != yaml.ScalarNode || v <= 0 || v > time.Hour {
				return nil, d.errf(tn, "%s.timeout %q is not a duration between 1s and 1h (e.g. 2m)", ip, tn.Value)
			}
			c.Timeout = v
		}
		out = append(out, c)
	}
	return out, nil
}

// metadataV6 holds the addresses of the EC2 instance's own services over
// IPv6 on Nitro instances: the instance metadata service fd00:ec2::254,
// the DNS resolver fd00:ec2::253, the time service fd00:ec2::123 ("Access
// instance metadata for an EC2 instance", "Amazon Route 53 Resolver", Amazon
// EC2 User Guide).
var metadataV6 = &net.IPNet{IP: net.ParseIP("fd00:ec2::"), Mask: net.CIDRMask(32, 128)}

// BlockedSmokeIP reports whether a smoke check may not connect to ip: a
// link-local address (169.254.0.0/16, which holds the instance metadata
// service 169.254.169.254 and the ECS task credentials endpoint
// 169.254.170.2; fe80::/10) or the instance's IPv6 metadata addresses
// (fd00:ec2::/32). The config refuses such a URL, and deploy/smoke refuses
// the address a name resolves to when it connects.
func BlockedSmokeIP(ip net.IP) bool {
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || metadataV6.Contains(ip)
}

// routePathRE is an ALB path pattern: up to 128 characters of A-Z, a-z,
// 0-9 and _ - . $ / ~ " ' @ : + & (as &amp;) with the wildcards * and ?
// (Elastic Load Balancing, "Listener rules: path conditions").
var routePathRE = regexp.MustCompile(`^/[A-Za-z0-9_\-.$/~"'@:+&*?]{0,127}$`)

// local reads the local: block.
func (d *decoder) local(n *yaml.Node, p string) (*Local, error) {
	m, err := d.mapping(n, p, []string{"env_file", "values", "port", "routes"}, nil)
	if err != nil {
		return nil, err
	}
	l := &Local{Port: DefaultLocalPort}
	if en, ok := m["env_file"]; ok {
		if l.EnvFile, err = d.path(en, p+".env_file"); err != nil {
			return nil, err
		}
	}
	if vn, ok := m["values"]; ok {
		vm, err := d.mapping(vn, p+".values", nil, nil)
		if err != nil {
			return nil, err
		}
		l.Values = map[string]string{}
		for _, k := range keyNodes(vn) {
			v := vm[k.Value]
			if v.Kind != yaml.ScalarNode {
				return nil, d.errf(v, "%s.values.%s must be a string, number or boolean (a Terraform output value)", p, k.Value)
			}
			l.Values[k.Value] = v.Value
		}
	}
	if pn, ok := m["port"]; ok {
		v, err := strconv.Atoi(pn.Value)
		if err != nil || pn.Kind != yaml.ScalarNode || v < 1 || v > 65535 {
			return nil, d.errf(pn, "%s.port %q is not a TCP port (1-65535)", p, pn.Value)
		}
		l.Port = v
	}
	if rn, ok := m["routes"]; ok {
		if rn.Kind != yaml.SequenceNode {
			return nil, d.errf(rn, "%s.routes must be a list of {path: /api/*, container: django}", p)
		}
		for i, it := range rn.Content {
			ip := fmt.Sprintf("%s.routes[%d]", p, i)
			rm, err := d.mapping(it, ip, []string{"path", "container"}, []string{"path", "container"})
			if err != nil {
				return nil, err
			}
			var r Route
			if r.Path, err = d.str(rm["path"], ip+".path", true); err != nil {
				return nil, err
			}
			if !routePathRE.MatchString(r.Path) {
				return nil, d.errf(rm["path"], "%s.path %q is not a load balancer path pattern (begins with /, at most 128 characters, * and ? as wildcards, e.g. /api/*)", ip, r.Path)
			}
			if r.Container, err = d.str(rm["container"], ip+".container", true); err != nil {
				return nil, err
			}
			l.Routes = append(l.Routes, r)
		}
	}
	return l, nil
}

func (d *decoder) terraform(n *yaml.Node, p string) (*Terraform, error) {
	m, err := d.mapping(n, p, []string{"dir", "workspace", "init"}, []string{"dir"})
	if err != nil {
		return nil, err
	}
	t := &Terraform{}
	if t.Dir, err = d.path(m["dir"], p+".dir"); err != nil {
		return nil, err
	}
	if wn, ok := m["workspace"]; ok {
		if t.Workspace, err = d.str(wn, p+".workspace", false); err != nil {
			return nil, err
		}
	}
	if in, ok := m["init"]; ok {
		if t.Init, err = d.boolean(in, p+".init"); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (d *decoder) image(name string, n *yaml.Node, p string) (*Image, error) {
	m, err := d.mapping(n, p, []string{"repository", "context", "dockerfile", "target", "build_args"}, []string{"repository", "context", "dockerfile"})
	if err != nil {
		return nil, err
	}
	img := &Image{Name: name}
	if img.Repository, err = d.str(m["repository"], p+".repository", true); err != nil {
		return nil, err
	}
	if !repoRE.MatchString(img.Repository) {
		return nil, d.errf(m["repository"], "%s.repository %q is not a repository name (lowercase letters, digits, '.', '_', '-', '/'), e.g. civic-tech-jobs-backend", p, img.Repository)
	}
	if img.Context, err = d.path(m["context"], p+".context"); err != nil {
		return nil, err
	}
	if img.Dockerfile, err = d.path(m["dockerfile"], p+".dockerfile"); err != nil {
		return nil, err
	}
	if tn, ok := m["target"]; ok {
		if img.Target, err = d.str(tn, p+".target", false); err != nil {
			return nil, err
		}
	}
	if bn, ok := m["build_args"]; ok {
		bm, err := d.mapping(bn, p+".build_args", nil, nil)
		if err != nil {
			return nil, err
		}
		img.BuildArgs = map[string]string{}
		for k, v := range bm {
			if v.Kind != yaml.ScalarNode {
				return nil, d.errf(v, "%s.build_args.%s must be a string", p, k)
			}
			img.BuildArgs[k] = v.Value
		}
	}
	return img, nil
}

// mapping checks that n is a mapping whose keys are all in known (nil: any
// key) and that every key of required is present. It returns key → value.
func (d *decoder) mapping(n *yaml.Node, p string, known, required []string) (map[string]*yaml.Node, error) {
	where := p
	if where == "" {
		where = "the top level"
	}
	if n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		if len(required) > 0 {
			return nil, d.errf(n, "%s is empty; it needs %s", where, strings.Join(required, ", "))
		}
		return map[string]*yaml.Node{}, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, d.errf(n, "%s must be a mapping (key: value), not %s", where, kindName(n))
	}
	m := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, d.errf(k, "%s: keys must be plain words", where)
		}
		if _, dup := m[k.Value]; dup {
			return nil, d.errf(k, "key %q appears twice in %s", k.Value, where)
		}
		if known != nil && !contains(known, k.Value) {
			return nil, d.errf(k, "unknown key %q in %s (known keys: %s)", k.Value, where, strings.Join(known, ", "))
		}
		m[k.Value] = v
	}
	for _, r := range required {
		if _, ok := m[r]; !ok {
			return nil, d.errf(n, "%s is missing the required key %q", where, r)
		}
	}
	return m, nil
}

func keyNodes(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var ks []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		ks = append(ks, n.Content[i])
	}
	return ks
}

func (d *decoder) str(n *yaml.Node, p string, required bool) (string, error) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!int" && n.Tag != "!!null") {
		return "", d.errf(n, "%s must be a string, not %s", p, kindName(n))
	}
	v := n.Value
	if n.Tag == "!!null" {
		v = ""
	}
	v = strings.TrimSpace(v)
	if required && v == "" {
		return "", d.errf(n, "%s is empty; it is required", p)
	}
	return v, nil
}

func (d *decoder) boolean(n *yaml.Node, p string) (bool, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		return false, d.errf(n, "%s must be true or false", p)
	}
	return n.Value == "true" || n.Value == "True" || n.Value == "TRUE", nil
}

// path reads a path relative to the config's folder that must stay inside
// d.root (see Parse).
func (d *decoder) path(n *yaml.Node, p string) (string, error) {
	v, err := d.str(n, p, true)
	if err != nil {
		return "", err
	}
	where := "the git repository holding the config, " + d.root
	if d.root == d.dir {
		where = "the config's folder " + d.root + " (it is in no git repository)"
	}
	if filepath.IsAbs(v) || filepath.VolumeName(v) != "" {
		return "", d.errf(n, "%s %q is an absolute path: give a path relative to the config's folder, inside %s", p, v, where)
	}
	abs := filepath.Join(d.dir, v)
	if !inside(d.root, abs) {
		return "", d.errf(n, "%s %q leaves %s: every path in the config stays inside it", p, v, where)
	}
	if real := resolveExisting(abs); !inside(d.realRoot, real) {
		return "", d.errf(n, "%s %q leads through a symlink to %s, outside %s: every path in the config stays inside it", p, v, real, where)
	}
	return abs, nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!bool":
			return "a boolean"
		case "!!int", "!!float":
			return "a number"
		case "!!null":
			return "empty"
		}
		return "a string"
	}
	return "empty"
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// CheckFiles checks that the template, each build context and Dockerfile, and
// the Terraform folder exist. Deploys call it before anything is built;
// read-only commands need none of them. Errors have exit code 2.
func (e *Environment) CheckFiles(build bool) error {
	var probs []string
	check := func(what, p string, dir bool) {
		st, err := os.Stat(p)
		switch {
		case err != nil:
			probs = append(probs, fmt.Sprintf("%s %s does not exist", what, p))
		case dir && !st.IsDir():
			probs = append(probs, fmt.Sprintf("%s %s is not a folder", what, p))
		case !dir && st.IsDir():
			probs = append(probs, fmt.Sprintf("%s %s is a folder, not a file", what, p))
		}
	}
	check("task_definition template", e.TaskDefinition, false)
	if e.Terraform != nil {
		check("terraform.dir", e.Terraform.Dir, true)
	}
	if build {
		for _, n := range e.ImageNames() {
			img := e.Images[n]
			check("images."+n+".context", img.Context, true)
			check("images."+n+".dockerfile", img.Dockerfile, false)
		}
	}
	if len(probs) > 0 {
		return exitcode.Invalidf("environment %s: %s (paths in the config resolve against its folder)", e.Name, strings.Join(probs, "; "))
	}
	return nil
}

// AllowedRegistry reports whether reg (host or host:port, no scheme) is a
// registry ctjdeploy may send the ECR token to: an ECR private registry
// host (standard, FIPS, China) with no port or port 443, or a loopback
// address (127.0.0.0/8, ::1, localhost) with an explicit port, for tests.
func AllowedRegistry(reg string) bool {
	host, port := reg, ""
	if h, p, err := net.SplitHostPort(reg); err == nil {
		host, port = h, p
	} else if strings.Contains(reg, "]") || strings.Count(reg, ":") > 0 {
		return false
	}
	host = strings.ToLower(host)
	if ecrHostRE.MatchString(host) {
		if strings.Contains(host, ".dkr.ecr-fips.") && strings.HasSuffix(host, ".cn") {
			return false // there is no FIPS endpoint in the China partition
		}
		return port == "" || port == "443"
	}
	if port == "" {
		return false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return false
	}
	return IsLoopbackHost(host)
}

// ECRRegistryID returns the account id of an ECR private registry host
// (ACCOUNT.dkr.ecr[-fips].REGION.amazonaws.com[.cn], with or without a
// port), or "" for any other registry (a loopback test registry, Docker
// Hub). See "Amazon ECR private registry" in the Amazon ECR User Guide.
func ECRRegistryID(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if m := ecrHostRE.FindStringSubmatch(strings.ToLower(host)); m != nil {
		return m[1]
	}
	return ""
}

// IsLoopbackHost reports whether host (or host:port) names this machine:
// localhost, an address in 127.0.0.0/8 or ::1. Such registries are spoken
// to over plain HTTP and only they may be given a test registry's
// credentials.
func IsLoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback() && (ip.To4() != nil || ip.Equal(net.IPv6loopback))
}
