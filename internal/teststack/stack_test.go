package teststack

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

func TestParseEnv(t *testing.T) {
	t.Setenv("PATH", "/bin")
	env, err := parseEnv("export A=1\n\n# c\nexport PATH=\"/x:/usr/bin:$PATH\"\nexport B='q r'\n")
	if err != nil {
		t.Fatal(err)
	}
	if env["A"] != "1" || env["PATH"] != "/x:/usr/bin:/bin" || env["B"] != "q r" {
		t.Fatalf("got %q", env)
	}
	if _, err := parseEnv("export nothing\n"); err == nil {
		t.Fatal("want an error for a line without =")
	}
}

func TestNewNamesUnique(t *testing.T) {
	a, b := NewNames(t), NewNames(t)
	if a.Prefix == b.Prefix || a.Cluster == b.Cluster || a.BackendRepo == b.BackendRepo {
		t.Fatalf("names not unique: %+v %+v", a, b)
	}
	for _, n := range []string{a.Cluster, a.Service, a.Family, a.BackendRepo, a.FrontendRepo} {
		if n != strings.ToLower(n) || strings.ContainsAny(n, " /_") {
			t.Errorf("%q is not a valid ECR/ECS name", n)
		}
	}
}

func TestStackEnv(t *testing.T) {
	s := Start(t)
	for _, k := range []string{"DOCKER_HOST", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EC2_METADATA_DISABLED", "CHECKPOINT_DISABLE",
		"TF_CLI_CONFIG_FILE", "TF_BINARY", "PATH", "DOCKER_BUILDKIT", "DOCKER_CONFIG",
		"CTJDEPLOY_REGISTRY", "CTJDEPLOY_STACK_DIR", "CTJDEPLOY_MOTO_URL", "CTJDEPLOY_LB_URL"} {
		if s.Env[k] == "" {
			t.Errorf("stack env lacks %s", k)
		}
	}
	// `scripts/stack env` points AWS_ENDPOINT_URL at the simulator; the
	// tests' copy of the environment points it at moto (see Stack.Env).
	if s.SimEndpoint == s.MotoEndpoint || s.Env["AWS_ENDPOINT_URL"] != s.MotoEndpoint || s.Env["CTJDEPLOY_MOTO_URL"] != s.MotoEndpoint {
		t.Errorf("endpoints: simulator %s, moto %s, tests' AWS_ENDPOINT_URL %s", s.SimEndpoint, s.MotoEndpoint, s.Env["AWS_ENDPOINT_URL"])
	}
	// /usr/bin first (Debian's docker, with BuildKit), then terraform's dir.
	if !strings.HasPrefix(s.Env["PATH"], "/usr/bin:"+filepath.Dir(s.TerraformBinary)+":") {
		t.Errorf("PATH does not start with /usr/bin and terraform's dir: %s", s.Env["PATH"])
	}
	// The stack uses a Terraform of 1.5 or newer, the same one on its PATH
	// and in TF_BINARY.
	s.Setenv(t)
	out, err := s.Command("terraform", "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), s.TerraformVersion) || !regexp.MustCompile(`^Terraform v1\.([5-9]|[1-9][0-9])\.`).Match(out) {
		t.Errorf("terraform on the stack's PATH is not the stack's %q (1.5 or newer): %v\n%s", s.TerraformVersion, err, out)
	}
}

func TestRegistryRejectsAnonymousPush(t *testing.T) {
	s := Start(t)
	url := "http://" + s.Registry + "/v2/" + ExampleBackendRepo + "/blobs/uploads/"

	resp, err := http.Post(url, "application/octet-stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous POST %s: %s, want 401", url, resp.Status)
	}
	if h := resp.Header.Get("Www-Authenticate"); !strings.HasPrefix(h, "Basic") {
		t.Errorf("WWW-Authenticate = %q, want Basic", h)
	}

	req, _ := http.NewRequest(http.MethodPost, url, nil)
	req.SetBasicAuth(RegistryUser, "wrong-password")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST with a wrong password: %s, want 401", resp.Status)
	}

	req, _ = http.NewRequest(http.MethodPost, url, nil)
	req.SetBasicAuth(RegistryUser, RegistryPassword)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST with AWS:%s: %s, want 202", RegistryPassword, resp.Status)
	}
	// Cancel the upload session it opened.
	if loc := resp.Header.Get("Location"); loc != "" {
		if !strings.HasPrefix(loc, "http") {
			loc = "http://" + s.Registry + loc
		}
		del, _ := http.NewRequest(http.MethodDelete, loc, nil)
		del.SetBasicAuth(RegistryUser, RegistryPassword)
		if resp, err := http.DefaultClient.Do(del); err == nil {
			resp.Body.Close()
		}
	}
}

