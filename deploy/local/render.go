// Package local runs an environment's own task definition on this
// machine (`ctjdeploy ENV local`, contract "Added 2026-12-04"): the same
// template a deploy renders, with the locally built images, run by
// internal/taskrun as ECS would run it, behind a local load balancer.
package local

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/deploy/taskdef"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/internal/taskrun"
	"github.com/hackforla/ctjdeploy/tfvars"
)

// EnvLabel is the label every container, the sandbox and every volume of
// `ENV local` carry, with the environment's name as value.
const EnvLabel = "ctjdeploy.env"

// NamePrefix starts the Docker names: ctjdeploy-ENV-CONTAINER for the
// containers, ctjdeploy-ENV-VOLUME for the volumes.
const NamePrefix = "ctjdeploy"

// Inputs are what the local render needs besides the config.
type Inputs struct {
	// Images maps each image name of the config to the local reference
	// that {{ image }} gives (built, or pulled with --no-build).
	Images map[string]string
	// Outputs are the Terraform outputs (nil when terraform: is not set or
	// did not answer); local.values come first.
	Outputs tfvars.Outputs
	// Getenv looks up {{ env }} variables and secrets missing from the
	// env_file (nil: os.LookupEnv).
	Getenv func(string) (string, bool)
}

// Task is the rendered local task.
type Task struct {
	Env      string
	Spec     taskrun.TaskSpec
	Routes   []Route
	Port     int
	Warnings []string
	// Secrets are, per container, the names of its secrets (their values
	// are in Spec and registered with report.AddSecret).
	Secrets map[string][]string
	// SecretFrom says where each secret name's value came from.
	SecretFrom map[string]string
}

// Route sends the requests whose path matches Path to Container's
// ContainerPort.
type Route struct {
	Path          string
	Container     string
	ContainerPort int
}

// Render renders env's template for a local run. Every error is exit 2
// (invalid) and names what is missing.
func Render(env *config.Environment, in Inputs) (*Task, error) {
	getenv := in.Getenv
	if getenv == nil {
		getenv = os.LookupEnv
	}
	tmpl, err := os.ReadFile(env.TaskDefinition)
	if err != nil {
		return nil, exitcode.Invalidf("reading the task definition template: %v", err)
	}
	outs := tfvars.Outputs{}
	for k, v := range in.Outputs {
		outs[k] = v
	}
	for k, v := range env.Local.Values {
		raw, _ := json.Marshal(v)
		outs[k] = tfvars.Output{Value: raw, Type: json.RawMessage(`"string"`)}
	}
	td, err := taskdef.Render(filepath.Base(env.TaskDefinition), tmpl, taskdef.Inputs{Images: in.Images, Outputs: outs, Env: getenv, SecretEnv: env.SecretEnv})
	if err != nil {
		if len(env.Local.Values) > 0 || in.Outputs == nil {
			return nil, exitcode.Wrap(exitcode.Invalid, fmt.Errorf("%w (locally, {{ tf }} reads local.values first, then Terraform's outputs: add the missing name under local.values in the config)", err))
		}
		return nil, err
	}
	dotenv := map[string]string{}
	if env.Local.EnvFile != "" {
		data, err := os.ReadFile(env.Local.EnvFile)
		if err != nil {
			return nil, exitcode.Invalidf("local.env_file: %v (create it, with one NAME=value line for each secret of the task definition)", err)
		}
		if dotenv, err = ParseDotenv(env.Local.EnvFile, data); err != nil {
			return nil, exitcode.Invalidf("local.env_file: %v", err)
		}
	}
	return fromTaskDef(env, td, dotenv, getenv)
}

func fromTaskDef(env *config.Environment, td *ecs.RegisterTaskDefinitionInput, dotenv map[string]string, getenv func(string) (string, bool)) (*Task, error) {
	t := &Task{Env: env.Name, Port: env.Local.Port, Secrets: map[string][]string{}, SecretFrom: map[string]string{}}
	t.Spec = taskrun.TaskSpec{ID: env.Name, Group: "local/" + env.Name, VolumePrefix: NamePrefix + "-" + env.Name,
		Labels: map[string]string{EnvLabel: env.Name}}
	cv := &converter{env: env, t: t, dotenv: dotenv, getenv: getenv, warned: map[string]bool{}, skipVol: map[string]bool{}}
	cv.volumes(td.Volumes)
	names := map[string]bool{}
	for _, cd := range td.ContainerDefinitions {
		names[aws.ToString(cd.Name)] = true
	}
	for _, cd := range td.ContainerDefinitions {
		c, err := cv.container(cd)
		if err != nil {
			return nil, err
		}
		t.Spec.Containers = append(t.Spec.Containers, c)
	}
	if _, err := taskrun.DependencyLevels(t.Spec.Containers); err != nil {
		return nil, exitcode.Invalidf("the task definition's dependsOn: %v", err)
	}
	if err := cv.routes(names); err != nil {
		return nil, err
	}
	return t, nil
}

