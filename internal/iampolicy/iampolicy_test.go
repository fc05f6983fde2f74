package iampolicy

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json")

func exampleEnv(t *testing.T) *config.Environment {
	t.Helper()
	f, err := config.Load(filepath.Join("..", "..", "example", "ctjdeploy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := f.Env("stage")
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestExamplePolicyGolden pins the whole policy of the example config; read
// testdata/example-stage.json when it changes (go test -update rewrites it).
func TestExamplePolicyGolden(t *testing.T) {
	d := Policy(exampleEnv(t), "123456789012", "civic-tech-jobs-fullstack-stage", []string{
		"arn:aws:iam::123456789012:role/ctj-stage-task",
		"arn:aws:iam::123456789012:role/ctj-stage-execution",
		"arn:aws:iam::123456789012:role/ctj-stage-task", // named twice: listed once
	})
	got := d.JSON()
	golden := filepath.Join("testdata", "example-stage.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("policy differs from %s:\n%s", golden, got)
	}
}

func TestPolicyScoping(t *testing.T) {
	env := exampleEnv(t)
	d := Policy(env, "123456789012", "fam", []string{"arn:aws:iam::123456789012:role/exec"})
	byAction := map[string]Statement{}
	for _, s := range d.Statement {
		if s.Effect != "Allow" || s.Sid == "" || len(s.Resource) == 0 {
			t.Errorf("statement %+v: want Allow, a Sid and resources", s)
		}
		for _, a := range s.Action {
			if _, dup := byAction[a]; dup {
				t.Errorf("%s allowed by two statements", a)
			}
			byAction[a] = s
		}
	}
	res := func(a string) string { return strings.Join(byAction[a].Resource, " ") }
	cases := []struct{ action, resource string }{
		{"ecr:GetAuthorizationToken", "*"},
		{"ecr:PutImage", "arn:aws:ecr:us-west-2:123456789012:repository/civic-tech-jobs-backend arn:aws:ecr:us-west-2:123456789012:repository/civic-tech-jobs-frontend"},
		{"ecr:BatchGetImage", "arn:aws:ecr:us-west-2:123456789012:repository/civic-tech-jobs-backend arn:aws:ecr:us-west-2:123456789012:repository/civic-tech-jobs-frontend"},
		{"ecs:UpdateService", "arn:aws:ecs:us-west-2:123456789012:service/incubator-prod/civic-tech-jobs-fullstack-stage"},
		{"ecs:DescribeServices", "arn:aws:ecs:us-west-2:123456789012:service/incubator-prod/civic-tech-jobs-fullstack-stage"},
		{"ecs:RegisterTaskDefinition", "arn:aws:ecs:us-west-2:123456789012:task-definition/fam:*"},
		{"ecs:TagResource", "arn:aws:ecs:us-west-2:123456789012:task-definition/fam:*"},
		{"ecs:DescribeTaskDefinition", "*"},
		{"ecs:ListTaskDefinitions", "*"},
		{"ecs:DescribeTasks", "arn:aws:ecs:us-west-2:123456789012:task/incubator-prod/*"},
		{"ecs:ListTasks", "*"},
		{"ecs:ListServiceDeployments", "arn:aws:ecs:us-west-2:123456789012:service/incubator-prod/civic-tech-jobs-fullstack-stage"},
		{"ecs:DescribeServiceDeployments", "arn:aws:ecs:us-west-2:123456789012:service/incubator-prod/civic-tech-jobs-fullstack-stage arn:aws:ecs:us-west-2:123456789012:service-deployment/incubator-prod/civic-tech-jobs-fullstack-stage/*"},
		{"ecs:StopServiceDeployment", "arn:aws:ecs:us-west-2:123456789012:service/incubator-prod/civic-tech-jobs-fullstack-stage arn:aws:ecs:us-west-2:123456789012:service-deployment/incubator-prod/civic-tech-jobs-fullstack-stage/*"},
		{"iam:PassRole", "arn:aws:iam::123456789012:role/exec"},
	}
	for _, c := range cases {
		if got := res(c.action); got != c.resource {
			t.Errorf("%s on %q, want %q", c.action, got, c.resource)
		}
	}
	cond := func(a string) string {
		b, _ := json.Marshal(byAction[a].Condition)
		return string(b)
	}
	conds := map[string]string{
		"ecs:ListTasks":              `{"ArnEquals":{"ecs:cluster":"arn:aws:ecs:us-west-2:123456789012:cluster/incubator-prod"}}`,
		"iam:PassRole":               `{"StringEquals":{"iam:PassedToService":"ecs-tasks.amazonaws.com"}}`,
		"ecs:RegisterTaskDefinition": `{"StringEquals":{"aws:RequestTag/ctjdeploy:env":"stage"}}`,
		"ecs:TagResource":            `{"StringEquals":{"ecs:CreateAction":"RegisterTaskDefinition"}}`,
		"ecs:UpdateService":          `{"ArnLike":{"ecs:task-definition":"arn:aws:ecs:us-west-2:123456789012:task-definition/fam:*"}}`,
		"ecs:DescribeServices":       `null`,
	}
	for a, want := range conds {
		if got := cond(a); got != want {
			t.Errorf("%s condition %s, want %s", a, got, want)
		}
	}
}

func TestPolicyVariants(t *testing.T) {
	env := exampleEnv(t)
	env.Registry = "210987654321.dkr.ecr.us-west-2.amazonaws.com"
	d := Policy(env, "", "fam", nil)
	js := string(d.JSON())
	if !strings.Contains(js, "arn:aws:ecr:us-west-2:210987654321:repository/civic-tech-jobs-backend") {
		t.Errorf("repositories must be in the registry's account:\n%s", js)
	}
	if !strings.Contains(js, "arn:aws:ecs:us-west-2:ACCOUNT_ID:service/") {
		t.Errorf("unknown account must read ACCOUNT_ID:\n%s", js)
	}
	if strings.Contains(js, "iam:PassRole") {
		t.Errorf("no roles named: no PassRole statement:\n%s", js)
	}
	env.Region = "cn-north-1"
	if js := string(Policy(env, "1", "f", nil).JSON()); !strings.Contains(js, "arn:aws-cn:ecs:cn-north-1:") {
		t.Errorf("China regions use the aws-cn partition:\n%s", js)
	}
}

func TestPartitionAndRoleARN(t *testing.T) {
	for region, want := range map[string]string{"us-west-2": "aws", "cn-northwest-1": "aws-cn", "us-gov-west-1": "aws-us-gov", "eu-central-1": "aws"} {
		if got := Partition(region); got != want {
			t.Errorf("Partition(%s) = %s, want %s", region, got, want)
		}
	}
	if got := RoleARN("aws", "123", "ecsTaskExecutionRole"); got != "arn:aws:iam::123:role/ecsTaskExecutionRole" {
		t.Errorf("RoleARN(name) = %s", got)
	}
	if got := RoleARN("aws", "123", "arn:aws:iam::999:role/x"); got != "arn:aws:iam::999:role/x" {
		t.Errorf("RoleARN(arn) = %s", got)
	}
}

func TestPolicyLockParameter(t *testing.T) {
	env := exampleEnv(t)
	env.Lock = &config.Lock{Parameter: "/team/stage-deploy"}
	js := string(Policy(env, "1", "fam", nil).JSON())
	if !strings.Contains(js, `"arn:aws:ssm:us-west-2:1:parameter/team/stage-deploy"`) || strings.Contains(js, "parameter/ctjdeploy/") {
		t.Errorf("the lock statement must name the configured parameter:\n%s", js)
	}
	env.Lock = &config.Lock{Off: true}
	if js := string(Policy(env, "1", "fam", nil).JSON()); strings.Contains(js, "ssm:") {
		t.Errorf("lock: false needs no SSM permission:\n%s", js)
	}
}
