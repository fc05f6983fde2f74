package taskdef

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/schemas"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/report"
)

const liveARN = "arn:aws:ecs:us-west-2:123456789012:task-definition/civic-tech-jobs-fullstack-stage:7"

func renderExample(t *testing.T) *ecs.RegisterTaskDefinitionInput {
	t.Helper()
	td, err := Render("stage/ecs-task-def.json", readExample(t), exampleInputs())
	if err != nil {
		t.Fatal(err)
	}
	return td
}

func containerPtr(td *ecs.RegisterTaskDefinitionInput, name string) *ecstypes.ContainerDefinition {
	for i := range td.ContainerDefinitions {
		if *td.ContainerDefinitions[i].Name == name {
			return &td.ContainerDefinitions[i]
		}
	}
	return nil
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name string
		// edit turns a copy of the rendered example into the live one.
		edit func(live *ecs.RegisterTaskDefinitionInput)
		want []string // lines the diff must hold; nil: no diff
	}{
		{"identical", func(*ecs.RegisterTaskDefinitionInput) {}, nil},
		{"reordered containers and env", func(l *ecs.RegisterTaskDefinitionInput) {
			slices.Reverse(l.ContainerDefinitions)
			for i := range l.ContainerDefinitions {
				slices.Reverse(l.ContainerDefinitions[i].Environment)
				slices.Reverse(l.ContainerDefinitions[i].Secrets)
			}
		}, nil},
		{"ECS defaults filled in on the live side", func(l *ecs.RegisterTaskDefinitionInput) {
			l.EnableFaultInjection = aws.Bool(false)
			l.Tags = []ecstypes.Tag{{Key: aws.String("ctjdeploy:commit"), Value: aws.String("0ld")}}
			for i := range l.ContainerDefinitions {
				c := &l.ContainerDefinitions[i]
				c.Essential = aws.Bool(true)
				c.VersionConsistency = ecstypes.VersionConsistencyEnabled
				c.VolumesFrom = []ecstypes.VolumeFrom{}
				c.DockerLabels = map[string]string{}
				for j := range c.PortMappings {
					c.PortMappings[j].HostPort = c.PortMappings[j].ContainerPort
					c.PortMappings[j].Protocol = ecstypes.TransportProtocolTcp
				}
				for j := range c.MountPoints {
					c.MountPoints[j].ReadOnly = aws.Bool(false)
				}
			}
			l.Cpu = aws.String("1 vCPU")
		}, nil},
		{"image change", func(l *ecs.RegisterTaskDefinitionInput) {
			containerPtr(l, "django").Image = aws.String("127.0.0.1:5055/civic-tech-jobs-backend@sha256:0000")
		}, []string{
			`-      "image": "127.0.0.1:5055/civic-tech-jobs-backend@sha256:0000",`,
			`+      "image": "` + djangoImage + `",`,
		}},
		{"env value change", func(l *ecs.RegisterTaskDefinitionInput) {
			c := containerPtr(l, "django")
			for i := range c.Environment {
				if *c.Environment[i].Name == "DEBUG" {
					c.Environment[i].Value = aws.String("true")
				}
			}
		}, []string{`-          "value": "true"`, `+          "value": "false"`}},
		{"added secret", func(l *ecs.RegisterTaskDefinitionInput) {
			c := containerPtr(l, "django")
			c.Secrets = c.Secrets[:1]
		}, []string{`+          "name": "SECRET_KEY",`, `+          "valueFrom": "arn:aws:ssm:us-west-2:123456789012:parameter/civic-tech-jobs/fullstack-stage-django-secret-key"`}},
		{"network mode", func(l *ecs.RegisterTaskDefinitionInput) { l.NetworkMode = "" }, []string{`-  "networkMode": "bridge",`, `+  "networkMode": "awsvpc",`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rendered := renderExample(t)
			live := renderExample(t)
			tc.edit(live)
			d := Diff(liveARN, live, rendered, DiffOptions{})
			if got := Equal(live, rendered); got != (tc.want == nil) {
				t.Fatalf("Equal = %v; diff:\n%s", got, d)
			}
			if tc.want == nil {
				if d != "" {
					t.Fatalf("unexpected diff:\n%s", d)
				}
				return
			}
			if !strings.HasPrefix(d, "--- "+liveARN+"\n+++ rendered task definition (new revision)\n@@ ") {
				t.Errorf("diff header:\n%s", d)
			}
			lines := strings.Split(d, "\n")
			for _, w := range tc.want {
				if !slices.Contains(lines, w) {
					t.Errorf("diff lacks line %q:\n%s", w, d)
				}
			}
		})
	}
}

