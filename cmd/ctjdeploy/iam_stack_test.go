package main

// IAM enforced on the stack (internal/ecssim/iam.go): the whole life of an
// environment under exactly the policy `ctjdeploy ENV iam-policy` prints,
// each statement of it removed in turn, and another service of the same
// cluster. No image is built: random images are pushed to the registry
// under two tags and every deploy is --no-build.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hackforla/ctjdeploy/internal/ecssim"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/iampolicy"
	"github.com/hackforla/ctjdeploy/internal/lease"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// iamEnv is a test's own environment shaped like the example behind a
// simulator whose policy the test sets; the template takes CTJ_IAM_REV
// into an environment variable, so a test makes a new revision without a
// build.
type iamEnv struct {
	t      *testing.T
	st     *teststack.Stack
	n      teststack.Names
	sim    *ecssim.Sim
	cfg    string
	tags   []string // tags pushed to both repositories, oldest first
	policy []byte   // what `stage iam-policy` printed
}

func newIAMEnv(t *testing.T) *iamEnv {
	t.Helper()
	st := teststack.Start(t)
	st.Setenv(t)
	n := teststack.NewNames(t)
	st.CreateResources(t, n)
	st.SetMaximumPercent(t, n, 100)
	sim, err := ecssim.New(ecssim.Options{Upstream: st.MotoEndpoint, Scenario: ecssim.Success, Polls: 1, Step: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	// The registry too, behind the simulator's ECR authorization: the
	// config names the proxy as its registry.
	regProxy, err := sim.RegistryProxy("http://"+st.Registry, teststack.Region)
	if err != nil {
		t.Fatal(err)
	}
	reg := httptest.NewServer(regProxy)
	t.Cleanup(reg.Close)
	registry := strings.TrimPrefix(reg.URL, "http://")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("GITHUB_ACTIONS", "")
	t.Setenv("CTJ_IAM_REV", "1")

	dir, s := exampleCopy(t, st, n)
	const nodeEnv = `{"name": "NODE_ENV", "value": "production"}`
	if !strings.Contains(s, nodeEnv) {
		t.Fatalf("the example template changed; update this test (no %s)", nodeEnv)
	}
	s = strings.Replace(s, nodeEnv, nodeEnv+`, {"name": "CTJ_IAM_REV", "value": "{{ env "CTJ_IAM_REV" }}"}`, 1)
	if err := os.WriteFile(filepath.Join(dir, "td.json"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	env := func(name, service, extra string) string {
		return "  " + name + `:
` + extra + `    task_definition: td.json
    region: us-west-2
    cluster: ` + n.Cluster + `
    service: ` + service + `
    registry: ` + registry + `
    terraform: {dir: infra/stage}
    images:
      django: {repository: ` + n.BackendRepo + `, context: backend, dockerfile: stage/django.dockerfile}
      next:   {repository: ` + n.FrontendRepo + `, context: frontend, dockerfile: stage/next.dockerfile}
`
	}
	cfg := "environments:\n" + env("stage", n.Service, "") + env("other", n.Service+"-other", "") +
		env("other-nolock", n.Service+"-other", "    lock: false\n")
	e := &iamEnv{t: t, st: st, n: n, sim: sim, cfg: filepath.Join(dir, "ctjdeploy.yaml")}
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	tagBase := strings.ReplaceAll(strings.TrimSuffix(n.Prefix, "-"), "-", "")
	for _, tag := range []string{tagBase + "a", tagBase + "b"} {
		for _, repo := range []string{n.BackendRepo, n.FrontendRepo} {
			pushRandom(t, st.Registry+"/"+repo+":"+tag)
		}
		e.tags = append(e.tags, tag)
	}

	// The policy, exactly as the command prints it (the account from
	// sts:GetCallerIdentity, which needs no permission).
	code, out, errOut := e.run("stage", "iam-policy")
	if code != 0 {
		t.Fatalf("iam-policy: exit %d\n%s", code, errOut)
	}
	e.policy = []byte(out)
	return e
}

func pushRandom(t *testing.T, ref string) {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, remote.WithAuth(&authn.Basic{Username: teststack.RegistryUser, Password: teststack.RegistryPassword})); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
}

// run runs ctjdeploy with the env's config; it returns the exit code,
// stdout and stderr.
func (e *iamEnv) run(args ...string) (int, string, string) {
	e.t.Helper()
	return runCLI(e.t, "", append([]string{"--config", e.cfg, "--no-color"}, args...)...)
}

// must runs a command that must exit with want, and no call denied.
func (e *iamEnv) must(want int, args ...string) (string, string) {
	e.t.Helper()
	before := len(e.sim.Denials())
	start := time.Now()
	code, out, errOut := e.run(args...)
	e.t.Logf("%v: exit %d in %s", args, code, time.Since(start).Round(time.Millisecond))
	if code != want {
		e.t.Fatalf("%v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, code, want, out, errOut)
	}
	if d := e.sim.Denials()[before:]; len(d) > 0 {
		e.t.Fatalf("%v: the printed policy denied %+v\nstderr:\n%s", args, d, errOut)
	}
	return out, errOut
}

func (e *iamEnv) setPolicy(doc []byte) {
	e.t.Helper()
	if err := e.sim.SetPolicy(doc); err != nil {
		e.t.Fatal(err)
	}
}

// live is the task definition moto's service runs.
func (e *iamEnv) live() string {
	e.t.Helper()
	out, err := e.st.ECS(e.t).DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String(e.n.Cluster), Services: []string{e.n.Service}})
	if err != nil || len(out.Services) != 1 {
		e.t.Fatalf("DescribeServices at moto: %v", err)
	}
	return aws.ToString(out.Services[0].TaskDefinition)
}

// lockParameter is the environment's deploy lock in SSM (the default name).
func (e *iamEnv) lockParameter() string {
	return "/ctjdeploy/" + e.n.Cluster + "/" + e.n.Service + "/lock"
}

// lockExists says whether the lock is held (internal/lease: a released
// lock is a "released" record, the parameter stays).
func (e *iamEnv) lockExists() bool {
	e.t.Helper()
	st, err := lease.Read(context.Background(), ssm.NewFromConfig(e.st.AWSConfig(e.t)), e.lockParameter())
	if err != nil {
		e.t.Fatalf("reading the lock %s: %v", e.lockParameter(), err)
	}
	return st.Held
}

func jsonDoc(t *testing.T, out string) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, out)
	}
	return doc
}