func TestECRAuthorizationTokenOpensRegistry(t *testing.T) {
	s := Start(t)
	out, err := s.ECR(t).GetAuthorizationToken(context.Background(), &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.AuthorizationData) == 0 {
		t.Fatal("no authorization data")
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(raw), RegistryUser+":"+RegistryPassword; got != want {
		t.Fatalf("token decodes to %q, want %q", got, want)
	}
	user, pass, _ := strings.Cut(string(raw), ":")
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.Registry+"/v2/", nil)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/ with the ECR token: %s", resp.Status)
	}
}

func TestMotoHasExampleService(t *testing.T) {
	s := Start(t)
	ctx := context.Background()
	out, err := s.ECS(t).DescribeServices(ctx, &ecs.DescribeServicesInput{
		Cluster: aws.String(ExampleCluster), Services: []string{ExampleService},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Services) != 1 || len(out.Failures) != 0 {
		t.Fatalf("DescribeServices: %d services, failures %+v", len(out.Services), out.Failures)
	}
	svc := out.Services[0]
	if aws.ToString(svc.Status) != "ACTIVE" || svc.LaunchType != "EC2" || svc.DesiredCount != 1 {
		t.Errorf("service: status %s, launch type %s, desired %d", aws.ToString(svc.Status), svc.LaunchType, svc.DesiredCount)
	}
	if dc := svc.DeploymentConfiguration; dc == nil || aws.ToInt32(dc.MinimumHealthyPercent) != 0 || aws.ToInt32(dc.MaximumPercent) != 100 {
		t.Errorf("example service deployment configuration %+v, want 0%%/100%% (what the data guard asks of stage)", dc)
	}
	td, err := s.ECS(t).DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: svc.TaskDefinition})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(td.TaskDefinition.Family) != ExampleFamily || len(td.TaskDefinition.ContainerDefinitions) != 3 {
		t.Errorf("task definition %s: family %s, %d containers", aws.ToString(svc.TaskDefinition),
			aws.ToString(td.TaskDefinition.Family), len(td.TaskDefinition.ContainerDefinitions))
	}
	repos, err := s.ECR(t).DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{
		RepositoryNames: []string{ExampleBackendRepo, ExampleFrontendRepo},
	})
	if err != nil || len(repos.Repositories) != 2 {
		t.Fatalf("example ECR repositories: %v", err)
	}
}

func TestCreateResourcesIsolatedAndIdempotent(t *testing.T) {
	s := Start(t)
	n := NewNames(t)
	r1 := s.CreateResources(t, n)
	r2 := s.CreateResources(t, n)
	if r1.ServiceArn == "" || r1.ServiceArn != r2.ServiceArn || r1.TaskDefinitionArn != r2.TaskDefinitionArn || r1.ClusterArn != r2.ClusterArn {
		t.Fatalf("not idempotent: %+v vs %+v", r1, r2)
	}
	if !strings.HasSuffix(r1.TaskDefinitionArn, n.Family+":1") {
		t.Errorf("task definition %s, want %s:1", r1.TaskDefinitionArn, n.Family)
	}
	if len(r1.RepositoryURIs) != 2 {
		t.Errorf("repositories %v", r1.RepositoryURIs)
	}
	out, err := s.ECS(t).DescribeServices(context.Background(), &ecs.DescribeServicesInput{
		Cluster: aws.String(n.Cluster), Services: []string{n.Service},
	})
	if err != nil || len(out.Services) != 1 {
		t.Fatalf("DescribeServices of %s: %v", n.Service, err)
	}
	svc := out.Services[0]
	if dc := svc.DeploymentConfiguration; dc == nil || aws.ToInt32(dc.MinimumHealthyPercent) != 0 || aws.ToInt32(dc.MaximumPercent) != 200 {
		t.Errorf("deployment configuration %+v, want 0%%/200%%", dc)
	}
	if svc.LaunchType != "EC2" || svc.RunningCount != 1 {
		t.Errorf("launch type %s, running %d; want EC2, 1", svc.LaunchType, svc.RunningCount)
	}
	// The example's service is untouched by a test's own resources.
	ex, err := s.ECS(t).DescribeServices(context.Background(), &ecs.DescribeServicesInput{
		Cluster: aws.String(n.Cluster), Services: []string{ExampleService},
	})
	if err != nil || len(ex.Services) != 0 {
		t.Errorf("the test's cluster holds the example service: %v %+v", err, ex.Services)
	}
}