// The live side as DescribeTaskDefinition returns it: describe-only keys,
// through Decode (JSON) and FromLive (the SDK type).
func TestDiffDescribeOnlyKeys(t *testing.T) {
	rendered := renderExample(t)
	b, err := Marshal(rendered)
	if err != nil {
		t.Fatal(err)
	}
	describe := strings.Replace(string(b), "{", `{"taskDefinitionArn": "`+liveARN+`", "revision": 7, "status": "ACTIVE",
 "compatibilities": ["EC2"], "registeredAt": "2026-05-01T10:00:00Z", "registeredBy": "arn:aws:iam::123456789012:user/ci",
 "requiresAttributes": [{"name": "ecs.capability.execution-role-awslogs"}], "deregisteredAt": null,`, 1)
	live, err := Decode([]byte(describe))
	if err != nil {
		t.Fatal(err)
	}
	if !Equal(live, rendered) {
		t.Fatalf("describe-only keys make a diff:\n%s", Diff(liveARN, live, rendered, DiffOptions{}))
	}

	td := &ecstypes.TaskDefinition{
		TaskDefinitionArn:       aws.String(liveARN),
		Revision:                7,
		Status:                  ecstypes.TaskDefinitionStatusActive,
		Compatibilities:         []ecstypes.Compatibility{ecstypes.CompatibilityEc2},
		RegisteredAt:            aws.Time(time.Now()),
		RegisteredBy:            aws.String("me"),
		RequiresAttributes:      []ecstypes.Attribute{{Name: aws.String("x")}},
		ContainerDefinitions:    rendered.ContainerDefinitions,
		Family:                  rendered.Family,
		Cpu:                     rendered.Cpu,
		Memory:                  rendered.Memory,
		NetworkMode:             rendered.NetworkMode,
		RequiresCompatibilities: rendered.RequiresCompatibilities,
		ExecutionRoleArn:        rendered.ExecutionRoleArn,
		TaskRoleArn:             rendered.TaskRoleArn,
		Volumes:                 rendered.Volumes,
	}
	if d := Diff(liveARN, FromLive(td), rendered, DiffOptions{}); d != "" {
		t.Fatalf("FromLive differs:\n%s", d)
	}
	// Normalizing must not change its input (FromLive shares slices).
	if *rendered.ContainerDefinitions[0].Name != "next" || *rendered.ContainerDefinitions[1].Environment[0].Name != "SQL_ENGINE" {
		t.Fatal("Normalize changed its input")
	}
}

func TestNormalizeDoesNotMutate(t *testing.T) {
	td := renderExample(t)
	before, _ := Marshal(td)
	slices.Reverse(td.ContainerDefinitions)
	td.ContainerDefinitions[0].PortMappings[0].Protocol = ""
	want, _ := Marshal(td)
	_ = Normalize(td)
	got, _ := Marshal(td)
	if string(got) != string(want) || string(before) == string(got) {
		t.Fatal("Normalize mutated its argument")
	}
}

func TestDiffNoLive(t *testing.T) {
	d := Diff("", nil, renderExample(t), DiffOptions{})
	if !strings.HasPrefix(d, "--- (no live task definition)\n") || !strings.Contains(d, `+  "family": "civic-tech-jobs-fullstack-stage",`) {
		t.Fatalf("diff:\n%s", d)
	}
	if !Equal(nil, nil) || Equal(nil, renderExample(t)) {
		t.Fatal("Equal with nil")
	}
}