// TestLifeUnderThePrintedPolicy: deploy, an unchanged redeploy, a bad
// commit rolled back, rollback --to, the rollback of an in-flight
// deployment, dry runs, status, history and the lock, every call evaluated against
// exactly what `stage iam-policy` printed, none denied.
func TestLifeUnderThePrintedPolicy(t *testing.T) {
	e := newIAMEnv(t)
	var d iampolicy.Document
	if err := json.Unmarshal(e.policy, &d); err != nil {
		t.Fatalf("iam-policy printed no policy: %v\n%s", err, e.policy)
	}
	if s := string(e.policy); strings.Contains(s, "ACCOUNT_ID") || strings.Contains(s, "UNRESOLVED") {
		t.Fatalf("the printed policy has placeholders:\n%s", s)
	}
	e.setPolicy(e.policy)
	a, b := e.tags[0], e.tags[1]

	// Deploy, then the same again: unchanged.
	out, _ := e.must(0, "--output", "json", "stage", "--tag", a, "--no-build")
	first := jsonDoc(t, out)
	rev1 := first["taskDefinitionArn"].(string)
	if first["registered"] != true || e.live() != rev1 {
		t.Fatalf("first deploy: registered %v, moto runs %s, want %s", first["registered"], e.live(), rev1)
	}
	out, _ = e.must(0, "--output", "json", "stage", "--tag", a, "--no-build")
	if doc := jsonDoc(t, out); doc["outcome"] != "unchanged" || doc["taskDefinitionArn"] != rev1 {
		t.Errorf("unchanged redeploy: outcome %v, %v", doc["outcome"], doc["taskDefinitionArn"])
	}

	// A bad commit: the circuit breaker rolls it back (exit 3), the
	// service runs rev1 again.
	e.sim.SetScenario(e.n.Cluster, e.n.Service, ecssim.Rollback)
	t.Setenv("CTJ_IAM_REV", "2")
	e.must(exitcode.RolledBack, "stage", "--tag", a, "--no-build")
	if got := e.live(); got != rev1 {
		t.Errorf("after the bad commit moto runs %s, want %s", got, rev1)
	}

	// A good deploy of tag b, then rollback --to a.
	e.sim.SetScenario(e.n.Cluster, e.n.Service, ecssim.Success)
	t.Setenv("CTJ_IAM_REV", "3")
	out, _ = e.must(0, "--output", "json", "stage", "--tag", b, "--no-build")
	revB := jsonDoc(t, out)["taskDefinitionArn"].(string)
	if got := e.live(); got != revB || revB == rev1 {
		t.Fatalf("deploy of %s: moto runs %s, want the new %s", b, got, revB)
	}
	e.must(0, "stage", "rollback", "--to", a)
	if got := e.live(); got == revB {
		t.Errorf("rollback --to %s: moto still runs %s", a, got)
	}
	afterTo := e.live()

	// An in-flight deployment (stuck: no task can be placed), rolled back
	// by `rollback`: StopServiceDeployment, then ECS's rollback.
	e.sim.SetScenario(e.n.Cluster, e.n.Service, ecssim.Stuck)
	t.Setenv("CTJ_IAM_REV", "4")
	e.must(0, "stage", "--tag", b, "--no-build", "--no-wait")
	if e.live() == afterTo {
		t.Fatalf("the --no-wait deploy did not update the service")
	}
	_, errOut := e.must(0, "stage", "rollback")
	if got := e.live(); got != afterTo {
		t.Errorf("rollback of the in-flight deployment: moto runs %s, want %s\n%s", got, afterTo, errOut)
	}
	e.sim.SetScenario(e.n.Cluster, e.n.Service, ecssim.Success)

	// Dry runs read everything a deploy and a rollback would.
	t.Setenv("CTJ_IAM_REV", "5")
	e.must(0, "stage", "--tag", b, "--no-build", "--dry-run")
	e.must(0, "stage", "rollback", "--to", b, "--dry-run")
	if got := e.live(); got != afterTo {
		t.Errorf("a dry run moved the service to %s", got)
	}

	// status and history.
	out, _ = e.must(0, "--output", "json", "stage", "status")
	if doc := jsonDoc(t, out); !strings.Contains(out, afterTo) {
		t.Errorf("status does not show the live revision %s: %v", afterTo, doc)
	}
	out, _ = e.must(0, "stage", "history")
	if !strings.Contains(out, a) || !strings.Contains(out, b) {
		t.Errorf("history does not name tags %s and %s:\n%s", a, b, out)
	}

	// The lock: every run above released it; one held by another run is
	// read (ssm:GetParameterHistory) and refused with exit 5.
	if e.lockExists() {
		t.Errorf("the lock %s is still held after the runs", e.lockParameter())
	}
	holder := `{"run":"0123456789ab","tag":"x","env":"stage","host":"elsewhere","pid":1,"started":"` + time.Now().UTC().Format(time.RFC3339) + `","ttl":"1h"}`
	if _, err := ssm.NewFromConfig(e.st.AWSConfig(t)).PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String(e.lockParameter()), Value: aws.String(holder), Type: "String", Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	e.must(exitcode.Refused, "stage", "--tag", a, "--no-build")
	if d := e.sim.Denials(); len(d) != 0 {
		t.Errorf("denied under the printed policy: %+v", d)
	}
}

