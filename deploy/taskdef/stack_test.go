package taskdef

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/teststack"
	"github.com/hackforla/ctjdeploy/tfvars"
)

// The example template rendered with outputs read by real Terraform (1.5 or newer)
// from (a copy of) the example's outputs-only configuration.
func TestRenderWithRealTerraform(t *testing.T) {
	s := teststack.Start(t)
	s.Setenv(t)
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "..", "example", "infra", "stage", "outputs.tf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "outputs.tf"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-input=false"}, {"apply", "-auto-approve", "-input=false"}} {
		cmd := s.Command(s.TerraformBinary, args...)
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("terraform %v: %v\n%s", args, err, b)
		}
	}
	outs, err := tfvars.Read(context.Background(), tfvars.Options{Dir: dir, Binary: s.TerraformBinary})
	if err != nil {
		t.Fatal(err)
	}
	in := Inputs{Images: map[string]string{"next": nextImage, "django": djangoImage}, Outputs: outs}
	td, err := Render("stage/ecs-task-def.json", readExample(t), in)
	if err != nil {
		t.Fatal(err)
	}
	want := renderExample(t) // the same template with hand-written outputs
	if d := Diff("hand-written outputs", want, td, DiffOptions{}); d != "" {
		t.Fatalf("real outputs render differently:\n%s", d)
	}

	// The example's sensitive output in a plain environment entry.
	tmpl := strings.Replace(string(readExample(t)), `{"name": "POSTGRES_USER", "value": "{{ tf "db_user" }}"}`,
		`{"name": "POSTGRES_USER", "value": "{{ tf "db_user" }}"}, {"name": "POSTGRES_PASSWORD", "value": "{{ tf "db_password" }}"}`, 1)
	_, err = Render("stage/ecs-task-def.json", []byte(tmpl), in)
	if err == nil || exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "secrets[].valueFrom") {
		t.Fatalf("sensitive output in environment: %v", err)
	}
	if strings.Contains(err.Error(), "s3cr3t-example-password-do-not-print") {
		t.Fatalf("error shows the secret: %v", err)
	}
	// A missing output, with the template's line.
	tmpl = strings.Replace(string(readExample(t)), `{{ tf "sql_host" }}`, `{{ tf "sql_hostname" }}`, 1)
	line := strings.Count(tmpl[:strings.Index(tmpl, `{{ tf "sql_hostname" }}`)], "\n") + 1
	_, err = Render("stage/ecs-task-def.json", []byte(tmpl), in)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("template: stage/ecs-task-def.json:%d:", line)) || !strings.Contains(err.Error(), `no output "sql_hostname"`) {
		t.Fatalf("missing output: %v", err)
	}
}

// A rendered definition registered in moto and described back compares
// equal to itself: an unchanged deploy registers no new revision.
func TestEqualAfterRegisterInMoto(t *testing.T) {
	s := teststack.Start(t)
	client := s.ECS(t)
	ctx := context.Background()
	names := teststack.NewNames(t)

	for _, tmpl := range map[string][]byte{"example": readExample(t), "minimal": []byte(`{
  "family": "FAMILY",
  "networkMode": "awsvpc",
  "containerDefinitions": [
    {"name": "b", "image": "{{ image "next" }}", "memory": 128, "portMappings": [{"containerPort": 80}], "environment": [], "healthCheck": {"command": ["CMD", "true"]}},
    {"name": "a", "image": "{{ image "django" }}", "memoryReservation": 64, "mountPoints": [{"sourceVolume": "v", "containerPath": "/v"}]}
  ],
  "volumes": [{"name": "v"}]
}`)} {
		rendered, err := Render("td.json", []byte(strings.ReplaceAll(string(tmpl), "FAMILY", names.Family)), exampleInputs())
		if err != nil {
			t.Fatal(err)
		}
		rendered.Family = aws.String(names.Family)
		reg, err := client.RegisterTaskDefinition(ctx, rendered)
		if err != nil {
			t.Fatal(err)
		}
		arn := *reg.TaskDefinition.TaskDefinitionArn
		desc, err := client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		live := FromLive(desc.TaskDefinition)
		if d := Diff(arn, live, rendered, DiffOptions{}); d != "" || !Equal(live, rendered) {
			t.Fatalf("registered and described back, it differs:\n%s", d)
		}
		changed := *rendered
		changed.ContainerDefinitions = append([]ecstypes.ContainerDefinition(nil), rendered.ContainerDefinitions...)
		changed.ContainerDefinitions[0].Image = aws.String("other@sha256:1234")
		if Equal(live, &changed) {
			t.Fatal("an image change compares equal")
		}
	}
}
