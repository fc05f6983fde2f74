package ecssim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

const testPolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Svc", "Effect": "Allow", "Action": ["ecs:DescribeServices", "ECS:update*"],
     "Resource": "arn:aws:ecs:us-west-2:123456789012:service/c/s",
     "Condition": {"ArnLike": {"ecs:task-definition": "arn:aws:ecs:us-west-2:123456789012:task-definition/fam:*"}}},
    {"Sid": "Describe", "Effect": "Allow", "Action": "ecs:DescribeServices", "Resource": "arn:aws:ecs:us-west-2:123456789012:service/c/s"},
    {"Sid": "Register", "Effect": "Allow", "Action": "ecs:RegisterTaskDefinition",
     "Resource": "arn:aws:ecs:us-west-2:123456789012:task-definition/fam:*",
     "Condition": {"StringEquals": {"aws:RequestTag/ctjdeploy:env": "stage"}}},
    {"Sid": "Tag", "Effect": "Allow", "Action": "ecs:TagResource", "Resource": "arn:aws:ecs:us-west-2:123456789012:task-definition/fam:*",
     "Condition": {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}}},
    {"Sid": "Pass", "Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::123456789012:role/exec",
     "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}},
    {"Sid": "ListTasks", "Effect": "Allow", "Action": "ecs:ListTasks", "Resource": "*",
     "Condition": {"ArnEquals": {"ecs:cluster": "arn:aws:ecs:us-west-2:123456789012:cluster/c"}}},
    {"Sid": "Token", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
    {"Sid": "Repo", "Effect": "Allow", "Action": "ecr:Describe*", "Resource": "arn:aws:ecr:us-west-2:123456789012:repository/web"},
    {"Sid": "NoDeleteRepo", "Effect": "Deny", "Action": "ecr:DescribeRepositories", "Resource": "arn:aws:ecr:us-west-2:123456789012:repository/secret*"},
    {"Sid": "Lock", "Effect": "Allow", "NotAction": ["ssm:DeleteParameter"], "Resource": "arn:aws:ssm:us-west-2:123456789012:parameter/ctjdeploy/c/s/lock"},
    {"Sid": "Logs", "Effect": "Allow", "Action": "logs:GetLogEvents", "Resource": "arn:aws:logs:us-west-2:123456789012:log-group:/ecs/web:*"}
  ]
}`

type iamClients struct {
	ecs  *ecs.Client
	ecr  *ecr.Client
	ssm  *ssm.Client
	logs *cloudwatchlogs.Client
	sts  *sts.Client
	iam  *iam.Client
}

// iamSim is a simulator with testPolicy, and the real SDK clients pointed at
// it (no retries). Its upstream does not answer: a call the policy allows
// fails with the simulator's 502, never with AccessDenied.
func iamSim(t *testing.T) (*Sim, iamClients) {
	t.Helper()
	sim, err := New(Options{Upstream: "http://127.0.0.1:1", Policy: []byte(testPolicy)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cfg := aws.Config{Region: "us-west-2", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), Retryer: func() aws.Retryer { return aws.NopRetryer{} }}
	return sim, iamClients{ecs: ecs.NewFromConfig(cfg), ecr: ecr.NewFromConfig(cfg), ssm: ssm.NewFromConfig(cfg),
		logs: cloudwatchlogs.NewFromConfig(cfg), sts: sts.NewFromConfig(cfg), iam: iam.NewFromConfig(cfg, func(o *iam.Options) { o.Region = "us-east-1" })}
}

func wantDenied(t *testing.T, err error, code, action, resource string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want an APIError %s", err, code)
	}
	want := "is not authorized to perform: " + action + " on resource: " + resource + " "
	if ae.ErrorCode() != code || !strings.Contains(ae.ErrorMessage(), want) || !strings.HasPrefix(ae.ErrorMessage(), "User: "+DefaultPrincipal+" ") {
		t.Fatalf("error %s %q, want %s naming %s on %s", ae.ErrorCode(), ae.ErrorMessage(), code, action, resource)
	}
}

func wantAllowed(t *testing.T, err error) {
	t.Helper()
	var ae smithy.APIError
	if errors.As(err, &ae) && strings.Contains(ae.ErrorCode(), "AccessDenied") {
		t.Fatalf("allowed call denied: %v", err)
	}
}

func TestIAMDeniesAsEachServiceDoes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sim, c := iamSim(t)

	// ECS: a resource the policy does not name.
	_, err := c.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: []string{"other"}})
	wantDenied(t, err, "AccessDeniedException", "ecs:DescribeServices", "arn:aws:ecs:us-west-2:123456789012:service/c/other")
	_, err = c.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("arn:aws:ecs:us-west-2:123456789012:cluster/c"), Services: []string{"s"}})
	wantAllowed(t, err)

	// UpdateService: the action matches case-insensitively (ECS:update*);
	// the ecs:task-definition condition limits it to the family.
	_, err = c.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), TaskDefinition: aws.String("other:3")})
	wantDenied(t, err, "AccessDeniedException", "ecs:UpdateService", "arn:aws:ecs:us-west-2:123456789012:service/c/s")
	_, err = c.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), TaskDefinition: aws.String("fam:3")})
	wantAllowed(t, err)

	// RegisterTaskDefinition: the request tag condition, the implied
	// TagResource and PassRole.
	reg := func(tag, role string) error {
		_, err := c.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("fam"),
			ExecutionRoleArn:     aws.String(role),
			ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("web"), Image: aws.String("x")}},
			Tags:                 []ecstypes.Tag{{Key: aws.String("ctjdeploy:env"), Value: aws.String(tag)}}})
		return err
	}
	wantDenied(t, reg("prod", "arn:aws:iam::123456789012:role/exec"), "AccessDeniedException", "ecs:RegisterTaskDefinition", "arn:aws:ecs:us-west-2:123456789012:task-definition/fam:*")
	wantDenied(t, reg("stage", "arn:aws:iam::123456789012:role/admin"), "AccessDeniedException", "iam:PassRole", "arn:aws:iam::123456789012:role/admin")
	wantAllowed(t, reg("stage", "exec"))

	// ListTasks: the ecs:cluster condition.
	_, err = c.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("d")})
	wantDenied(t, err, "AccessDeniedException", "ecs:ListTasks", "*")
	_, err = c.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("c")})
	wantAllowed(t, err)

	// Service deployments: the deployment and its service are both needed.
	_, err = c.ecs.StopServiceDeployment(ctx, &ecs.StopServiceDeploymentInput{ServiceDeploymentArn: aws.String("arn:aws:ecs:us-west-2:123456789012:service-deployment/c/s/abc")})
	wantDenied(t, err, "AccessDeniedException", "ecs:StopServiceDeployment", "arn:aws:ecs:us-west-2:123456789012:service-deployment/c/s/abc")

	// ECR: GetAuthorizationToken on *, the API on the repository, an
	// explicit Deny over an Allow.
	_, err = c.ecr.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	wantAllowed(t, err)
	_, err = c.ecr.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("api")})
	wantDenied(t, err, "AccessDeniedException", "ecr:DescribeImages", "arn:aws:ecr:us-west-2:123456789012:repository/api")
	_, err = c.ecr.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"secret-x"}})
	wantDenied(t, err, "AccessDeniedException", "ecr:DescribeRepositories", "arn:aws:ecr:us-west-2:123456789012:repository/secret-x")
	var ae smithy.APIError
	if errors.As(err, &ae); !strings.HasSuffix(ae.ErrorMessage(), "with an explicit deny in an identity-based policy") {
		t.Errorf("explicit deny message %q", ae.ErrorMessage())
	}

	// SSM: the parameter ARN drops the name's leading slash; NotAction.
	_, err = c.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/ctjdeploy/c/s/lock")})
	wantAllowed(t, err)
	_, err = c.ssm.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/ctjdeploy/c/s/lock")})
	wantDenied(t, err, "AccessDeniedException", "ssm:DeleteParameter", "arn:aws:ssm:us-west-2:123456789012:parameter/ctjdeploy/c/s/lock")

	// CloudWatch Logs: the log stream's ARN.
	_, err = c.logs.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String("/ecs/web"), LogStreamName: aws.String("ecs/web/1")})
	wantAllowed(t, err)
	_, err = c.logs.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String("/ecs/db"), LogStreamName: aws.String("ecs/db/1")})
	wantDenied(t, err, "AccessDeniedException", "logs:GetLogEvents", "arn:aws:logs:us-west-2:123456789012:log-group:/ecs/db:log-stream:ecs/db/1")

	// STS: GetCallerIdentity needs no permission; another action gets the
	// query protocol's AccessDenied.
	_, err = c.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	wantAllowed(t, err)
	_, err = c.sts.GetSessionToken(ctx, &sts.GetSessionTokenInput{})
	wantDenied(t, err, "AccessDenied", "sts:GetSessionToken", "*")

	if d := sim.Denials(); len(d) != 11 || d[0].Action != "ecs:DescribeServices" {
		t.Errorf("denials = %+v, want 11 starting with ecs:DescribeServices", d)
	}
	// Enforcement off: nothing more is denied.
	if err := sim.SetPolicy(nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("d")})
	wantAllowed(t, err)
}

func TestIAMGlobAndConditions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"a*c", "abbbc", true}, {"a*c", "abbb", false}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"arn:aws:ecs:*:*:task-definition/fam:*", "arn:aws:ecs:us-west-2:1:task-definition/fam:3", true},
		{"arn:aws:ecs:*:*:task-definition/fam:*", "arn:aws:ecs:us-west-2:1:task-definition/family:3", false},
	} {
		if got := glob(tc.p, tc.s); got != tc.want {
			t.Errorf("glob(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
	keys := map[string][]string{"aws:TagKeys": {"a", "b"}, "ecs:cluster": {"arn:c"}}
	for _, tc := range []struct {
		c    condition
		want bool
	}{
		{condition{"StringEquals", "ECS:Cluster", []string{"arn:c"}}, true},
		{condition{"StringNotEquals", "ecs:cluster", []string{"arn:c"}}, false},
		{condition{"StringEquals", "ecs:missing", []string{"x"}}, false},
		{condition{"StringEqualsIfExists", "ecs:missing", []string{"x"}}, true},
		{condition{"StringNotEquals", "ecs:missing", []string{"x"}}, true},
		{condition{"Null", "ecs:missing", []string{"true"}}, true},
		{condition{"Null", "ecs:cluster", []string{"true"}}, false},
		{condition{"ForAllValues:StringEquals", "aws:TagKeys", []string{"a", "b", "c"}}, true},
		{condition{"ForAllValues:StringEquals", "aws:TagKeys", []string{"a"}}, false},
		{condition{"ForAnyValue:StringLike", "aws:TagKeys", []string{"b*"}}, true},
	} {
		if got := tc.c.holds(keys); got != tc.want {
			t.Errorf("%+v holds = %v, want %v", tc.c, got, tc.want)
		}
	}
	if _, err := parsePolicy([]byte(`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"x"}}}]}`)); err == nil {
		t.Error("an unmodelled condition operator was accepted: it would be ignored, and allow too much")
	}
}

// TestIAMQueryProtocolServiceFromScope: an IAM call (query protocol, same
// endpoint) is named by its signature's scope and denied with IAM's
// ErrorResponse.
func TestIAMQueryProtocolServiceFromScope(t *testing.T) {
	t.Parallel()
	sim, _ := iamSim(t)
	req := httptest.NewRequest("POST", "/", strings.NewReader("Action=SimulatePrincipalPolicy&Version=2010-05-08"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20261204/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=x")
	rec := httptest.NewRecorder()
	sim.ServeHTTP(rec, req)
	body := rec.Body.String()
	if rec.Code != 403 || !strings.Contains(body, `xmlns="https://iam.amazonaws.com/doc/2010-05-08/"`) ||
		!strings.Contains(body, "<Code>AccessDenied</Code>") || !strings.Contains(body, "not authorized to perform: iam:SimulatePrincipalPolicy on resource: *") {
		t.Errorf("%d %s", rec.Code, body)
	}
}

// TestSimulatePrincipalPolicyAnswersFromThePolicy: iam:SimulatePrincipalPolicy
// through the real IAM client, answered from the simulator's policy
// (moto has no such call): decisions, context entries, missing context
// values; without a policy, everything allowed.
func TestSimulatePrincipalPolicyAnswersFromThePolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sim, c := iamSim(t)
	role := "arn:aws:iam::123456789012:role/ctjdeploy-ci"
	sim2, err := New(Options{Upstream: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim2.Close)
	simulate := func(cl *iam.Client, actions, resources []string, ctxKeys ...iamtypes.ContextEntry) []iamtypes.EvaluationResult {
		t.Helper()
		out, err := cl.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{PolicySourceArn: aws.String(role),
			ActionNames: actions, ResourceArns: resources, ContextEntries: ctxKeys})
		if err != nil {
			t.Fatalf("SimulatePrincipalPolicy: %v", err)
		}
		return out.EvaluationResults
	}
	// The test policy does not allow iam:SimulatePrincipalPolicy: denied
	// on the simulated role, as AWS would.
	_, err = c.iam.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{PolicySourceArn: aws.String(role), ActionNames: []string{"ecs:ListTasks"}})
	wantDenied(t, err, "AccessDenied", "iam:SimulatePrincipalPolicy", role)

	var d map[string]any
	_ = json.Unmarshal([]byte(testPolicy), &d)
	d["Statement"] = append(d["Statement"].([]any), map[string]any{"Effect": "Allow", "Action": "iam:SimulatePrincipalPolicy", "Resource": role})
	doc, _ := json.Marshal(d)
	if err := sim.SetPolicy(doc); err != nil {
		t.Fatal(err)
	}
	svc := "arn:aws:ecs:us-west-2:123456789012:service/c/s"
	got := simulate(c.iam, []string{"ecs:UpdateService", "ecs:DeleteService", "ecr:DescribeRepositories"}, []string{svc, "arn:aws:ecr:us-west-2:123456789012:repository/secret-x"})
	decisions := map[string]string{}
	for _, r := range got {
		decisions[aws.ToString(r.EvalActionName)+" "+aws.ToString(r.EvalResourceName)] = string(r.EvalDecision)
		if aws.ToString(r.EvalActionName) == "ecs:UpdateService" && aws.ToString(r.EvalResourceName) == svc && strings.Join(r.MissingContextValues, ",") != "ecs:task-definition" {
			t.Errorf("UpdateService missing context values %v, want ecs:task-definition", r.MissingContextValues)
		}
	}
	for k, want := range map[string]string{
		"ecs:UpdateService " + svc: "implicitDeny", // its condition key not given
		"ecs:DeleteService " + svc: "implicitDeny",
		"ecr:DescribeRepositories arn:aws:ecr:us-west-2:123456789012:repository/secret-x": "explicitDeny",
	} {
		if decisions[k] != want {
			t.Errorf("%s: %q, want %s (all: %v)", k, decisions[k], want, decisions)
		}
	}
	got = simulate(c.iam, []string{"ecs:UpdateService"}, []string{svc}, iamtypes.ContextEntry{ContextKeyName: aws.String("ecs:task-definition"),
		ContextKeyType: iamtypes.ContextKeyTypeEnumString, ContextKeyValues: []string{"arn:aws:ecs:us-west-2:123456789012:task-definition/fam:7"}})
	if len(got) != 1 || got[0].EvalDecision != iamtypes.PolicyEvaluationDecisionTypeAllowed || len(got[0].MissingContextValues) != 0 {
		t.Errorf("with the context entry: %+v", got)
	}

	// No policy: the stack allows everything.
	srv := httptest.NewServer(sim2)
	t.Cleanup(srv.Close)
	open := iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), Retryer: aws.NopRetryer{}})
	if got := simulate(open, []string{"ecs:DeleteService"}, nil); len(got) != 1 || got[0].EvalDecision != iamtypes.PolicyEvaluationDecisionTypeAllowed || aws.ToString(got[0].EvalResourceName) != "*" {
		t.Errorf("without a policy: %+v", got)
	}
}

func TestRegistryProxyAuthorizesAsECR(t *testing.T) {
	t.Parallel()
	var got []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.Path)
		w.WriteHeader(200)
	}))
	t.Cleanup(upstream.Close)
	sim, _ := iamSim(t) // the test policy allows ecr:Describe* on web only
	h, err := sim.RegistryProxy(upstream.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec.Code, rec.Body.String()
	}
	code, body := do("GET", "/v2/web/manifests/latest")
	if code != 403 || !strings.Contains(body, `"code":"DENIED"`) || !strings.Contains(body, "not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-west-2:123456789012:repository/web ") {
		t.Errorf("GET manifest: %d %s", code, body)
	}
	if code, body := do("HEAD", "/v2/a/b/manifests/sha256:00"); code != 403 || body != "" {
		t.Errorf("HEAD manifest: %d %q, want 403 without a body", code, body)
	}
	if code, _ := do("GET", "/v2/"); code != 200 {
		t.Errorf("/v2/ is the login check, not evaluated: %d", code)
	}
	var d map[string]any
	_ = json.Unmarshal([]byte(testPolicy), &d)
	d["Statement"] = append(d["Statement"].([]any), map[string]any{"Effect": "Allow", "Action": []string{"ecr:BatchGetImage", "ecr:InitiateLayerUpload"}, "Resource": "arn:aws:ecr:us-west-2:123456789012:repository/web"})
	doc, _ := json.Marshal(d)
	if err := sim.SetPolicy(doc); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/v2/web/manifests/latest", 200},
		{"POST", "/v2/web/blobs/uploads/", 200},
		{"PATCH", "/v2/web/blobs/uploads/1", 403},
		{"PUT", "/v2/web/manifests/latest", 403},
		{"GET", "/v2/api/manifests/latest", 403},
	} {
		if code, body := do(c.method, c.path); code != c.code {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, code, body, c.code)
		}
	}
	if strings.Join(got, ",") != "GET /v2/,GET /v2/web/manifests/latest,POST /v2/web/blobs/uploads/" {
		t.Errorf("upstream saw %v", got)
	}
	ds := sim.Denials()
	if last := ds[len(ds)-1]; last.Action != "ecr:BatchGetImage" || last.Resource != "arn:aws:ecr:us-west-2:123456789012:repository/api" {
		t.Errorf("last denial %+v", last)
	}
}
