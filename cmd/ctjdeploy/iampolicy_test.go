package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/iampolicy"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// noAWS points the SDK at a closed loopback port, so a test can prove it
// needs no AWS (or see what happens without it).
func noAWS(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("GITHUB_ACTIONS", "")
}

const iamConfig = `environments:
  stage:
    region: us-west-2
    cluster: c1
    service: s1
    task_definition: td.json
    images:
      web: {repository: web-repo, context: ., dockerfile: Dockerfile}
`

func writeIAMFixture(t *testing.T, td string) string {
	t.Helper()
	dir := writeConfig(t, iamConfig)
	if err := os.WriteFile(filepath.Join(dir, "td.json"), []byte(td), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func policyOf(t *testing.T, out string) iampolicy.Document {
	t.Helper()
	var d iampolicy.Document
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("stdout is not a policy: %v\n%s", err, out)
	}
	return d
}

func passRoles(d iampolicy.Document) []string {
	for _, s := range d.Statement {
		if len(s.Action) == 1 && s.Action[0] == "iam:PassRole" {
			return s.Resource
		}
	}
	return nil
}

func TestIAMPolicyFromTemplateWithoutAWS(t *testing.T) {
	noAWS(t)
	t.Setenv("CTJ_TEST_TASK_ROLE", "ctj-task")
	dir := writeIAMFixture(t, `{"family": "fam-{{ env "CTJ_TEST_FAMILY_SUFFIX" }}x",
  "executionRoleArn": "arn:aws:iam::111122223333:role/exec",
  "taskRoleArn": "{{ env "CTJ_TEST_TASK_ROLE" }}",
  "containerDefinitions": [{"name": "web", "image": "{{ image "web" }}"}]}`)
	t.Setenv("CTJ_TEST_FAMILY_SUFFIX", "")
	code, out, errOut := runCLI(t, dir, "stage", "iam-policy", "--account", "111122223333")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if errOut != "" {
		t.Errorf("everything resolved from the template: want no warning, got %s", errOut)
	}
	d := policyOf(t, out)
	if got := strings.Join(passRoles(d), " "); got != "arn:aws:iam::111122223333:role/ctj-task arn:aws:iam::111122223333:role/exec" {
		t.Errorf("PassRole on %s", got)
	}
	if !strings.Contains(out, `"arn:aws:ecs:us-west-2:111122223333:task-definition/fam-x:*"`) ||
		!strings.Contains(out, `"arn:aws:ecr:us-west-2:111122223333:repository/web-repo"`) ||
		!strings.Contains(out, `"arn:aws:ecs:us-west-2:111122223333:service/c1/s1"`) {
		t.Errorf("policy not scoped to the config:\n%s", out)
	}
}

func TestIAMPolicyUnresolvedSaysWhat(t *testing.T) {
	noAWS(t)
	dir := writeIAMFixture(t, `{"family": "fam",
  "executionRoleArn": "{{ tf "execution_role_arn" }}",
  "containerDefinitions": [{"name": "web", "image": "{{ image "web" }}"}]}`)
	code, out, errOut := runCLI(t, dir, "stage", "iam-policy")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, w := range []string{
		"could not learn the AWS account",
		"--account",
		`could not resolve executionRoleArn of the task definition: the template takes it from tf "execution_role_arn"`,
		"no terraform: section",
		"the live task definition could not be read",
		"arn:aws:iam::ACCOUNT_ID:role/UNRESOLVED-executionRoleArn",
	} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errOut)
		}
	}
	if strings.Contains(errOut, "taskRoleArn") {
		t.Errorf("the template names no task role: nothing to warn about:\n%s", errOut)
	}
	d := policyOf(t, out)
	if got := strings.Join(passRoles(d), " "); got != "arn:aws:iam::ACCOUNT_ID:role/UNRESOLVED-executionRoleArn" {
		t.Errorf("PassRole on %s", got)
	}
}

func TestIAMPolicyBadAccount(t *testing.T) {
	dir := writeIAMFixture(t, `{}`)
	if code, _, errOut := runCLI(t, dir, "stage", "iam-policy", "--account", "12"); code != 2 || !strings.Contains(errOut, "12 digits") {
		t.Errorf("exit %d, stderr %s", code, errOut)
	}
}