// without returns the policy without the statement sid.
func without(t *testing.T, policy []byte, sid string) []byte {
	t.Helper()
	var d iampolicy.Document
	if err := json.Unmarshal(policy, &d); err != nil {
		t.Fatal(err)
	}
	var keep []iampolicy.Statement
	for _, s := range d.Statement {
		if s.Sid != sid {
			keep = append(keep, s)
		}
	}
	if len(keep) != len(d.Statement)-1 {
		t.Fatalf("the printed policy has no statement %s", sid)
	}
	d.Statement = keep
	return d.JSON()
}

// iamCommand is a command a removed statement may break: its run, and the
// exit code it has under the whole policy.
type iamCommand struct {
	name string
	ok   int
	// setup runs under the whole policy before the statement is removed;
	// cleanup after it, to leave the environment deployable.
	setup, cleanup func(e *iamEnv)
	args           func(e *iamEnv) []string
}

var revSeq = 100

func bumpRev(t *testing.T) {
	revSeq++
	t.Setenv("CTJ_IAM_REV", fmt.Sprint(revSeq))
}

var iamCommands = map[string]iamCommand{
	"status":  {name: "status", args: func(e *iamEnv) []string { return []string{"stage", "status"} }},
	"history": {name: "history", args: func(e *iamEnv) []string { return []string{"stage", "history"} }},
	"deploy-unchanged": {name: "deploy of the live tag (unchanged)",
		setup: func(e *iamEnv) { e.must(0, "stage", "--tag", e.tags[0], "--no-build") },
		args:  func(e *iamEnv) []string { return []string{"stage", "--tag", e.tags[0], "--no-build"} }},
	"deploy-new": {name: "deploy of a new revision",
		setup: func(e *iamEnv) { bumpRev(e.t) },
		args:  func(e *iamEnv) []string { return []string{"stage", "--tag", e.tags[0], "--no-build"} }},
	"bad-commit": {name: "deploy of a bad commit (circuit breaker rollback)", ok: exitcode.RolledBack,
		setup: func(e *iamEnv) { bumpRev(e.t); e.sim.SetScenario(e.n.Cluster, e.n.Service, ecssim.Rollback) },
		args:  func(e *iamEnv) []string { return []string{"stage", "--tag", e.tags[0], "--no-build"} }},
	"failed-no-rollback": {name: "deploy of a bad commit (circuit breaker without rollback)", ok: exitcode.NotRecovered,
		setup: func(e *iamEnv) { bumpRev(e.t); e.sim.SetScenario(e.n.Cluster, e.n.Service, ecssim.Fail) },
		args:  func(e *iamEnv) []string { return []string{"stage", "--tag", e.tags[0], "--no-build"} }},
	"rollback-in-flight": {name: "rollback of an in-flight deployment",
		setup: func(e *iamEnv) {
			bumpRev(e.t)
			e.sim.SetScenario(e.n.Cluster, e.n.Service, ecssim.Stuck)
			e.must(0, "stage", "--tag", e.tags[0], "--no-build", "--no-wait")
		},
		args:    func(e *iamEnv) []string { return []string{"stage", "rollback"} },
		cleanup: func(e *iamEnv) { e.must(0, "stage", "rollback") }},
}