func TestDiffColorAndMask(t *testing.T) {
	report.AddSecret("masked-in-diff-value")
	live, rendered := renderExample(t), renderExample(t)
	containerPtr(live, "next").Environment[0].Value = aws.String("masked-in-diff-value")
	d := Diff(liveARN, live, rendered, DiffOptions{Color: true})
	if strings.Contains(d, "masked-in-diff-value") {
		t.Fatalf("secret shown:\n%s", d)
	}
	for _, w := range []string{"\x1b[1m--- " + liveARN + "\x1b[0m\n", "\x1b[31m-          \"value\": \"***\"\x1b[0m\n", "\x1b[32m+          \"value\": \"production\"\x1b[0m\n", "\x1b[36m@@ "} {
		if !strings.Contains(d, w) {
			t.Errorf("colored diff lacks %q:\n%q", w, d)
		}
	}
	if plain := Diff(liveARN, live, rendered, DiffOptions{}); strings.Contains(plain, "\x1b[") {
		t.Error("uncolored diff has escapes")
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	td := renderExample(t)
	td.ContainerDefinitions[0].ResourceRequirements = []ecstypes.ResourceRequirement{{
		Type: ecstypes.ResourceTypeGpu, Value: aws.String("1"),
		SharingStrategy: &ecstypes.SharingStrategyMemberNvidiaMps{Value: ecstypes.NvidiaMpsAllocation{Memory: aws.Int32(512)}},
	}}
	td.Tags = []ecstypes.Tag{{Key: aws.String("k"), Value: aws.String("")}}
	b, err := Marshal(td)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"containerDefinitions": [`) || !strings.Contains(string(b), `"nvidiaMps": {`) {
		t.Fatalf("not ECS JSON:\n%s", b)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, td) {
		b2, _ := Marshal(back)
		t.Fatalf("round trip differs:\n%s\n%s", b, b2)
	}
}

// Every Go field of the types the template uses has the ECS API member name
// jsonName gives it (checked against the SDK's own schemas).
func TestJSONNamesMatchAPI(t *testing.T) {
	for typ, members := range map[reflect.Type]map[string]bool{
		reflect.TypeFor[ecs.RegisterTaskDefinitionInput](): names(schemas.RegisterTaskDefinitionRequest.Members()),
		reflect.TypeFor[ecstypes.ContainerDefinition]():    names(schemas.ContainerDefinition.Members()),
		reflect.TypeFor[ecstypes.Volume]():                 names(schemas.Volume.Members()),
		reflect.TypeFor[ecstypes.PortMapping]():            names(schemas.PortMapping.Members()),
		reflect.TypeFor[ecstypes.LinuxParameters]():        names(schemas.LinuxParameters.Members()),
	} {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			if f.IsExported() && !members[jsonName(f.Name)] {
				t.Errorf("%s.%s: API has no member %q", typ.Name(), f.Name, jsonName(f.Name))
			}
		}
	}
}

func names[S any](m map[string]S) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

// FromLive copies every field RegisterTaskDefinition takes (tags come
// separately), so a new SDK field cannot silently vanish from the diff.
func TestFromLiveCopiesEveryField(t *testing.T) {
	td := &ecstypes.TaskDefinition{}
	tv := reflect.ValueOf(td).Elem()
	inT := reflect.TypeFor[ecs.RegisterTaskDefinitionInput]()
	for i := 0; i < inT.NumField(); i++ {
		f := inT.Field(i)
		if !f.IsExported() || skipLive[f.Name] {
			continue
		}
		lf := tv.FieldByName(f.Name)
		if !lf.IsValid() || lf.Type() != f.Type {
			t.Fatalf("TaskDefinition has no field %s of type %s", f.Name, f.Type)
		}
		lf.Set(nonZero(f.Type))
	}
	in := reflect.ValueOf(FromLive(td)).Elem()
	for i := 0; i < inT.NumField(); i++ {
		f := inT.Field(i)
		if f.IsExported() && !skipLive[f.Name] && in.Field(i).IsZero() {
			t.Errorf("FromLive drops %s", f.Name)
		}
	}
	if FromLive(nil) != nil {
		t.Error("FromLive(nil)")
	}
}

// Fields FromLive leaves out on purpose: tags come beside the task
// definition; inferenceAccelerators is deprecated (no longer available).
var skipLive = map[string]bool{"Tags": true, "InferenceAccelerators": true}

func nonZero(t reflect.Type) reflect.Value {
	switch t.Kind() {
	case reflect.Pointer:
		return reflect.New(t.Elem())
	case reflect.Slice:
		return reflect.MakeSlice(t, 1, 1)
	case reflect.String:
		return reflect.ValueOf("x").Convert(t)
	}
	panic("unhandled kind " + t.Kind().String())
}