// TestIAMPolicyOnStack: the account from STS (moto), the roles from the
// example's Terraform outputs; and, when the template cannot give the roles,
// from the live task definition of the service.
func TestIAMPolicyOnStack(t *testing.T) {
	s := teststack.Start(t)
	s.Setenv(t)
	t.Setenv("GITHUB_ACTIONS", "")

	code, out, errOut := runCLI(t, s.ExampleDir(), "stage", "iam-policy")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if errOut != "" {
		t.Errorf("want no warning, got:\n%s", errOut)
	}
	d := policyOf(t, out)
	want := "arn:aws:iam::123456789012:role/civic-tech-jobs-fullstack-stage-execution arn:aws:iam::123456789012:role/civic-tech-jobs-fullstack-stage-task"
	if got := strings.Join(passRoles(d), " "); got != want {
		t.Errorf("PassRole on %s, want %s", got, want)
	}

	n := teststack.NewNames(t)
	s.CreateResources(t, n)
	cfg := strings.NewReplacer("cluster: c1", "cluster: "+n.Cluster, "service: s1", "service: "+n.Service).Replace(iamConfig)
	dir := writeConfig(t, cfg)
	td := `{"family": "{{ env "CTJ_TEST_UNSET_FAMILY" }}", "executionRoleArn": "{{ env "CTJ_TEST_UNSET_ROLE" }}",
  "containerDefinitions": [{"name": "web", "image": "{{ image "web" }}"}]}`
	if err := os.WriteFile(filepath.Join(dir, "td.json"), []byte(td), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, dir, "stage", "iam-policy")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	d = policyOf(t, out)
	if got := strings.Join(passRoles(d), " "); got != "arn:aws:iam::123456789012:role/"+n.Family+"-execution" {
		t.Errorf("PassRole from the live revision: %s", got)
	}
	if !strings.Contains(out, "task-definition/"+n.Family+":*") {
		t.Errorf("family from the live revision:\n%s", out)
	}
}

// TestIAMPolicyRefusesWildcardNames: a family, role or log group that
// renders as a pattern is exit 2 naming it, and no policy is printed.
func TestIAMPolicyRefusesWildcardNames(t *testing.T) {
	noAWS(t)
	for _, tc := range []struct{ name, td, want string }{
		{"family", `{"family": "fam-*", "containerDefinitions": []}`, `family renders as "fam-*"`},
		{"role", `{"family": "fam", "taskRoleArn": "arn:aws:iam::111122223333:role/ctj-?", "containerDefinitions": []}`, `role renders as "arn:aws:iam::111122223333:role/ctj-?"`},
		{"log group", `{"family": "fam", "containerDefinitions": [{"name": "web", "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/*"}}}]}`, `log group (awslogs-group) renders as "/ecs/*"`},
		{"policy variable", `{"family": "fam-${aws:username}", "containerDefinitions": []}`, `family renders as "fam-${aws:username}"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeIAMFixture(t, tc.td)
			code, out, errOut := runCLI(t, dir, "stage", "iam-policy", "--account", "111122223333")
			if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2, nothing printed, naming %s", code, out, errOut, tc.want)
			}
		})
	}
}

func TestIAMPolicyContainerDefinitionNotAnObject(t *testing.T) {
	noAWS(t)
	dir := writeIAMFixture(t, `{"family": "fam", "containerDefinitions": [{"name": "web"}, "web"]}`)
	code, out, errOut := runCLI(t, dir, "stage", "iam-policy", "--account", "111122223333")
	if code != 2 || out != "" || !strings.Contains(errOut, "containerDefinitions[1] is a string once rendered, not an object") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 naming containerDefinitions[1]", code, out, errOut)
	}
}

// TestIAMPolicyFormatTerraform: both argument orders take --account and
// --format; the HCL names the environment and carries the same statements
// (internal/iampolicy's TestHCLMatchesJSONStatementForStatement parses it).
func TestIAMPolicyFormatTerraform(t *testing.T) {
	noAWS(t)
	dir := writeIAMFixture(t, `{"family": "fam", "containerDefinitions": [{"name": "web"}]}`)
	code, jsonOut, errOut := runCLI(t, dir, "stage", "iam-policy", "--account", "111122223333")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	d := policyOf(t, jsonOut)
	want := string(d.HCL("ctjdeploy_stage"))
	for _, args := range [][]string{
		{"stage", "iam-policy", "--account", "111122223333", "--format", "terraform"},
		{"stage", "--account", "111122223333", "--format", "terraform", "iam-policy"},
		{"stage", "--format=terraform", "iam-policy", "--account=111122223333"},
	} {
		code, out, errOut := runCLI(t, dir, args...)
		if code != 0 || out != want {
			t.Errorf("%v: exit %d (%s)\n%s\nwant\n%s", args, code, errOut, out, want)
		}
	}
	if !strings.HasPrefix(want, `data "aws_iam_policy_document" "ctjdeploy_stage" {`) || !strings.Contains(want, `test     = "ArnLike"`) {
		t.Errorf("HCL form:\n%s", want)
	}
	if code, _, errOut := runCLI(t, dir, "stage", "iam-policy", "--account", "111122223333", "--format", "yaml"); code != 2 || !strings.Contains(errOut, `--format "yaml"`) {
		t.Errorf("--format yaml: exit %d, %s", code, errOut)
	}
}
