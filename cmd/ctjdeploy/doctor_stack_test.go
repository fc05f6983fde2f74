package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/ecssim"
	"github.com/hackforla/ctjdeploy/internal/iampolicy"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// doctorEnv is a test's own environment shaped like the example behind the
// simulator, with policy (nil: none) enforced. incubator: the service as
// the incubator runs it (0 % / 200 %, no breaker, the seeded revision that
// no ctjdeploy registered); else the example's as ctjdeploy leaves it
// (0 % / 100 %, breaker with rollback, a revision tagged by ctjdeploy).
func doctorEnv(t *testing.T, incubator bool, policy []byte) (cfgPath string, st *teststack.Stack, n teststack.Names, sim *ecssim.Sim) {
	t.Helper()
	st = teststack.Start(t)
	st.Setenv(t)
	n = teststack.NewNames(t)
	st.CreateResources(t, n)
	ctx := context.Background()
	moto := st.ECS(t)
	if !incubator {
		td := teststack.ExampleTaskDefinition(n, st.Registry, "initial")
		td.Tags = []ecstypes.Tag{{Key: aws.String("ctjdeploy:commit"), Value: aws.String("0123456789abcdef0123456789abcdef01234567")}, {Key: aws.String("ctjdeploy:env"), Value: aws.String("stage")}}
		rt, err := moto.RegisterTaskDefinition(ctx, td)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := moto.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(n.Cluster), Service: aws.String(n.Service),
			TaskDefinition: rt.TaskDefinition.TaskDefinitionArn,
			DeploymentConfiguration: &ecstypes.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(0), MaximumPercent: aws.Int32(100),
				DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: true}}}); err != nil {
			t.Fatal(err)
		}
	}
	if policy != nil {
		// The incubator's policy names its cluster; this test's is its own.
		policy = bytes.ReplaceAll(policy, []byte("service/incubator-prod/*"), []byte("service/"+n.Cluster+"/*"))
	}
	var err error
	sim, err = ecssim.New(ecssim.Options{Upstream: st.MotoEndpoint, Scenario: ecssim.Success, Polls: 1, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	// The simulator reports the service's deployment settings as configured.
	if incubator {
		sim.Configure(n.Cluster, n.Service, ecssim.ServiceConfig{MinimumHealthyPercent: 0, MaximumPercent: 200})
	} else {
		sim.Configure(n.Cluster, n.Service, ecssim.ServiceConfig{CircuitBreaker: true, Rollback: true, MinimumHealthyPercent: 0, MaximumPercent: 100})
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	t.Setenv("HOME", t.TempDir())

	dir, s := exampleCopy(t, st, n)
	if err := os.WriteFile(filepath.Join(dir, "td.json"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := `environments:
  stage:
    task_definition: td.json
    region: us-west-2
    cluster: ` + n.Cluster + `
    service: ` + n.Service + `
    registry: ` + st.Registry + `
    terraform: {dir: infra/stage}
    images:
      django: {repository: ` + n.BackendRepo + `, context: backend, dockerfile: stage/django.dockerfile}
      next:   {repository: ` + n.FrontendRepo + `, context: frontend, dockerfile: stage/next.dockerfile}
`
	cfgPath = filepath.Join(dir, "ctjdeploy.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, st, n, sim
}

type doctorDoc struct {
	Checks []struct{ Check, Status, Detail, Fix string } `json:"checks"`
}

func runDoctor(t *testing.T, cfg string) (int, doctorDoc, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run([]string{"--config", cfg, "--output", "json", "stage", "doctor"}, &out, &errb)
	var doc doctorDoc
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("doctor --output json: %v\nstdout: %s\nstderr: %s", err, out.String(), errb.String())
	}
	return code, doc, errb.String()
}

func TestStackDoctorExample(t *testing.T) {
	cfg, _, _, _ := doctorEnv(t, false, nil)
	start := time.Now()
	code, doc, stderr := runDoctor(t, cfg)
	t.Logf("doctor took %s", time.Since(start))
	status := map[string]string{}
	for _, c := range doc.Checks {
		status[c.Check] = c.Status
		if c.Status == "failed" {
			t.Errorf("failed: %s: %s", c.Check, c.Detail)
		}
	}
	if code != 0 {
		t.Fatalf("exit %d, want 0; stderr %s", code, stderr)
	}
	for _, name := range []string{"credentials", "deployment controller and strategy", "minimum/maximum percent", "circuit breaker", "desired count",
		"live revision owner", "repository " + "", "lock", "permission ecs:DescribeServices", "terraform output execution_role_arn"} {
		if name == "repository " {
			continue
		}
		if status[name] != "ok" {
			t.Errorf("%s: %q, want ok", name, status[name])
		}
	}
}

// snapshot is what a run must not change: the service, the family's
// revisions, both repositories' images, the lock parameter (read at moto,
// behind the simulator's policy).
func snapshot(t *testing.T, st *teststack.Stack, n teststack.Names) string {
	t.Helper()
	ctx := context.Background()
	cfg := st.AWSConfig(t)
	ec := ecs.NewFromConfig(cfg)
	var b strings.Builder
	ds, err := ec.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(n.Cluster), Services: []string{n.Service}})
	if err != nil || len(ds.Services) != 1 {
		t.Fatalf("DescribeServices: %v", err)
	}
	s := ds.Services[0]
	fmt.Fprintf(&b, "service %s desired %d deployments %d\n", aws.ToString(s.TaskDefinition), s.DesiredCount, len(s.Deployments))
	lt, err := ec.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(n.Family)})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "revisions %v\n", lt.TaskDefinitionArns)
	for _, repo := range []string{n.BackendRepo, n.FrontendRepo} {
		li, err := ecr.NewFromConfig(cfg).ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String(repo)})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, id := range li.ImageIds {
			ids = append(ids, aws.ToString(id.ImageDigest)+":"+aws.ToString(id.ImageTag))
		}
		sort.Strings(ids)
		fmt.Fprintf(&b, "%s %v\n", repo, ids)
	}
	_, err = ssm.NewFromConfig(cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(config.DefaultLockParameter(n.Cluster, n.Service))})
	fmt.Fprintf(&b, "lock err %v\n", err != nil)
	return b.String()
}

