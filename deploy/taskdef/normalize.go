package taskdef

import (
	"bytes"
	"cmp"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/pmezard/go-difflib/difflib"

	"github.com/hackforla/ctjdeploy/internal/report"
)

// Normalize returns a copy of td in a canonical form, so that a live
// definition (DescribeTaskDefinition, through FromLive) and a freshly
// rendered one compare equal when ECS would run them the same way:
//
//   - tags are dropped (they are not part of a revision's content; the
//     deploy's commit tag differs on every deploy);
//   - containers are sorted by name; environment, secrets, port mappings,
//     mount points, volumesFrom, dependsOn, ulimits, extraHosts, links,
//     systemControls, resourceRequirements, secretOptions, volumes,
//     placementConstraints and requiresCompatibilities are sorted; empty
//     lists and maps are dropped;
//   - ECS defaults are filled in: networkMode (bridge; awsvpc with FARGATE),
//     essential true, portMappings protocol tcp and, under awsvpc or host,
//     hostPort = containerPort (a left-out or 0 hostPort); in bridge mode a
//     hostPort of 0 is the same as a left-out one (a dynamic host port: ECS
//     returns 0 for it); mountPoints/volumesFrom readOnly false;
//     healthCheck interval 30, timeout 5, retries 3, startPeriod 0;
//     versionConsistency enabled; enableFaultInjection false; volume
//     configuredAtLaunch false; EFS rootDirectory "/"; an empty host volume
//     configuration is dropped; task cpu "1 vCPU" → "1024", memory "2 GB" →
//     "2048"; proxyConfiguration type APPMESH (the only type) and its
//     properties sorted by name (ECS returns them in an order of its own).
//
// Normalize never changes td, nor anything td points to, whatever it holds
// (an enum value this SDK does not know included): it works on a deep copy.
// A nil td gives nil.
func Normalize(td *ecs.RegisterTaskDefinitionInput) *ecs.RegisterTaskDefinitionInput {
	if td == nil {
		return nil
	}
	n := clone(td)
	n.Tags = nil

	slices.Sort(n.RequiresCompatibilities)
	if n.NetworkMode == "" {
		n.NetworkMode = ecstypes.NetworkModeBridge
		if slices.Contains(n.RequiresCompatibilities, ecstypes.CompatibilityFargate) {
			n.NetworkMode = ecstypes.NetworkModeAwsvpc
		}
	}
	n.Cpu = units(n.Cpu, cpuUnits)
	n.Memory = units(n.Memory, memUnits)
	if n.EnableFaultInjection == nil {
		n.EnableFaultInjection = aws.Bool(false)
	}
	slices.SortStableFunc(n.PlacementConstraints, func(a, b ecstypes.TaskDefinitionPlacementConstraint) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(str(a.Expression), str(b.Expression)))
	})
	for i := range n.Volumes {
		v := &n.Volumes[i]
		if v.ConfiguredAtLaunch == nil {
			v.ConfiguredAtLaunch = aws.Bool(false)
		}
		if v.Host != nil && v.Host.SourcePath == nil {
			v.Host = nil
		}
		if e := v.EfsVolumeConfiguration; e != nil && e.RootDirectory == nil {
			e.RootDirectory = aws.String("/")
		}
	}
	slices.SortStableFunc(n.Volumes, func(a, b ecstypes.Volume) int { return cmp.Compare(str(a.Name), str(b.Name)) })

	// "ProxyConfiguration" (Amazon ECS API Reference): type's only value is
	// APPMESH; properties are name/value pairs, so their order carries
	// nothing (DescribeTaskDefinition answers list them in another order
	// than the one registered).
	if p := n.ProxyConfiguration; p != nil {
		if p.Type == "" {
			p.Type = ecstypes.ProxyConfigurationTypeAppmesh
		}
		slices.SortStableFunc(p.Properties, kvByName)
	}

	awsvpc := n.NetworkMode == ecstypes.NetworkModeAwsvpc || n.NetworkMode == ecstypes.NetworkModeHost
	for i := range n.ContainerDefinitions {
		normalizeContainer(&n.ContainerDefinitions[i], awsvpc)
	}
	slices.SortStableFunc(n.ContainerDefinitions, func(a, b ecstypes.ContainerDefinition) int {
		return cmp.Compare(str(a.Name), str(b.Name))
	})
	return n
}

