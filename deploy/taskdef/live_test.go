package taskdef

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// describe parses body, a DescribeTaskDefinition answer as ECS sends it,
// with the AWS SDK itself (a real client against an httptest server), so the
// live side of a test holds exactly what the SDK makes of the answer:
// unknown enum strings kept as-is, describe-only fields set.
func describe(t *testing.T, body string) *ecstypes.TaskDefinition {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if got := r.Header.Get("X-Amz-Target"); got != "AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition" {
			http.Error(w, "unexpected target "+got, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	client := ecs.New(ecs.Options{
		Region:       "us-west-2",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  aws.AnonymousCredentials{},
	})
	out, err := client.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("x")})
	if err != nil {
		t.Fatalf("DescribeTaskDefinition: %v", err)
	}
	if out.TaskDefinition == nil {
		t.Fatal("DescribeTaskDefinition: no taskDefinition in the answer")
	}
	return out.TaskDefinition
}

// describeAnswer wraps the fields of a task definition (ECS JSON, without the
// braces) in a DescribeTaskDefinition answer with the describe-only fields
// ECS adds.
func describeAnswer(fields string) string {
	return `{"taskDefinition": {
  "taskDefinitionArn": "arn:aws:ecs:us-west-2:123456789012:task-definition/web:3",
  "revision": 3,
  "status": "ACTIVE",
  "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"}],
  "compatibilities": ["EXTERNAL", "EC2"],
  "registeredAt": 1.714557600123E9,
  "registeredBy": "arn:aws:iam::123456789012:user/ci",
  ` + fields + `
}, "tags": []}`
}

func render(t *testing.T, tmpl string) *ecs.RegisterTaskDefinitionInput {
	t.Helper()
	td, err := Render("td.json", []byte(tmpl), exampleInputs())
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return td
}

// snapshot is the encoding/json form of v: every field, nil and empty lists
// told apart, pointers followed. Two equal snapshots mean nothing reachable
// from v changed.
func snapshot(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	return string(b)
}

// compareLive runs what deploy does with a rendered and a live definition
// (Equal, then Diff) and checks that neither input changed on the way.
func compareLive(t *testing.T, live *ecstypes.TaskDefinition, rendered *ecs.RegisterTaskDefinitionInput) (bool, string) {
	t.Helper()
	liveBefore, renderedBefore := snapshot(t, live), snapshot(t, rendered)
	in := FromLive(live)
	equal := Equal(in, rendered)
	d := Diff("live", in, rendered, DiffOptions{})
	if equal != (d == "") {
		t.Errorf("Equal = %v but Diff is %q", equal, d)
	}
	if snapshot(t, live) != liveBefore {
		t.Error("comparing changed the live definition")
	}
	if snapshot(t, rendered) != renderedBefore {
		t.Error("comparing changed the rendered definition")
	}
	return equal, d
}