// converter turns a task definition into the local task t, collecting its
// warnings (each once).
type converter struct {
	env     *config.Environment
	t       *Task
	dotenv  map[string]string
	getenv  func(string) (string, bool)
	warned  map[string]bool
	skipVol map[string]bool // volumes left out (and their mount points)
}

func (cv *converter) warn(format string, args ...any) {
	w := fmt.Sprintf(format, args...)
	if !cv.warned[w] {
		cv.warned[w] = true
		cv.t.Warnings = append(cv.t.Warnings, w)
	}
}

// volumes: each one is a named Docker volume, ctjdeploy-ENV-VOLUME, kept
// between runs (as compose keeps a named volume).
func (cv *converter) volumes(vols []ecstypes.Volume) {
	t, warn, skipVol := cv.t, cv.warn, cv.skipVol
	for _, v := range vols {
		name := aws.ToString(v.Name)
		switch {
		case v.EfsVolumeConfiguration != nil:
			warn("volume %s is an EFS file system, which cannot be mounted locally: left out (its mount points too)", name)
			skipVol[name] = true
			continue
		case v.FsxWindowsFileServerVolumeConfiguration != nil:
			warn("volume %s is an FSx for Windows file system, which cannot be mounted locally: left out (its mount points too)", name)
			skipVol[name] = true
			continue
		}
		vs := taskrun.VolumeSpec{Name: name, Docker: &taskrun.DockerVolumeSpec{Scope: "shared", Autoprovision: true, Driver: "local"}}
		if d := v.DockerVolumeConfiguration; d != nil && aws.ToString(d.Driver) != "" && aws.ToString(d.Driver) != "local" {
			warn("volume %s uses the Docker volume driver %s: locally it is a volume of the local driver", name, aws.ToString(d.Driver))
		}
		t.Spec.Volumes = append(t.Spec.Volumes, vs)
	}
}