// TestEachStatementOfThePrintedPolicyIsNeeded removes each statement of
// the printed policy in turn and runs the cheapest command that needs it,
// on one deployed environment: the command fails (or, where the tool
// degrades on purpose, warns), and what it prints names the denied action
// and resource.
func TestEachStatementOfThePrintedPolicyIsNeeded(t *testing.T) {
	e := newIAMEnv(t)
	e.setPolicy(e.policy)
	e.must(0, "stage", "--tag", e.tags[0], "--no-build")

	var d iampolicy.Document
	if err := json.Unmarshal(e.policy, &d); err != nil {
		t.Fatal(err)
	}
	type row struct {
		cmd    string
		code   int
		faults *ecssim.Faults // set on the service before the command
		why    string
	}
	// A second command for a statement whose actions two commands need.
	extra := map[string]row{
		"ECSFollowAndStopServiceDeployments": {cmd: "rollback-in-flight", code: exitcode.Failed, why: "StopServiceDeployment"},
	}
	rows := map[string]row{
		// A read the run needs, denied, is found by the preflight before
		// the first build or write (deploy/preflight): exit 2, every denied
		// read named with its resource.
		"ECRAuthorizationToken": {cmd: "deploy-unchanged", code: exitcode.Invalid,
			why: "the registry login of every deploy, probed up front"},
		// The statement's ECR API reads (DescribeRepositories,
		// DescribeImages, ListImages, BatchGetImage) are probed by the
		// preflight before the registry's manifest lookup (through the
		// simulator's RegistryProxy) would fail.
		"ECRPushPullOwnRepositories": {cmd: "deploy-unchanged", code: exitcode.Invalid,
			why: "the preflight's ECR API reads"},
		"ECSDescribeService":                {cmd: "status", code: exitcode.Failed},
		"ECSReadTaskDefinitions":            {cmd: "status", code: exitcode.Failed},
		"SSMDeployLock":                     {cmd: "deploy-unchanged", code: exitcode.Invalid, why: "the preflight reads the lock before anything is written"},
		"ECSUpdateServiceToFamily":          {cmd: "deploy-new", code: exitcode.Failed},
		"ECSRegisterTaskDefinitionFamily":   {cmd: "deploy-new", code: exitcode.Failed},
		"ECSTagOnRegister":                  {cmd: "deploy-new", code: exitcode.Failed},
		"PassTaskDefinitionRolesToECSTasks": {cmd: "deploy-new", code: exitcode.Failed},
		"ECSDescribeClusterTasks":           {cmd: "deploy-new", code: exitcode.Invalid, why: "probed up front"},
		"ECSListClusterTasks":               {cmd: "deploy-new", code: exitcode.Invalid, why: "probed up front"},
		// The service deployment API is optional to the tool: denied, it
		// warns and follows the service's deployments instead.
		"ECSFollowAndStopServiceDeployments": {cmd: "deploy-new", code: 0, why: "warns, then follows DescribeServices"},
		// Listing is needed when our service deployment is STOPPED (failed
		// without rollback, or replaced): which one replaced it.
		"ECSListServiceDeployments": {cmd: "failed-no-rollback", code: exitcode.NotRecovered,
			why: "warns, then decides from the service's deployments"},
		"CloudWatchLogsReadContainerLogs": {cmd: "bad-commit", code: exitcode.RolledBack, why: "the stopped containers' last log lines: the note names the denial"},
	}
	type item struct {
		st   iampolicy.Statement
		name string
		r    row
	}
	var items []item
	for _, st := range d.Statement {
		r, ok := rows[st.Sid]
		if !ok {
			t.Fatalf("a statement this test does not know: %s; add the command that needs it", st.Sid)
		}
		items = append(items, item{st, st.Sid, r})
		if x, ok := extra[st.Sid]; ok {
			items = append(items, item{st, st.Sid + "/" + x.cmd, x})
		}
	}
	for _, it := range items {
		st, r := it.st, it.r
		t.Run(it.name, func(t *testing.T) {
			e.t = t
			c := iamCommands[r.cmd]
			defer func() {
				e.setPolicy(e.policy)
				e.sim.SetFaults(e.n.Cluster, e.n.Service, ecssim.Faults{})
				if e.lockExists() {
					_, _ = ssm.NewFromConfig(e.st.AWSConfig(t)).DeleteParameter(context.Background(), &ssm.DeleteParameterInput{Name: aws.String(e.lockParameter())})
				}
				if c.cleanup != nil {
					c.cleanup(e)
				}
				e.sim.SetScenario(e.n.Cluster, e.n.Service, ecssim.Success)
			}()
			if c.setup != nil {
				c.setup(e)
			}
			if r.faults != nil {
				e.sim.SetFaults(e.n.Cluster, e.n.Service, *r.faults)
			}
			e.setPolicy(without(t, e.policy, st.Sid))
			before := len(e.sim.Denials())
			start := time.Now()
			code, out, errOut := e.run(c.args(e)...)
			denied := e.sim.Denials()[before:]
			t.Logf("without %s: %s exits %d in %s (%s); denied %d call(s), first %+v", st.Sid, c.name, code, time.Since(start).Round(time.Millisecond), r.why, len(denied), first(denied))
			if code != r.code {
				t.Errorf("exit %d, want %d\n%s%s", code, r.code, out, errOut)
			}
			if len(denied) == 0 {
				t.Fatalf("nothing denied:\n%s%s", out, errOut)
			}
			f := denied[0]
			if !containsAction(st.Action, f.Action) {
				t.Errorf("denied %s, not an action of %s (%v)", f.Action, st.Sid, st.Action)
			}
			// The registry's errors name the repository (a HEAD has no body
			// to carry ECR's message); the AWS APIs' the resource's ARN.
			resource := f.Resource
			if strings.HasPrefix(f.Resource, "arn:aws:ecr:") && strings.Contains(f.Resource, ":repository/") {
				resource = f.Resource[strings.Index(f.Resource, ":repository/")+len(":repository/"):]
			}
			if text := out + errOut; !strings.Contains(text, f.Action) || !strings.Contains(text, resource) {
				t.Errorf("the output does not name %s on %s:\n%s", f.Action, resource, text)
			}
		})
	}
}