// ECS returns hostPort 0 in bridge mode for a port mapping whose hostPort
// was left out (a dynamic host port), and hostPort = containerPort under
// awsvpc and host ("PortMapping", Amazon ECS API Reference). The live
// answers are shaped like the describe answers in ecspresso's and
// amazon-ecs-deploy-task-definition's test data.
func TestEqualLiveHostPort(t *testing.T) {
	container := func(ports string) string {
		return `"containerDefinitions": [{"name": "web", "image": "nginx:1.27", "memory": 256, "portMappings": [` + ports + `]}]`
	}
	liveContainer := func(ports string) string {
		return `"containerDefinitions": [{"name": "web", "image": "nginx:1.27", "cpu": 0, "memory": 256,
  "portMappings": [` + ports + `], "essential": true, "environment": [], "mountPoints": [], "volumesFrom": [], "systemControls": []}]`
	}
	tests := []struct {
		name           string
		rendered, live string
		want           []string // diff lines; nil: equal
	}{
		{"bridge, hostPort left out, ECS returns 0",
			`{"family": "web", "networkMode": "bridge", "requiresCompatibilities": ["EC2"], ` + container(`{"containerPort": 80}`) + `}`,
			`"family": "web", "networkMode": "bridge", "requiresCompatibilities": ["EC2"], "placementConstraints": [], "volumes": [], ` +
				liveContainer(`{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}`), nil},
		{"bridge, hostPort 0 on both sides",
			`{"family": "web", "networkMode": "bridge", ` + container(`{"containerPort": 80, "hostPort": 0}`) + `}`,
			`"family": "web", "networkMode": "bridge", ` + liveContainer(`{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}`), nil},
		{"bridge, hostPort 0 rendered, left out live",
			`{"family": "web", "networkMode": "bridge", ` + container(`{"containerPort": 80, "hostPort": 0}`) + `}`,
			`"family": "web", "networkMode": "bridge", ` + liveContainer(`{"containerPort": 80, "protocol": "tcp"}`), nil},
		{"network mode left out (bridge on EC2), ECS returns 0",
			`{"family": "web", "requiresCompatibilities": ["EC2"], ` + container(`{"containerPort": 80}, {"containerPort": 8125, "protocol": "udp"}`) + `}`,
			`"family": "web", "networkMode": "bridge", "requiresCompatibilities": ["EC2"], ` +
				liveContainer(`{"containerPort": 8125, "hostPort": 0, "protocol": "udp"}, {"containerPort": 80, "hostPort": 0, "protocol": "tcp"}`), nil},
		{"bridge, a static host port is not a dynamic one",
			`{"family": "web", "networkMode": "bridge", ` + container(`{"containerPort": 80, "hostPort": 8080}`) + `}`,
			`"family": "web", "networkMode": "bridge", ` + liveContainer(`{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}`),
			[]string{`+          "hostPort": 8080,`}},
		{"bridge, static host port changed",
			`{"family": "web", "networkMode": "bridge", ` + container(`{"containerPort": 80}`) + `}`,
			`"family": "web", "networkMode": "bridge", ` + liveContainer(`{"containerPort": 80, "hostPort": 8080, "protocol": "tcp"}`),
			[]string{`-          "hostPort": 8080,`}},
		{"awsvpc, hostPort left out, ECS returns containerPort",
			`{"family": "web", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512", ` + container(`{"containerPort": 80}`) + `}`,
			`"family": "web", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512", ` +
				liveContainer(`{"containerPort": 80, "hostPort": 80, "protocol": "tcp", "name": "web-80-tcp", "appProtocol": "http"}`),
			[]string{`-          "appProtocol": "http",`, `-          "name": "web-80-tcp",`}},
		{"awsvpc with names on both sides",
			`{"family": "web", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512", ` + container(`{"containerPort": 80, "name": "web-80-tcp", "appProtocol": "http"}`) + `}`,
			`"family": "web", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512", ` +
				liveContainer(`{"containerPort": 80, "hostPort": 80, "protocol": "tcp", "name": "web-80-tcp", "appProtocol": "http"}`), nil},
		{"awsvpc, hostPort 0 rendered",
			`{"family": "web", "networkMode": "awsvpc", ` + container(`{"containerPort": 80, "hostPort": 0}`) + `}`,
			`"family": "web", "networkMode": "awsvpc", ` + liveContainer(`{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}`), nil},
		{"host, hostPort left out, ECS returns containerPort",
			`{"family": "web", "networkMode": "host", ` + container(`{"containerPort": 9000}`) + `}`,
			`"family": "web", "networkMode": "host", ` + liveContainer(`{"containerPort": 9000, "hostPort": 9000, "protocol": "tcp"}`), nil},
		{"container port changed",
			`{"family": "web", "networkMode": "bridge", ` + container(`{"containerPort": 81}`) + `}`,
			`"family": "web", "networkMode": "bridge", ` + liveContainer(`{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}`),
			[]string{`-          "containerPort": 80,`, `+          "containerPort": 81,`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			live := describe(t, describeAnswer(tc.live))
			equal, d := compareLive(t, live, render(t, tc.rendered))
			if equal != (tc.want == nil) {
				t.Fatalf("Equal = %v, want %v; diff:\n%s", equal, tc.want == nil, d)
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

// App Mesh proxy properties are a list of name/value pairs whose order does
// not matter; ECS returns them in an order of its own ("ProxyConfiguration",
// Amazon ECS API Reference). The rendered side is the example of "Updating
// services to use App Mesh" order; the live one is what describe answers
// hold.
func TestEqualLiveProxyConfiguration(t *testing.T) {
	const containers = `"containerDefinitions": [{"name": "app", "image": "app:1", "memory": 256},
  {"name": "envoy", "image": "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29.6.0-prod", "memory": 256, "user": "1337"}]`
	rendered := func(props, typ string) string {
		return `{"family": "mesh", "networkMode": "awsvpc", ` + containers + `, "proxyConfiguration": {` + typ + `"containerName": "envoy", "properties": [` + props + `]}}`
	}
	const docOrder = `{"name": "IgnoredUID", "value": "1337"}, {"name": "ProxyIngressPort", "value": "15000"},
  {"name": "ProxyEgressPort", "value": "15001"}, {"name": "AppPorts", "value": "8080"},
  {"name": "EgressIgnoredIPs", "value": "169.254.170.2,169.254.169.254"}`
	live := func(props string) string {
		return `"family": "mesh", "networkMode": "awsvpc", ` + containers + `,
  "proxyConfiguration": {"type": "APPMESH", "containerName": "envoy", "properties": [` + props + `]}`
	}
	const describeOrder = `{"name": "ProxyIngressPort", "value": "15000"}, {"name": "AppPorts", "value": "8080"},
  {"name": "EgressIgnoredIPs", "value": "169.254.170.2,169.254.169.254"}, {"name": "IgnoredUID", "value": "1337"},
  {"name": "ProxyEgressPort", "value": "15001"}`
	tests := []struct {
		name           string
		rendered, live string
		want           []string
	}{
		{"same properties, ECS order", rendered(docOrder, `"type": "APPMESH", `), live(describeOrder), nil},
		{"type left out (APPMESH is the only type)", rendered(docOrder, ""), live(describeOrder), nil},
		{"a value changed", rendered(strings.Replace(docOrder, `"8080"`, `"8080,9090"`, 1), `"type": "APPMESH", `), live(describeOrder),
			[]string{`-        "value": "8080"`, `+        "value": "8080,9090"`}},
		{"a property added", rendered(docOrder+`, {"name": "EgressIgnoredPorts", "value": "5432"}`, `"type": "APPMESH", `), live(describeOrder),
			[]string{`+        "name": "EgressIgnoredPorts",`}},
		{"proxy container changed", strings.Replace(rendered(docOrder, ""), `"containerName": "envoy"`, `"containerName": "app"`, 1), live(describeOrder),
			[]string{`-    "containerName": "envoy",`, `+    "containerName": "app",`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			equal, d := compareLive(t, describe(t, describeAnswer(tc.live)), render(t, tc.rendered))
			if equal != (tc.want == nil) {
				t.Fatalf("Equal = %v, want %v; diff:\n%s", equal, tc.want == nil, d)
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

// richLive is a describe answer that exercises every normalization: lists out
// of order, defaults left out, describe-only fields, and enum values this
// SDK does not know (a newer ECS may return them; the SDK keeps the string).
const richLive = `"family": "rich",
  "networkMode": "bridge",
  "requiresCompatibilities": ["EXTERNAL", "EC2"],
  "cpu": "1 vCPU",
  "memory": "2 GB",
  "pidMode": "task-shared",
  "ipcMode": "none-of-the-known",
  "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}, {"type": "distinctInstance"}],
  "volumes": [
    {"name": "z-efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1234"}},
    {"name": "a-host", "host": {}},
    {"name": "m-docker", "dockerVolumeConfiguration": {"scope": "shared", "driver": "local", "autoprovision": true}}
  ],
  "proxyConfiguration": {"type": "APPMESH", "containerName": "web", "properties": [{"name": "ProxyIngressPort", "value": "15000"}, {"name": "AppPorts", "value": "80"}, {"name": "IgnoredUID", "value": "1337"}]},
  "runtimePlatform": {"cpuArchitecture": "RISCV64", "operatingSystemFamily": "LINUX"},
  "containerDefinitions": [
    {"name": "worker", "image": "worker:1", "cpu": 0, "essential": false,
     "environment": [{"name": "Z", "value": "1"}, {"name": "A", "value": "2"}],
     "dependsOn": [{"containerName": "web", "condition": "HEALTHY"}, {"containerName": "init", "condition": "READY_SOON"}],
     "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}, {"name": "core", "softLimit": 0, "hardLimit": 0}],
     "logConfiguration": {"logDriver": "otel-native", "options": {"k": "v"}, "secretOptions": [{"name": "b", "valueFrom": "arn:b"}, {"name": "a", "valueFrom": "arn:a"}]},
     "resourceRequirements": [{"type": "InferenceAccelerator", "value": "x"}, {"type": "GPU", "value": "1"}],
     "versionConsistency": "eventually"},
    {"name": "web", "image": "web:1", "cpu": 128, "memoryReservation": 256,
     "portMappings": [{"containerPort": 443, "hostPort": 0, "protocol": "sctp"}, {"containerPort": 80, "hostPort": 0, "protocol": "tcp"}],
     "environment": [{"name": "B", "value": "x"}, {"name": "A", "value": "y"}],
     "secrets": [{"name": "S2", "valueFrom": "arn:s2"}, {"name": "S1", "valueFrom": "arn:s1"}],
     "mountPoints": [{"sourceVolume": "z-efs", "containerPath": "/z"}, {"sourceVolume": "a-host", "containerPath": "/a", "readOnly": true}],
     "volumesFrom": [{"sourceContainer": "worker"}],
     "extraHosts": [{"hostname": "b", "ipAddress": "10.0.0.2"}, {"hostname": "a", "ipAddress": "10.0.0.1"}],
     "links": ["worker", "init"],
     "systemControls": [{"namespace": "net.core.somaxconn", "value": "1024"}, {"namespace": "kernel.shm_rmid_forced", "value": "1"}],
     "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"], "interval": 10},
     "dockerLabels": {"b": "2", "a": "1"}},
    {"name": "init", "image": "init:1", "essential": false, "environment": [], "mountPoints": [], "volumesFrom": []}
  ]`

// Normalize works on a copy: it never changes its argument, on the live side
// (slices FromLive shares with the SDK's answer, enum values the SDK does not
// know, which the strict decoder refuses) or the rendered side.
func TestNormalizeNeverMutates(t *testing.T) {
	live := describe(t, describeAnswer(richLive))
	// The SDK kept the values it does not know.
	if live.ContainerDefinitions[1].PortMappings[0].Protocol != "sctp" || live.IpcMode != "none-of-the-known" {
		t.Fatalf("SDK answer: protocol %q, ipcMode %q", live.ContainerDefinitions[1].PortMappings[0].Protocol, live.IpcMode)
	}

	// The rendered side: the example, plus the same unknown values set in Go
	// (Render refuses them; a caller may still build such an input).
	rendered := renderExample(t)
	rendered.IpcMode = "none-of-the-known"
	rendered.ProxyConfiguration = FromLive(live).ProxyConfiguration
	c := &rendered.ContainerDefinitions[0]
	c.PortMappings = append(c.PortMappings, ecstypes.PortMapping{ContainerPort: aws.Int32(9), Protocol: "sctp", HostPort: aws.Int32(0)})
	c.LogConfiguration = &ecstypes.LogConfiguration{LogDriver: "otel-native", SecretOptions: []ecstypes.Secret{{Name: aws.String("b")}, {Name: aws.String("a")}}}
	c.HealthCheck = &ecstypes.HealthCheck{Command: []string{"CMD", "true"}}
	c.ResourceRequirements = []ecstypes.ResourceRequirement{{Type: "FPGA", Value: aws.String("1")}, {
		Type: ecstypes.ResourceTypeGpu, Value: aws.String("1"),
		SharingStrategy: &ecstypes.UnknownUnionMember{Tag: "timeSlicing", Value: []byte(`{"slices": 2}`)},
	}}
	rendered.Volumes = []ecstypes.Volume{{Name: aws.String("b"), Host: &ecstypes.HostVolumeProperties{}}, {Name: aws.String("a"), EfsVolumeConfiguration: &ecstypes.EFSVolumeConfiguration{FileSystemId: aws.String("fs-1")}}}
	rendered.Tags = []ecstypes.Tag{{Key: aws.String("ctjdeploy:commit"), Value: aws.String("abc")}}

	for _, side := range []struct {
		name string
		td   *ecs.RegisterTaskDefinitionInput
	}{{"live", FromLive(live)}, {"rendered", rendered}} {
		t.Run(side.name, func(t *testing.T) {
			before := snapshot(t, side.td)
			n := Normalize(side.td)
			if got := snapshot(t, side.td); got != before {
				t.Fatalf("Normalize changed its argument:\nbefore %s\nafter  %s", before, got)
			}
			if snapshot(t, n) == before {
				t.Fatal("Normalize returned its input unchanged: the test input needs normalizing")
			}
			// The copy is deep: changing the result leaves the input alone.
			n.ContainerDefinitions[0].Environment = append(n.ContainerDefinitions[0].Environment, ecstypes.KeyValuePair{Name: aws.String("NEW")})
			*n.ContainerDefinitions[0].Name = "renamed"
			n.ContainerDefinitions[0].PortMappings = nil
			if got := snapshot(t, side.td); got != before {
				t.Fatal("the normalized copy shares memory with the input")
			}
			// Unknown values survive normalization (they are compared, not lost).
			canon := canonical(side.td)
			for _, w := range []string{`"protocol": "sctp"`, `"logDriver": "otel-native"`, `"ipcMode": "none-of-the-known"`} {
				if !strings.Contains(canon, w) {
					t.Errorf("normalized form lacks %s:\n%s", w, canon)
				}
			}
		})
	}
	// And the whole comparison leaves both alone.
	compareLive(t, live, rendered)
	if live.ContainerDefinitions[0].Name == nil || *live.ContainerDefinitions[0].Name != "worker" {
		t.Fatal("the SDK's answer was reordered")
	}
}

// An environment entry without a value never reaches ECS (it drops the
// entry), so the variable would never be set and every deploy would see a
// change; Render refuses it, naming the container and the variable.
func TestRenderEnvironmentWithoutValue(t *testing.T) {
	tests := []struct {
		name  string
		env   string
		want  []string // nil: renders
		check func(t *testing.T, td *ecs.RegisterTaskDefinitionInput)
	}{
		{"value left out", `[{"name": "A", "value": "1"}, {"name": "FEATURE_FLAG"}]`,
			[]string{`containerDefinitions[1].environment[1]`, `container "web"`, `variable "FEATURE_FLAG"`, `has no "value"`, "give it a value", "remove the entry"}, nil},
		{"value null", `[{"name": "EMPTY", "value": null}]`,
			[]string{`containerDefinitions[1].environment[0]`, `container "web"`, `variable "EMPTY"`, `has no "value"`}, nil},
		{"name left out", `[{"value": "1"}]`,
			[]string{`containerDefinitions[1].environment[0]`, `container "web"`, `has no "name"`}, nil},
		{"empty value is a value", `[{"name": "EMPTY", "value": ""}, {"name": "B", "value": "{{ env "GIT_SHA" }}"}]`, nil,
			func(t *testing.T, td *ecs.RegisterTaskDefinitionInput) {
				if got := envOf(container(t, td, "web")); got["EMPTY"] != "" || got["B"] != "abc123" || len(got) != 2 {
					t.Errorf("environment: %v", got)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := `{"family": "f", "containerDefinitions": [{"name": "side", "image": "i"},
  {"name": "web", "image": "i", "environment": ` + tc.env + `}]}`
			td, err := Render("td.json", []byte(tmpl), exampleInputs())
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Render: %v", err)
				}
				tc.check(t, td)
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if code := exitcode.Of(err); code != exitcode.Invalid {
				t.Errorf("exit code %d, want %d", code, exitcode.Invalid)
			}
			for _, w := range append([]string{"td.json: "}, tc.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