// container is one container definition as the local engine runs it.
func (cv *converter) container(cd ecstypes.ContainerDefinition) (taskrun.ContainerSpec, error) {
	warn, skipVol := cv.warn, cv.skipVol
	name := aws.ToString(cd.Name)
	c := taskrun.ContainerSpec{Name: name, Image: aws.ToString(cd.Image), Essential: cd.Essential == nil || *cd.Essential,
		Environment: map[string]string{}, EntryPoint: cd.EntryPoint, Command: cd.Command,
		WorkingDir: aws.ToString(cd.WorkingDirectory), User: aws.ToString(cd.User),
		Memory: int(aws.ToInt32(cd.Memory)), MemoryReservation: int(aws.ToInt32(cd.MemoryReservation)), CPU: int(cd.Cpu),
		StopTimeout: int(aws.ToInt32(cd.StopTimeout))}
	if c.StopTimeout == 0 {
		// "Amazon ECS task definition parameters" (stopTimeout): 30
		// seconds when not set.
		c.StopTimeout = 30
	}
	for _, kv := range cd.Environment {
		c.Environment[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
	}
	if err := cv.secrets(&c, cd.Secrets); err != nil {
		return c, err
	}
	for _, p := range cd.PortMappings {
		if p.Protocol == ecstypes.TransportProtocolUdp {
			warn("container %s: udp port %d is not published locally (the local load balancer forwards http)", name, aws.ToInt32(p.ContainerPort))
			continue
		}
		if cp := int(aws.ToInt32(p.ContainerPort)); cp > 0 {
			c.PortMappings = append(c.PortMappings, cp)
		}
	}
	for _, m := range cd.MountPoints {
		sv := aws.ToString(m.SourceVolume)
		if skipVol[sv] {
			continue
		}
		c.Mounts = append(c.Mounts, taskrun.MountSpec{SourceVolume: sv, ContainerPath: aws.ToString(m.ContainerPath), ReadOnly: aws.ToBool(m.ReadOnly)})
	}
	for _, d := range cd.DependsOn {
		c.DependsOn = append(c.DependsOn, taskrun.Dependency{Container: aws.ToString(d.ContainerName), Condition: string(d.Condition)})
	}
	if h := cd.HealthCheck; h != nil {
		c.HealthCheck = &taskrun.HealthCheck{Command: h.Command, Interval: secs(h.Interval), Timeout: secs(h.Timeout),
			StartPeriod: secs(h.StartPeriod), Retries: int(aws.ToInt32(h.Retries))}
	}
	for _, u := range cd.Ulimits {
		c.Ulimits = append(c.Ulimits, taskrun.Ulimit{Name: string(u.Name), Soft: int64(u.SoftLimit), Hard: int64(u.HardLimit)})
	}
	if lp := cd.LinuxParameters; lp != nil {
		c.Init = aws.ToBool(lp.InitProcessEnabled)
	}
	if lc := cd.LogConfiguration; lc != nil && lc.LogDriver != ecstypes.LogDriverAwslogs {
		warn("container %s: the %s log driver does not run locally: its output is shown here instead", name, lc.LogDriver)
	}
	if cd.FirelensConfiguration != nil {
		warn("container %s: its firelensConfiguration (a FireLens log router) does not run locally: left out", name)
	}
	if len(cd.EnvironmentFiles) > 0 {
		warn("container %s: environmentFiles (files in S3) are not read locally: put the variables in the template or local.env_file", name)
	}
	if len(cd.VolumesFrom) > 0 {
		warn("container %s: volumesFrom is not supported locally: left out", name)
	}
	return c, nil
}

// secrets gives container c its secrets' local values: each secrets[].name
// read from local.env_file, then the environment (registered as secrets).
func (cv *converter) secrets(c *taskrun.ContainerSpec, secrets []ecstypes.Secret) error {
	env, t, name := cv.env, cv.t, c.Name
	for _, s := range secrets {
		sn := aws.ToString(s.Name)
		v, ok := cv.dotenv[sn]
		from := "local.env_file"
		if !ok {
			v, ok = cv.getenv(sn)
			from = "the environment"
		}
		if !ok {
			where := "set it in the environment"
			if env.Local.EnvFile != "" {
				where = "add " + sn + "=... to " + env.Local.EnvFile + " or set it in the environment"
			}
			return exitcode.Invalidf("container %s: secret %s has no local value: %s (locally, each secrets[].name is read by name from local.env_file, then the environment)", name, sn, where)
		}
		report.AddSecret(v)
		c.Environment[sn] = v
		t.Secrets[name] = append(t.Secrets[name], sn)
		t.SecretFrom[sn] = from
	}
	return nil
}

// routes are the load balancer's: local.routes in order; none: every path
// to the first container that maps a port.
func (cv *converter) routes(names map[string]bool) error {
	env, t, warn := cv.env, cv.t, cv.warn
	port := map[string]int{}
	for _, c := range t.Spec.Containers {
		if len(c.PortMappings) > 0 {
			port[c.Name] = c.PortMappings[0]
		}
	}
	if len(env.Local.Routes) == 0 {
		for _, c := range t.Spec.Containers {
			if len(c.PortMappings) > 0 {
				t.Routes = []Route{{Path: "/*", Container: c.Name, ContainerPort: c.PortMappings[0]}}
				break
			}
		}
		if t.Routes == nil {
			warn("no container maps a port: the local load balancer has nothing to route to")
		}
	}
	for i, r := range env.Local.Routes {
		if !names[r.Container] {
			return exitcode.Invalidf("local.routes[%d]: container %q is not in the task definition (its containers: %s)", i, r.Container, strings.Join(sortedKeys(names), ", "))
		}
		if port[r.Container] == 0 {
			return exitcode.Invalidf("local.routes[%d]: container %s maps no port (add a portMappings entry to it in the task definition)", i, r.Container)
		}
		if err := ValidPattern(r.Path); err != nil {
			return exitcode.Invalidf("local.routes[%d]: %v", i, err)
		}
		t.Routes = append(t.Routes, Route{Path: r.Path, Container: r.Container, ContainerPort: port[r.Container]})
	}
	return nil
}

func secs(p *int32) time.Duration {
	if p == nil {
		return 0
	}
	return time.Duration(*p) * time.Second
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var patternRE = regexp.MustCompile(`^[A-Za-z0-9_\-.$/~"'@:+*?&]+$`)

// ValidPattern checks an ALB path pattern ("Listener rules for your
// Application Load Balancer", path conditions: up to 128 characters, case
// sensitive, A-Z a-z 0-9 _ - . $ / ~ " ' @ : + and & (as &amp;), with * for
// zero or more characters and ? for exactly one).
func ValidPattern(p string) error {
	if p == "" || len(p) > 128 {
		return fmt.Errorf("path pattern %q: want 1 to 128 characters", p)
	}
	if !patternRE.MatchString(p) {
		return fmt.Errorf("path pattern %q: an ALB path pattern may hold only A-Z a-z 0-9 _ - . $ / ~ \" ' @ : + & and the wildcards * and ?", p)
	}
	return nil
}

// Match reports whether path matches an ALB path pattern: * is any run of
// characters (also /), ? exactly one; the match is case-sensitive and
// covers the whole path (without the query string). Elastic Load Balancing
// API reference, PathPatternConditionConfig
// (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_PathPatternConditionConfig.html):
// "The comparison is case sensitive. The following wildcard characters are
// supported: * (matches 0 or more characters) and ? (matches exactly 1
// character) ... compared only to the path of the URL, not to its query
// string."
func Match(pattern, path string) bool {
	// Iterative wildcard matching with backtracking on the last *.
	p, s := 0, 0
	star, mark := -1, 0
	for s < len(path) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == path[s]):
			p++
			s++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, s
			p++
		case star >= 0:
			p = star + 1
			mark++
			s = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// RouteFor is the first route whose pattern matches path (nil: none).
func (t *Task) RouteFor(path string) *Route {
	for i := range t.Routes {
		if Match(t.Routes[i].Path, path) {
			return &t.Routes[i]
		}
	}
	return nil
}