func first(d []ecssim.Denial) any {
	if len(d) == 0 {
		return nil
	}
	return d[0]
}

func containsAction(list []string, a string) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// TestPrintedPolicyCannotDeployAnotherService: the policy printed for
// stage, used to deploy another service of the same cluster (same family,
// same repositories), is denied at its first read of the service, before
// the lock or any write, naming the action and the other service; with the
// lock off too.
func TestPrintedPolicyCannotDeployAnotherService(t *testing.T) {
	e := newIAMEnv(t)
	other := e.n
	other.Service = e.n.Service + "-other"
	e.st.CreateResources(t, other)
	e.st.SetMaximumPercent(t, other, 100)
	moto := e.st.ECS(t)
	liveOther := func() string {
		out, err := moto.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String(other.Cluster), Services: []string{other.Service}})
		if err != nil || len(out.Services) != 1 {
			t.Fatalf("DescribeServices at moto: %v", err)
		}
		return aws.ToString(out.Services[0].TaskDefinition)
	}
	before := liveOther()
	e.setPolicy(e.policy)
	for _, tc := range []struct{ env, action, resource string }{
		{"other", "ecs:DescribeServices", "arn:aws:ecs:us-west-2:123456789012:service/" + other.Cluster + "/" + other.Service},
		{"other-nolock", "ecs:DescribeServices", "arn:aws:ecs:us-west-2:123456789012:service/" + other.Cluster + "/" + other.Service},
	} {
		n := len(e.sim.Denials())
		code, out, errOut := e.run(tc.env, "--tag", e.tags[0], "--no-build")
		denied := e.sim.Denials()[n:]
		t.Logf("%s: exit %d; denied %+v", tc.env, code, denied)
		if code == 0 || len(denied) == 0 {
			t.Fatalf("%s: exit %d, denied %v: the stage policy deployed another service\n%s%s", tc.env, code, denied, out, errOut)
		}
		if denied[0].Action != tc.action || denied[0].Resource != tc.resource {
			t.Errorf("%s: first denial %+v, want %s on %s", tc.env, denied[0], tc.action, tc.resource)
		}
		if text := out + errOut; !strings.Contains(text, tc.action) || !strings.Contains(text, tc.resource) {
			t.Errorf("%s: the output does not name %s on %s:\n%s", tc.env, tc.action, tc.resource, text)
		}
	}
	if got := liveOther(); got != before {
		t.Errorf("the other service moved from %s to %s", before, got)
	}
}