// Under the incubator's own CI policy (testdata/incubator_builder.json, as
// terraform/cicd.tf of hackforla/incubator writes it): a deploy and a dry
// run end at the preflight with exit 2 within seconds, naming every denied
// read with its resource, nothing built or changed; doctor names the 200 %,
// the missing breaker, the Terraform-owned revision and the permissions.
func TestStackIncubatorBuilder(t *testing.T) {
	policy, err := os.ReadFile(filepath.Join("testdata", "incubator_builder.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, st, n, sim := doctorEnv(t, true, policy)
	before := snapshot(t, st, n)
	denied := []string{
		"ecs:DescribeTaskDefinition on *",
		"ecs:ListTasks on *",
		"ecs:DescribeTasks on arn:aws:ecs:us-west-2:123456789012:task/" + n.Cluster + "/*",
		"ecs:ListServiceDeployments on arn:aws:ecs:us-west-2:123456789012:service/" + n.Cluster + "/" + n.Service,
		"ecs:DescribeServiceDeployments on arn:aws:ecs:us-west-2:123456789012:service-deployment/" + n.Cluster + "/" + n.Service + "/*",
		"ssm:GetParameterHistory on arn:aws:ssm:us-west-2:123456789012:parameter/ctjdeploy/" + n.Cluster + "/" + n.Service + "/lock",
		"ecr:DescribeRepositories on arn:aws:ecr:us-west-2:123456789012:repository/" + n.BackendRepo,
		"ecr:DescribeRepositories on arn:aws:ecr:us-west-2:123456789012:repository/" + n.FrontendRepo,
		"ecr:DescribeImages on arn:aws:ecr:us-west-2:123456789012:repository/" + n.BackendRepo,
		"ecr:ListImages on arn:aws:ecr:us-west-2:123456789012:repository/" + n.FrontendRepo,
	}
	// A tag no other run builds: the engine must not hold its image after.
	tag := fmt.Sprintf("preflight%x", time.Now().UnixNano())
	for _, args := range [][]string{{"stage", "--dry-run", "--tag", tag}, {"stage", "--tag", tag}, {"stage", "rollback", "--dry-run"}} {
		var out, errb bytes.Buffer
		start := time.Now()
		code := run(append([]string{"--config", cfg}, args...), &out, &errb)
		took := time.Since(start)
		t.Logf("%v: exit %d in %s", args, code, took)
		if args[1] == "--dry-run" {
			t.Logf("message:\n%s", errb.String())
		}
		msg := errb.String()
		if code != 2 {
			t.Fatalf("%v: exit %d, want 2\n%s", args, code, msg)
		}
		if took > 10*time.Second {
			t.Errorf("%v took %s, want under 10 s", args, took)
		}
		for _, d := range denied {
			if !strings.Contains(msg, d) {
				t.Errorf("%v: the message lacks %q", args, d)
			}
		}
		for _, w := range []string{"iam-policy", "nothing was built, pushed or written", "doctor"} {
			if !strings.Contains(msg, w) {
				t.Errorf("%v: the message lacks %q", args, w)
			}
		}
		if strings.Contains(msg, "ecs:DescribeServices on") || strings.Contains(msg, "ecr:GetAuthorizationToken on") {
			t.Errorf("%v: an allowed read is listed as denied", args)
		}
		if strings.Contains(msg, "==> build") || strings.Contains(msg, "==> live") {
			t.Errorf("%v: a phase after the preflight started:\n%s", args, msg)
		}
	}
	for _, n := range []string{"django", "next"} {
		if out, err := st.Command("docker", "image", "inspect", "ctjdeploy/"+n+":"+tag).CombinedOutput(); err == nil {
			t.Errorf("the engine holds ctjdeploy/%s:%s: a build ran\n%s", n, tag, out)
		}
	}
	if t.Failed() {
		return
	}
	if after := snapshot(t, st, n); after != before {
		t.Errorf("the stack changed:\nbefore %s\nafter  %s", before, after)
	}

	code, doc, _ := runDoctor(t, cfg)
	if code != 2 {
		t.Errorf("doctor exit %d, want 2", code)
	}
	got := map[string]string{}
	for _, c := range doc.Checks {
		got[c.Check] = c.Status + ": " + c.Detail + "\n" + c.Fix
	}
	for name, want := range map[string]string{
		"minimum/maximum percent":               "maximum 200 %",
		"circuit breaker":                       "failure_threshold",
		"permission ecs:DescribeTaskDefinition": "denied",
		"permission ecs:ListTasks":              "denied",
		"permission ssm:GetParameterHistory":    "denied",
		"permission ecs:ListServiceDeployments": "denied",
		"permission ecr:DescribeRepositories":   "denied",
	} {
		if g := got[name]; !strings.HasPrefix(g, "failed") || !strings.Contains(g, want) {
			t.Errorf("%s: %q, want failed naming %q", name, g, want)
		}
	}
	// ecr:BatchGetImage (a pull the incubator allows) still tells the
	// repositories exist.
	for _, repo := range []string{n.BackendRepo, n.FrontendRepo} {
		if g := got["repository "+repo]; !strings.HasPrefix(g, "ok: exists") {
			t.Errorf("repository %s: %q, want ok", repo, g)
		}
	}
	// Who registered the live revision is in its tags, which only
	// ecs:DescribeTaskDefinition reads: under this policy doctor cannot tell.
	if g := got["live revision owner"]; !strings.HasPrefix(g, "unknown") || !strings.Contains(g, "ecs:DescribeTaskDefinition") {
		t.Errorf("live revision owner: %q, want unknown naming ecs:DescribeTaskDefinition", g)
	}
	if after := snapshot(t, st, n); after != before {
		t.Errorf("doctor changed the stack:\nbefore %s\nafter  %s", before, after)
	}

	// The text form: one line per check, the fixes under the failed ones.
	var out, errb bytes.Buffer
	if code := run([]string{"--config", cfg, "stage", "doctor"}, &out, &errb); code != 2 {
		t.Errorf("doctor (text) exit %d, want 2", code)
	}
	t.Logf("doctor under incubator_builder:\n%s%s", out.String(), errb.String())
	for _, want := range []string{"failed   minimum/maximum percent: minimum healthy 0 %, maximum 200 %", "failed   circuit breaker:", "failed   permission ecs:ListTasks:", "unknown  live revision owner:", "         fix:\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("doctor's text lacks %q", want)
		}
	}

	// A maintainer's own (unrestricted) credentials: the permissions pass
	// and the Terraform-owned revision is named.
	if err := sim.SetPolicy(nil); err != nil {
		t.Fatal(err)
	}
	code, doc, _ = runDoctor(t, cfg)
	if code != 2 {
		t.Errorf("doctor exit %d, want 2", code)
	}
	got = map[string]string{}
	for _, c := range doc.Checks {
		got[c.Check] = c.Status + ": " + c.Detail + "\n" + c.Fix
		if strings.HasPrefix(c.Check, "permission ") && c.Status == "failed" {
			t.Errorf("%s failed without a policy: %s", c.Check, c.Detail)
		}
	}
	for name, want := range map[string]string{
		"minimum/maximum percent": "deployment_maximum_percent         = 100",
		"circuit breaker":         "deployment_circuit_breaker         = true",
		"live revision owner":     "no ctjdeploy:* tags",
	} {
		if g := got[name]; !strings.HasPrefix(g, "failed") || !strings.Contains(g, want) {
			t.Errorf("%s: %q, want failed naming %q", name, g, want)
		}
	}
}

// TestStackDoctorSimulatesWrites: under exactly the policy iam-policy
// prints, plus iam:SimulatePrincipalPolicy, doctor asks the simulator about
// each write and passes; without the iam:PassRole statement it fails
// naming iam:PassRole and the role, with the statement to add.
func TestStackDoctorSimulatesWrites(t *testing.T) {
	cfg, _, _, sim := doctorEnv(t, false, nil)
	var out, errb bytes.Buffer
	if code := run([]string{"--config", cfg, "stage", "iam-policy"}, &out, &errb); code != 0 {
		t.Fatalf("iam-policy: exit %d\n%s", code, errb.String())
	}
	var d iampolicy.Document
	if err := json.Unmarshal(out.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	d.Statement = append(d.Statement, iampolicy.Statement{Sid: "DoctorSimulates", Effect: "Allow", Action: []string{"iam:SimulatePrincipalPolicy"}, Resource: []string{"*"}})
	policy := d.JSON()
	if err := sim.SetPolicy(policy); err != nil {
		t.Fatal(err)
	}
	code, doc, stderr := runDoctor(t, cfg)
	writes := 0
	for _, c := range doc.Checks {
		if c.Status == "failed" {
			t.Errorf("failed under the printed policy: %s: %s", c.Check, c.Detail)
		}
		if strings.HasSuffix(c.Detail, "(iam:SimulatePrincipalPolicy)") {
			writes++
		}
		if c.Check == "permissions to write" {
			t.Errorf("writes not simulated: %s", c.Detail)
		}
	}
	if code != 0 || writes < 8 {
		t.Fatalf("exit %d, %d simulated writes; want 0 and every write\n%s", code, writes, stderr)
	}

	if err := sim.SetPolicy(without(t, policy, "PassTaskDefinitionRolesToECSTasks")); err != nil {
		t.Fatal(err)
	}
	code, doc, _ = runDoctor(t, cfg)
	if code != 2 {
		t.Errorf("without iam:PassRole: exit %d, want 2", code)
	}
	found := false
	for _, c := range doc.Checks {
		if c.Status != "failed" {
			continue
		}
		if c.Check != "permission iam:PassRole" || !strings.Contains(c.Detail, "implicitDeny on arn:aws:iam::123456789012:role/") || !strings.Contains(c.Fix, `actions   = ["iam:PassRole"]`) {
			t.Errorf("failed: %s: %s\n%s", c.Check, c.Detail, c.Fix)
			continue
		}
		found = true
	}
	if !found {
		t.Error("iam:PassRole not named")
	}
}