type tfOutput struct {
	Sensitive bool            `json:"sensitive"`
	Type      json.RawMessage `json:"type"`
	Value     json.RawMessage `json:"value"`
}

func TestTerraformOutputs(t *testing.T) {
	s := Start(t)
	cmd := s.Command(s.TerraformBinary, "output", "-json")
	cmd.Dir = filepath.Join(s.ExampleDir(), "infra", "stage")
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("terraform output -json: %v", err)
	}
	var outs map[string]tfOutput
	if err := json.Unmarshal(b, &outs); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"django_allowed_hosts": `"stage.civictechjobs.org localhost"`,
		"sql_host":             `"localhost"`,
		"sql_port":             `5432`,
		"debug":                `false`,
		"log_group":            `"/ecs/civic-tech-jobs-fullstack-stage"`,
		"db_password_ssm_arn":  `"arn:aws:ssm:us-west-2:123456789012:parameter/civic-tech-jobs/fullstack-stage-db-owner-password"`,
	}
	for k, v := range want {
		o, ok := outs[k]
		if !ok {
			t.Errorf("output %s missing", k)
			continue
		}
		if string(o.Value) != v || o.Sensitive {
			t.Errorf("output %s = %s (sensitive %v), want %s", k, o.Value, o.Sensitive, v)
		}
	}
	for _, k := range []string{"db_name", "db_user", "django_secret_key_ssm_arn", "execution_role_arn", "task_role_arn"} {
		if _, ok := outs[k]; !ok {
			t.Errorf("output %s missing", k)
		}
	}
	if !outs["db_password"].Sensitive {
		t.Error("db_password is not marked sensitive")
	}
	if v := string(outs["allowed_hosts_list"].Value); !strings.HasPrefix(v, "[") {
		t.Errorf("allowed_hosts_list = %s, want a list", v)
	}
}

func TestBuildExampleImages(t *testing.T) {
	s := Start(t)
	n := NewNames(t)
	for _, img := range []struct{ context, dockerfile, repo, port, base string }{
		{"backend", "stage/django.dockerfile", n.BackendRepo, "8000/tcp", "python:3.13-alpine"},
		{"frontend", "stage/next.dockerfile", n.FrontendRepo, "3000/tcp", "node:22-alpine"},
	} {
		tag := s.Registry + "/" + img.repo + ":test"
		cmd := s.Command("/usr/bin/docker", "build", "--progress=plain",
			"-f", filepath.Join(s.ExampleDir(), img.dockerfile), "-t", tag,
			filepath.Join(s.ExampleDir(), img.context))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker build %s: %v\n%s", img.dockerfile, err, out)
		}
		t.Cleanup(func() { _ = s.Command("/usr/bin/docker", "rmi", "-f", tag).Run() })
		// A fully cached build prints no RUN step: that RUN steps run on
		// this engine is checked below with a step no cache can hold.
		if strings.Contains(strings.ToLower(string(out)), "pulling") {
			t.Errorf("%s: the build tried to pull:\n%s", img.dockerfile, out)
		}
		nonce := s.Command("/usr/bin/docker", "build", "--progress=plain", "-t", tag+"-run", "-")
		nonce.Stdin = strings.NewReader("FROM " + img.base + "\nRUN echo " + n.Prefix + " > /nonce\n")
		nout, err := nonce.CombinedOutput()
		if err != nil {
			t.Fatalf("a RUN step on %s: %v\n%s", img.base, err, nout)
		}
		t.Cleanup(func() { _ = s.Command("/usr/bin/docker", "rmi", "-f", tag+"-run").Run() })
		if !strings.Contains(string(nout), "RUN ") {
			t.Errorf("%s: no BuildKit RUN step in the output:\n%s", img.dockerfile, nout)
		}
		insp, err := s.Command("/usr/bin/docker", "image", "inspect", "-f", "{{json .Config.ExposedPorts}}", tag).Output()
		if err != nil || !strings.Contains(string(insp), img.port) {
			t.Errorf("%s: exposed ports %s (%v), want %s", tag, insp, err, img.port)
		}
	}
}