func normalizeContainer(c *ecstypes.ContainerDefinition, hostPortIsContainerPort bool) {
	if c.Essential == nil {
		c.Essential = aws.Bool(true)
	}
	if c.VersionConsistency == "" {
		c.VersionConsistency = ecstypes.VersionConsistencyEnabled
	}
	slices.SortStableFunc(c.Environment, kvByName)
	slices.SortStableFunc(c.Secrets, func(a, b ecstypes.Secret) int { return cmp.Compare(str(a.Name), str(b.Name)) })
	for i := range c.PortMappings {
		p := &c.PortMappings[i]
		if p.Protocol == "" {
			p.Protocol = ecstypes.TransportProtocolTcp
		}
		// "PortMapping" (Amazon ECS API Reference): under awsvpc or host
		// the hostPort is left out or equal to the containerPort, and ECS
		// returns it equal; in bridge mode a left-out hostPort (or 0) asks
		// for a dynamic host port, and DescribeTaskDefinition returns
		// hostPort 0 for it.
		switch {
		case hostPortIsContainerPort && p.ContainerPort != nil && (p.HostPort == nil || *p.HostPort == 0):
			p.HostPort = aws.Int32(*p.ContainerPort)
		case p.HostPort != nil && *p.HostPort == 0:
			p.HostPort = nil
		}
	}
	slices.SortStableFunc(c.PortMappings, func(a, b ecstypes.PortMapping) int {
		return cmp.Or(cmp.Compare(i32(a.ContainerPort), i32(b.ContainerPort)), cmp.Compare(a.Protocol, b.Protocol),
			cmp.Compare(i32(a.HostPort), i32(b.HostPort)), cmp.Compare(str(a.ContainerPortRange), str(b.ContainerPortRange)))
	})
	for i := range c.MountPoints {
		if c.MountPoints[i].ReadOnly == nil {
			c.MountPoints[i].ReadOnly = aws.Bool(false)
		}
	}
	slices.SortStableFunc(c.MountPoints, func(a, b ecstypes.MountPoint) int {
		return cmp.Or(cmp.Compare(str(a.ContainerPath), str(b.ContainerPath)), cmp.Compare(str(a.SourceVolume), str(b.SourceVolume)))
	})
	for i := range c.VolumesFrom {
		if c.VolumesFrom[i].ReadOnly == nil {
			c.VolumesFrom[i].ReadOnly = aws.Bool(false)
		}
	}
	slices.SortStableFunc(c.VolumesFrom, func(a, b ecstypes.VolumeFrom) int {
		return cmp.Compare(str(a.SourceContainer), str(b.SourceContainer))
	})
	slices.SortStableFunc(c.DependsOn, func(a, b ecstypes.ContainerDependency) int {
		return cmp.Compare(str(a.ContainerName), str(b.ContainerName))
	})
	slices.SortStableFunc(c.Ulimits, func(a, b ecstypes.Ulimit) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortStableFunc(c.ExtraHosts, func(a, b ecstypes.HostEntry) int { return cmp.Compare(str(a.Hostname), str(b.Hostname)) })
	slices.Sort(c.Links)
	slices.SortStableFunc(c.SystemControls, func(a, b ecstypes.SystemControl) int {
		return cmp.Compare(str(a.Namespace), str(b.Namespace))
	})
	slices.SortStableFunc(c.ResourceRequirements, func(a, b ecstypes.ResourceRequirement) int { return cmp.Compare(a.Type, b.Type) })
	if h := c.HealthCheck; h != nil {
		if h.Interval == nil {
			h.Interval = aws.Int32(30)
		}
		if h.Timeout == nil {
			h.Timeout = aws.Int32(5)
		}
		if h.Retries == nil {
			h.Retries = aws.Int32(3)
		}
		if h.StartPeriod == nil {
			h.StartPeriod = aws.Int32(0)
		}
	}
	if l := c.LogConfiguration; l != nil {
		slices.SortStableFunc(l.SecretOptions, func(a, b ecstypes.Secret) int { return cmp.Compare(str(a.Name), str(b.Name)) })
	}
}

var (
	cpuUnits = regexp.MustCompile(`(?i)^\s*(\d+(?:\.\d+)?)\s*vcpus?\s*$`)
	memUnits = regexp.MustCompile(`(?i)^\s*(\d+(?:\.\d+)?)\s*gb\s*$`)
)

// units rewrites "1 vCPU" as "1024" and "2 GB" as "2048" (what ECS stores),
// and trims spaces around plain numbers.
func units(s *string, re *regexp.Regexp) *string {
	if s == nil {
		return nil
	}
	if m := re.FindStringSubmatch(*s); m != nil {
		if f, err := strconv.ParseFloat(m[1], 64); err == nil {
			return aws.String(strconv.FormatFloat(f*1024, 'f', -1, 64))
		}
	}
	return aws.String(strings.TrimSpace(*s))
}

func kvByName(a, b ecstypes.KeyValuePair) int {
	return cmp.Or(cmp.Compare(str(a.Name), str(b.Name)), cmp.Compare(str(a.Value), str(b.Value)))
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func i32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// clone deep-copies td, field by field. It never fails and keeps every value
// as it is: an enum string the SDK does not know (the SDK keeps those from
// an answer as-is), a union member it does not know. (A copy through the
// strict decoder would refuse those, and a shallow copy would let Normalize
// sort the caller's slices.)
func clone(td *ecs.RegisterTaskDefinitionInput) *ecs.RegisterTaskDefinitionInput {
	return deepCopy(reflect.ValueOf(td)).Interface().(*ecs.RegisterTaskDefinitionInput)
}

// deepCopy returns a copy of v that shares no memory with it: pointers,
// slices, maps and interfaces are copied, nil stays nil. Unexported struct
// fields (the SDK's zero-size markers) are copied as they are.
func deepCopy(v reflect.Value) reflect.Value {
	t := v.Type()
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return reflect.Zero(t)
		}
		p := reflect.New(t.Elem())
		p.Elem().Set(deepCopy(v.Elem()))
		return p
	case reflect.Interface:
		out := reflect.New(t).Elem()
		if !v.IsNil() {
			out.Set(deepCopy(v.Elem()))
		}
		return out
	case reflect.Slice:
		if v.IsNil() {
			return reflect.Zero(t)
		}
		s := reflect.MakeSlice(t, v.Len(), v.Len())
		for i := range v.Len() {
			s.Index(i).Set(deepCopy(v.Index(i)))
		}
		return s
	case reflect.Map:
		if v.IsNil() {
			return reflect.Zero(t)
		}
		m := reflect.MakeMapWithSize(t, v.Len())
		for it := v.MapRange(); it.Next(); {
			m.SetMapIndex(deepCopy(it.Key()), deepCopy(it.Value()))
		}
		return m
	case reflect.Struct:
		out := reflect.New(t).Elem()
		out.Set(v)
		for i := range t.NumField() {
			if t.Field(i).IsExported() {
				out.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
		return out
	}
	out := reflect.New(t).Elem()
	out.Set(v)
	return out
}

// canonical is the normalized JSON of td ("" for nil).
func canonical(td *ecs.RegisterTaskDefinitionInput) string {
	if td == nil {
		return ""
	}
	b, err := Marshal(Normalize(td))
	if err != nil {
		return ""
	}
	return string(b)
}

// Equal says whether live and rendered are the same task definition once
// normalized (see Normalize): true means registering rendered would create a
// revision identical to live, so no new revision is needed. Tags are
// ignored. Equal(a, b) is true exactly when Diff(…, a, b, …) is empty.
func Equal(live, rendered *ecs.RegisterTaskDefinitionInput) bool {
	if live == nil || rendered == nil {
		return live == nil && rendered == nil
	}
	return canonical(live) == canonical(rendered)
}

// DiffOptions control Diff's output.
type DiffOptions struct {
	Color bool // ANSI colors: removals red, additions green, hunks cyan
}

// Diff is a unified diff (3 lines of context) of the normalized, indented
// ECS JSON of live and rendered, headed by liveARN (the live revision; a nil
// live means "no live task definition"). It is empty when Equal(live,
// rendered). Every registered secret (report.AddSecret: sensitive Terraform
// outputs, which Render registers too) is masked as ***; secret references
// (secrets[].valueFrom) are names, not values, and stay visible.
func Diff(liveARN string, live, rendered *ecs.RegisterTaskDefinitionInput, opts DiffOptions) string {
	if Equal(live, rendered) {
		return ""
	}
	from := liveARN
	if live == nil {
		from = "(no live task definition)"
	} else if from == "" {
		from = "live task definition"
	}
	to := "rendered task definition (new revision)"
	if rendered == nil {
		to = "(nothing rendered)"
	}
	text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A:        difflib.SplitLines(canonical(live)),
		B:        difflib.SplitLines(canonical(rendered)),
		FromFile: from,
		ToFile:   to,
		Context:  3,
	})
	if err != nil {
		return ""
	}
	text = report.Mask(text)
	if opts.Color {
		text = colorize(text)
	}
	return text
}

const (
	ansiReset = "\x1b[0m"
	ansiBold  = "\x1b[1m"
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiCyan  = "\x1b[36m"
)

func colorize(text string) string {
	var b bytes.Buffer
	for _, line := range strings.SplitAfter(text, "\n") {
		if line == "" {
			continue
		}
		body := strings.TrimSuffix(line, "\n")
		nl := line[len(body):]
		switch {
		case strings.HasPrefix(body, "---"), strings.HasPrefix(body, "+++"):
			b.WriteString(ansiBold + body + ansiReset + nl)
		case strings.HasPrefix(body, "@@"):
			b.WriteString(ansiCyan + body + ansiReset + nl)
		case strings.HasPrefix(body, "-"):
			b.WriteString(ansiRed + body + ansiReset + nl)
		case strings.HasPrefix(body, "+"):
			b.WriteString(ansiGreen + body + ansiReset + nl)
		default:
			b.WriteString(line)
		}
	}
	return b.String()
}
