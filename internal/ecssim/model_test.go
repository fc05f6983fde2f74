package ecssim

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// stackEnv is a test's own service in moto behind a simulator, with the real
// ECS client (no retries) pointed at the simulator: every answer goes
// through the SDK's deserializer. The simulator's clock is manual: the test
// steps the model (Sim.Advance) instead of sleeping while a ticker does.
type stackEnv struct {
	sim  *Sim
	api  *ecs.Client
	moto *ecs.Client
	n    teststack.Names
	res  teststack.Resources
	opts Options
}

// The manual clock's step and minute: a bake time of 1 minute lasts
// exactly 5 steps (the 1 ms a clock reading adds would need 1000 readings
// between two steps to shorten it by one).
const (
	testStep     = time.Second
	testMinuteIs = 5 * time.Second
)

// wallClock runs the simulator on its wall-clock ticker (real containers,
// which take real time): a step every 40 ms, a minute of 200 ms.
func wallClock(o *Options) {
	o.ManualClock, o.Step, o.MinuteIs = false, 40*time.Millisecond, 200*time.Millisecond
}

func newStackEnv(t *testing.T, sc Scenario, polls int, opt ...func(*Options)) *stackEnv {
	t.Helper()
	st := teststack.Start(t)
	n := teststack.NewNames(t)
	res := st.CreateResources(t, n)
	st.SetMaximumPercent(t, n, 100)
	o := Options{Upstream: st.MotoEndpoint, Scenario: sc, Polls: polls, Step: testStep, MinuteIs: testMinuteIs, ManualClock: true}
	for _, f := range opt {
		f(&o)
	}
	sim, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	api := ecs.NewFromConfig(st.AWSConfig(t), func(o *ecs.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.Retryer = aws.NopRetryer{}
	})
	return &stackEnv{sim: sim, api: api, moto: st.ECS(t), n: n, res: res, opts: o}
}

// register registers a copy of the service's definition with its app images
// pinned to digest sha256:SALT..., returning the ARN and the digest.
func (e *stackEnv) register(t *testing.T, salt string) (string, string) {
	t.Helper()
	ctx := context.Background()
	out, err := e.moto.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(e.res.TaskDefinitionArn)})
	if err != nil {
		t.Fatal(err)
	}
	td := out.TaskDefinition
	dg := "sha256:" + strings.Repeat(salt, 64/len(salt))
	in := &ecs.RegisterTaskDefinitionInput{Family: td.Family, NetworkMode: td.NetworkMode, RequiresCompatibilities: td.RequiresCompatibilities,
		Cpu: td.Cpu, Memory: td.Memory, ExecutionRoleArn: td.ExecutionRoleArn, TaskRoleArn: td.TaskRoleArn, Volumes: td.Volumes,
		ContainerDefinitions: append([]ecstypes.ContainerDefinition(nil), td.ContainerDefinitions...)}
	for i, c := range in.ContainerDefinitions {
		img := aws.ToString(c.Image)
		if strings.HasPrefix(img, "postgres") {
			continue
		}
		repo, _, _ := strings.Cut(img, ":")
		in.ContainerDefinitions[i].Image = aws.String(repo + "@" + dg)
	}
	rt, err := e.api.RegisterTaskDefinition(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(rt.TaskDefinition.TaskDefinitionArn), dg
}

func (e *stackEnv) describe(t *testing.T) ecstypes.Service {
	t.Helper()
	out, err := e.api.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String(e.n.Cluster), Services: []string{e.n.Service}})
	if err != nil || len(out.Services) != 1 {
		t.Fatalf("DescribeServices through the simulator: %v", err)
	}
	return out.Services[0]
}

// deploy updates the service to td and returns our service deployment ARN
// (currentServiceDeployment) and the deployment id.
func (e *stackEnv) deploy(t *testing.T, td string) (string, string) {
	t.Helper()
	before := e.describe(t)
	up, err := e.api.UpdateService(context.Background(), &ecs.UpdateServiceInput{Cluster: aws.String(e.n.Cluster), Service: aws.String(e.n.Service), TaskDefinition: aws.String(td)})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(up.Service.Deployments[0].Id)
	arn := aws.ToString(up.Service.CurrentServiceDeployment)
	if arn == "" || arn == aws.ToString(before.CurrentServiceDeployment) {
		t.Fatalf("UpdateService answered currentServiceDeployment %q (before: %q): want a new one", arn, aws.ToString(before.CurrentServiceDeployment))
	}
	return arn, id
}

func (e *stackEnv) sd(t *testing.T, arn string) ecstypes.ServiceDeployment {
	t.Helper()
	out, err := e.api.DescribeServiceDeployments(context.Background(), &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{arn}})
	if err != nil || len(out.ServiceDeployments) != 1 {
		t.Fatalf("DescribeServiceDeployments %s: %v (failures %v)", arn, err, out)
	}
	return out.ServiceDeployments[0]
}

// watch reads the service deployment, then again after each step of the
// model, until its status is terminal or steps steps have passed, and
// returns the statuses seen, each once, in order, and the last answer.
// each, if set, sees every answer. With the manual clock it steps the
// model itself (one read per step: every state that lasts a step is seen);
// with the wall clock it reads every 10 ms (4 reads per step) for at most
// steps × Step.
func (e *stackEnv) watch(t *testing.T, arn string, steps int, each func(ecstypes.ServiceDeployment)) ([]string, ecstypes.ServiceDeployment) {
	t.Helper()
	var seq []string
	var sd ecstypes.ServiceDeployment
	done := func() bool {
		sd = e.sd(t, arn)
		if each != nil {
			each(sd)
		}
		if s := string(sd.Status); len(seq) == 0 || seq[len(seq)-1] != s {
			seq = append(seq, s)
		}
		return terminal(string(sd.Status))
	}
	if !e.opts.ManualClock {
		teststack.Poll(time.Duration(steps)*e.opts.Step, 10*time.Millisecond, done)
		return seq, sd
	}
	for i := 0; !done() && i < steps; i++ {
		e.sim.Advance(1)
	}
	return seq, sd
}

// wantSeq fails unless got is want, allowing the first element of want
// (PENDING: it lasts less than a step) to be missed.
func wantSeq(t *testing.T, got []string, want ...string) {
	t.Helper()
	if slices.Equal(got, want) || slices.Equal(got, want[1:]) {
		return
	}
	t.Fatalf("statuses %v, want %v", got, want)
}

func TestSDSuccess(t *testing.T) {
	t.Parallel()
	e := newStackEnv(t, Success, 2)
	initial := e.describe(t)
	td, dg := e.register(t, "ab")
	arn, id := e.deploy(t, td)
	seq, sd := e.watch(t, arn, 20, nil)
	wantSeq(t, seq, "PENDING", "IN_PROGRESS", "SUCCESSFUL")
	if sd.FinishedAt == nil || sd.StartedAt == nil || sd.TargetServiceRevision == nil || len(sd.SourceServiceRevisions) != 1 {
		t.Fatalf("finished record: %+v", sd)
	}
	if cb := sd.DeploymentCircuitBreaker; cb == nil || cb.Status != "MONITORING_COMPLETE" || cb.Threshold != 3 || cb.FailureCount != 0 {
		t.Errorf("circuit breaker of a successful deployment: %+v", cb)
	}
	if !strings.Contains(arn, ":service-deployment/"+e.n.Cluster+"/"+e.n.Service+"/") {
		t.Errorf("ARN %s", arn)
	}
	tgt := aws.ToString(sd.TargetServiceRevision.Arn)
	if sd.TargetServiceRevision.RunningTaskCount != 1 || sd.TargetServiceRevision.RequestedTaskCount != 1 || sd.SourceServiceRevisions[0].RunningTaskCount != 0 {
		t.Errorf("revision counts: target %+v source %+v", *sd.TargetServiceRevision, sd.SourceServiceRevisions[0])
	}
	rv, err := e.api.DescribeServiceRevisions(context.Background(), &ecs.DescribeServiceRevisionsInput{ServiceRevisionArns: []string{tgt, "arn:aws:ecs:us-west-2:123456789012:service-revision/x/y/1"}})
	if err != nil || len(rv.ServiceRevisions) != 1 || len(rv.Failures) != 1 || aws.ToString(rv.Failures[0].Reason) != "MISSING" {
		t.Fatalf("DescribeServiceRevisions: %v %+v", err, rv)
	}
	if aws.ToString(rv.ServiceRevisions[0].TaskDefinition) != td {
		t.Errorf("target revision runs %s, want %s", aws.ToString(rv.ServiceRevisions[0].TaskDefinition), td)
	}
	pinned := 0
	for _, ci := range rv.ServiceRevisions[0].ContainerImages {
		if aws.ToString(ci.ImageDigest) == dg {
			pinned++
		}
	}
	if pinned != 2 {
		t.Errorf("container images %+v: want the two app images at %s", rv.ServiceRevisions[0].ContainerImages, dg)
	}
	svc := e.describe(t)
	if len(svc.Deployments) != 1 || aws.ToString(svc.Deployments[0].Id) != id || svc.Deployments[0].RolloutState != "COMPLETED" || svc.RunningCount != 1 {
		t.Errorf("deployments after success: %+v", svc.Deployments)
	}
	if aws.ToString(svc.CurrentServiceDeployment) != arn || svc.DeploymentController == nil || svc.DeploymentController.Type != "ECS" {
		t.Errorf("service: current %s controller %+v", aws.ToString(svc.CurrentServiceDeployment), svc.DeploymentController)
	}
	if c := svc.DeploymentConfiguration; c == nil || c.DeploymentCircuitBreaker == nil || !c.DeploymentCircuitBreaker.Enable || !c.DeploymentCircuitBreaker.Rollback ||
		aws.ToInt32(c.MaximumPercent) != 100 || aws.ToInt32(c.MinimumHealthyPercent) != 0 || c.Strategy != "ROLLING" {
		t.Errorf("deploymentConfiguration: %+v", c)
	}
	var msgs []string
	for _, ev := range svc.Events {
		msgs = append(msgs, aws.ToString(ev.Message))
	}
	all := strings.Join(msgs, "\n")
	for _, w := range []string{"has started 1 tasks: (task ", "(deployment " + id + ") deployment completed.", "has reached a steady state.", "EMULATED"} {
		if !strings.Contains(all, w) {
			t.Errorf("events lack %q:\n%s", w, all)
		}
	}
	// History: ours, then the one the simulator found, newest first.
	ls, err := e.api.ListServiceDeployments(context.Background(), &ecs.ListServiceDeploymentsInput{Cluster: aws.String(e.n.Cluster), Service: aws.String(e.n.Service)})
	if err != nil || len(ls.ServiceDeployments) != 2 || aws.ToString(ls.ServiceDeployments[0].ServiceDeploymentArn) != arn ||
		aws.ToString(ls.ServiceDeployments[1].ServiceDeploymentArn) != aws.ToString(initial.CurrentServiceDeployment) ||
		aws.ToString(ls.ServiceDeployments[1].TargetServiceRevisionArn) != aws.ToString(sd.SourceServiceRevisions[0].Arn) {
		t.Fatalf("ListServiceDeployments: %v %+v", err, ls)
	}
	ls, err = e.api.ListServiceDeployments(context.Background(), &ecs.ListServiceDeploymentsInput{Cluster: aws.String(e.n.Cluster), Service: aws.String(e.n.Service),
		Status: []ecstypes.ServiceDeploymentStatus{"IN_PROGRESS"}})
	if err != nil || len(ls.ServiceDeployments) != 0 {
		t.Errorf("IN_PROGRESS filter: %v %+v", err, ls)
	}
	ls, err = e.api.ListServiceDeployments(context.Background(), &ecs.ListServiceDeploymentsInput{Cluster: aws.String(e.n.Cluster), Service: aws.String(e.n.Service),
		CreatedAt: &ecstypes.CreatedAt{After: aws.Time(sd.CreatedAt.Add(-time.Millisecond))}})
	if err != nil || len(ls.ServiceDeployments) != 1 {
		t.Errorf("createdAt filter: %v %+v", err, ls)
	}
	d, err := e.api.DescribeServiceDeployments(context.Background(), &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{arn + "x"}})
	if err != nil || len(d.Failures) != 1 || aws.ToString(d.Failures[0].Reason) != "MISSING" {
		t.Errorf("unknown ARN: %v %+v", err, d)
	}
}

// stopped reads the service's stopped tasks.
func (e *stackEnv) stopped(t *testing.T) []ecstypes.Task {
	t.Helper()
	ctx := context.Background()
	lt, err := e.api.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(e.n.Cluster), ServiceName: aws.String(e.n.Service), DesiredStatus: "STOPPED"})
	if err != nil || len(lt.TaskArns) == 0 {
		return nil
	}
	dt, err := e.api.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(e.n.Cluster), Tasks: lt.TaskArns})
	if err != nil {
		t.Fatal(err)
	}
	return dt.Tasks
}

func TestSDRollbackCompletes(t *testing.T) {
	t.Parallel()
	e := newStackEnv(t, Rollback, 2)
	initial := e.describe(t)
	td, _ := e.register(t, "cd")
	arn, id := e.deploy(t, td)
	sawPrimaryOld := false
	seq, sd := e.watch(t, arn, 20, func(sd ecstypes.ServiceDeployment) {
		if sd.Status == "ROLLBACK_IN_PROGRESS" {
			svc := e.describe(t)
			// DescribeServices: a new PRIMARY deployment runs the old revision.
			if aws.ToString(svc.Deployments[0].Id) != id && aws.ToString(svc.Deployments[0].TaskDefinition) == aws.ToString(initial.TaskDefinition) &&
				aws.ToString(svc.Deployments[0].Status) == "PRIMARY" {
				sawPrimaryOld = true
			}
		}
	})
	wantSeq(t, seq, "PENDING", "IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL")
	if !sawPrimaryOld {
		t.Error("during ROLLBACK_IN_PROGRESS, DescribeServices never showed a PRIMARY deployment of the old revision")
	}
	if sd.Rollback == nil || aws.ToString(sd.Rollback.ServiceRevisionArn) != aws.ToString(sd.SourceServiceRevisions[0].Arn) || sd.Rollback.StartedAt == nil {
		t.Errorf("rollback: %+v (source %+v)", sd.Rollback, sd.SourceServiceRevisions)
	}
	if cb := sd.DeploymentCircuitBreaker; cb == nil || cb.Status != "TRIGGERED" || cb.FailureCount != 3 || cb.Threshold != 3 {
		t.Errorf("circuit breaker: %+v", cb)
	}
	svc := e.describe(t)
	if aws.ToString(svc.TaskDefinition) != aws.ToString(initial.TaskDefinition) || len(svc.Deployments) != 1 || svc.Deployments[0].RolloutState != "COMPLETED" {
		t.Errorf("after the rollback the service runs %s, deployments %+v", aws.ToString(svc.TaskDefinition), svc.Deployments)
	}
	mo, err := e.moto.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String(e.n.Cluster), Services: []string{e.n.Service}})
	if err != nil || aws.ToString(mo.Services[0].TaskDefinition) != aws.ToString(initial.TaskDefinition) {
		t.Errorf("moto's service after the rollback: %v %v", err, mo)
	}
	failed := 0
	for _, tk := range e.stopped(t) {
		if aws.ToString(tk.StartedBy) != id {
			continue
		}
		failed++
		if tk.StopCode != "EssentialContainerExited" || aws.ToString(tk.StoppedReason) != "Essential container in task exited" {
			t.Errorf("stopped task: %s %s", tk.StopCode, aws.ToString(tk.StoppedReason))
		}
		for _, c := range tk.Containers {
			if aws.ToString(c.Name) == "django" && aws.ToInt32(c.ExitCode) != 1 {
				t.Errorf("django exit %v", c.ExitCode)
			}
		}
	}
	if failed != 3 {
		t.Errorf("%d stopped tasks of the failed deployment, want the breaker's threshold 3", failed)
	}
	if e.sim.FailedAt(e.n.Cluster, e.n.Service).IsZero() {
		t.Error("FailedAt is zero after a read showed the failure")
	}
}

func TestSDRollbackFails(t *testing.T) {
	t.Parallel()
	e := newStackEnv(t, RollbackFails, 2)
	td, _ := e.register(t, "ef")
	arn, _ := e.deploy(t, td)
	seq, sd := e.watch(t, arn, 20, nil)
	wantSeq(t, seq, "PENDING", "IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "ROLLBACK_FAILED")
	if sd.FinishedAt == nil || !strings.Contains(aws.ToString(sd.StatusReason), "failed") {
		t.Errorf("record: finished %v reason %q", sd.FinishedAt, aws.ToString(sd.StatusReason))
	}
	svc := e.describe(t)
	if p := svc.Deployments[0]; aws.ToString(p.Status) != "PRIMARY" || p.RolloutState != "FAILED" || aws.ToString(p.TaskDefinition) == td {
		t.Errorf("the failed rollback deployment: %+v", p)
	}
}

func TestSDBreakerWithoutRollback(t *testing.T) {
	t.Parallel()
	e := newStackEnv(t, Fail, 2)
	td, _ := e.register(t, "12")
	arn, id := e.deploy(t, td)
	seq, sd := e.watch(t, arn, 20, nil)
	wantSeq(t, seq, "PENDING", "IN_PROGRESS", "STOPPED")
	if sd.StoppedAt == nil || sd.Rollback != nil || sd.DeploymentCircuitBreaker.Status != "TRIGGERED" {
		t.Errorf("record: %+v", sd)
	}
	svc := e.describe(t)
	p := svc.Deployments[0]
	if aws.ToString(p.Id) != id || aws.ToString(p.Status) != "PRIMARY" || p.RolloutState != "FAILED" || p.FailedTasks != 3 {
		t.Fatalf("FAILED deployment: %+v", p)
	}
	// ECS keeps trying to start tasks.
	e.sim.Advance(6)
	if p2 := e.describe(t).Deployments[0]; p2.FailedTasks <= p.FailedTasks || aws.ToString(p2.Status) != "PRIMARY" {
		t.Errorf("failedTasks %d then %d: ECS should keep trying", p.FailedTasks, p2.FailedTasks)
	}
}

func TestSDBreakerDisabledKeepsFailing(t *testing.T) {
	t.Parallel()
	e := newStackEnv(t, Fail, 2)
	e.sim.Configure(e.n.Cluster, e.n.Service, ServiceConfig{})
	td, _ := e.register(t, "34")
	arn, _ := e.deploy(t, td)
	e.sim.Advance(12)
	sd := e.sd(t, arn)
	p := e.describe(t).Deployments[0]
	if sd.Status != "IN_PROGRESS" || sd.DeploymentCircuitBreaker.Status != "DISABLED" || p.FailedTasks <= 3 || p.RolloutState != "IN_PROGRESS" {
		t.Errorf("breaker off: record %s %+v, deployment %s failed %d", sd.Status, sd.DeploymentCircuitBreaker, p.RolloutState, p.FailedTasks)
	}
}

func TestSDOutsideUpdate(t *testing.T) {
	t.Parallel()
	e := newStackEnv(t, Success, 8)
	initial := e.describe(t)
	td, _ := e.register(t, "56")
	arn, _ := e.deploy(t, td)
	if err := e.sim.OutsideUpdate(e.n.Cluster, e.n.Service, aws.ToString(initial.TaskDefinition)); err != nil {
		t.Fatal(err)
	}
	sd := e.sd(t, arn)
	if sd.Status != "STOPPED" || !strings.Contains(aws.ToString(sd.StatusReason), "replaced") {
		t.Fatalf("our record after an outside update: %s %q", sd.Status, aws.ToString(sd.StatusReason))
	}
	ls, err := e.api.ListServiceDeployments(context.Background(), &ecs.ListServiceDeploymentsInput{Cluster: aws.String(e.n.Cluster), Service: aws.String(e.n.Service)})
	if err != nil || len(ls.ServiceDeployments) != 3 || aws.ToString(ls.ServiceDeployments[1].ServiceDeploymentArn) != arn {
		t.Fatalf("history: %v %+v", err, ls)
	}
	newer := ls.ServiceDeployments[0]
	if !newer.CreatedAt.After(*sd.CreatedAt) || !strings.Contains(aws.ToString(sd.StatusReason), aws.ToString(newer.ServiceDeploymentArn)) {
		t.Errorf("newer %+v, ours created %v reason %q", newer, sd.CreatedAt, aws.ToString(sd.StatusReason))
	}
	seq, _ := e.watch(t, aws.ToString(newer.ServiceDeploymentArn), 20, nil)
	wantSeq(t, seq, "PENDING", "IN_PROGRESS", "SUCCESSFUL")
	if got := aws.ToString(e.describe(t).TaskDefinition); got != aws.ToString(initial.TaskDefinition) {
		t.Errorf("service runs %s after the outside update completed", got)
	}
}

func TestSDLaggingRead(t *testing.T) {
	t.Parallel()
	e := newStackEnv(t, Success, 4)
	initial := e.describe(t)
	td, _ := e.register(t, "78")
	e.sim.SetFaults(e.n.Cluster, e.n.Service, Faults{LagReads: 3})
	if _, err := e.api.UpdateService(context.Background(), &ecs.UpdateServiceInput{Cluster: aws.String(e.n.Cluster), Service: aws.String(e.n.Service), TaskDefinition: aws.String(td)}); err != nil {
		t.Fatal(err)
	}
	arn := e.sim.CurrentServiceDeployment(e.n.Cluster, e.n.Service)
	// Read 1: DescribeServices still shows the old revision and deployment.
	svc := e.describe(t)
	if aws.ToString(svc.TaskDefinition) != aws.ToString(initial.TaskDefinition) || aws.ToString(svc.CurrentServiceDeployment) != aws.ToString(initial.CurrentServiceDeployment) || len(svc.Deployments) != 1 {
		t.Fatalf("lagging DescribeServices: td %s current %s deployments %d", aws.ToString(svc.TaskDefinition), aws.ToString(svc.CurrentServiceDeployment), len(svc.Deployments))
	}
	// Read 2: the list does not have it.
	ls, err := e.api.ListServiceDeployments(context.Background(), &ecs.ListServiceDeploymentsInput{Cluster: aws.String(e.n.Cluster), Service: aws.String(e.n.Service)})
	if err != nil || len(ls.ServiceDeployments) != 1 {
		t.Fatalf("lagging list: %v %+v", err, ls)
	}
	// Read 3: its ARN is MISSING.
	d, err := e.api.DescribeServiceDeployments(context.Background(), &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{arn}})
	if err != nil || len(d.ServiceDeployments) != 0 || len(d.Failures) != 1 || aws.ToString(d.Failures[0].Reason) != "MISSING" {
		t.Fatalf("lagging describe: %v %+v", err, d)
	}
	// Read 4 sees it.
	svc = e.describe(t)
	if aws.ToString(svc.TaskDefinition) != td || aws.ToString(svc.CurrentServiceDeployment) != arn {
		t.Fatalf("after the lag: td %s current %s", aws.ToString(svc.TaskDefinition), aws.ToString(svc.CurrentServiceDeployment))
	}
	seq, _ := e.watch(t, arn, 20, nil)
	if seq[len(seq)-1] != "SUCCESSFUL" {
		t.Errorf("statuses %v", seq)
	}
}

func TestSDStopRollback(t *testing.T) {
	t.Parallel()
	e := newStackEnv(t, Stuck, 2)
	initial := e.describe(t)
	td, _ := e.register(t, "9a")
	arn, _ := e.deploy(t, td)
	e.sim.Advance(3)
	if sd := e.sd(t, arn); sd.Status != "IN_PROGRESS" {
		t.Fatalf("stuck deployment is %s", sd.Status)
	}
	ctx := context.Background()
	out, err := e.api.StopServiceDeployment(ctx, &ecs.StopServiceDeploymentInput{ServiceDeploymentArn: aws.String(arn), StopType: "ROLLBACK"})
	if err != nil || aws.ToString(out.ServiceDeploymentArn) != arn {
		t.Fatalf("StopServiceDeployment: %v", err)
	}
	seq, sd := e.watch(t, arn, 20, nil)
	if !slices.Equal(seq, []string{"ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL"}) {
		t.Fatalf("statuses after StopServiceDeployment: %v", seq)
	}
	if sd.Rollback == nil || aws.ToString(sd.Rollback.ServiceRevisionArn) != aws.ToString(sd.SourceServiceRevisions[0].Arn) {
		t.Errorf("rollback: %+v", sd.Rollback)
	}
	if got := aws.ToString(e.describe(t).TaskDefinition); got != aws.ToString(initial.TaskDefinition) {
		t.Errorf("service runs %s after the rollback", got)
	}
	_, err = e.api.StopServiceDeployment(ctx, &ecs.StopServiceDeploymentInput{ServiceDeploymentArn: aws.String(arn), StopType: "ROLLBACK"})
	var ce *ecstypes.ConflictException
	if !errors.As(err, &ce) {
		t.Errorf("stopping a finished deployment: %v, want ConflictException", err)
	}
	_, err = e.api.StopServiceDeployment(ctx, &ecs.StopServiceDeploymentInput{ServiceDeploymentArn: aws.String(arn + "x"), StopType: "ROLLBACK"})
	var nf *ecstypes.ServiceDeploymentNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("stopping an unknown deployment: %v, want ServiceDeploymentNotFoundException", err)
	}
}

func TestSDThrottlingThenAnswer(t *testing.T) {
	t.Parallel()
	e := newStackEnv(t, Success, 2)
	td, _ := e.register(t, "bc")
	arn, _ := e.deploy(t, td)
	e.sim.SetFaults(e.n.Cluster, e.n.Service, Faults{Throttle: 2, ThrottleOps: []string{"DescribeServiceDeployments"}})
	for i := 0; i < 2; i++ {
		_, err := e.api.DescribeServiceDeployments(context.Background(), &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{arn}})
		if err == nil || !strings.Contains(err.Error(), "ThrottlingException") || !strings.Contains(err.Error(), "Rate exceeded") {
			t.Fatalf("call %d: %v, want ThrottlingException", i+1, err)
		}
	}
	e.describe(t) // other operations are not throttled
	if sd := e.sd(t, arn); sd.ServiceDeploymentArn == nil {
		t.Fatal("no answer after the throttles")
	}
}

func TestSDUpdateApplied500(t *testing.T) {
	t.Parallel()
	e := newStackEnv(t, Success, 2)
	initial := e.describe(t)
	td, _ := e.register(t, "de")
	e.sim.SetFaults(e.n.Cluster, e.n.Service, Faults{UpdateApplied500: true})
	_, err := e.api.UpdateService(context.Background(), &ecs.UpdateServiceInput{Cluster: aws.String(e.n.Cluster), Service: aws.String(e.n.Service), TaskDefinition: aws.String(td)})
	var se *ecstypes.ServerException
	if !errors.As(err, &se) {
		t.Fatalf("UpdateService: %v, want ServerException", err)
	}
	svc := e.describe(t)
	if aws.ToString(svc.TaskDefinition) != td || aws.ToString(svc.CurrentServiceDeployment) == aws.ToString(initial.CurrentServiceDeployment) {
		t.Errorf("the update answered 500 was not applied: td %s", aws.ToString(svc.TaskDefinition))
	}
}

func TestSDNoPermission(t *testing.T) {
	t.Parallel()
	e := newStackEnv(t, Success, 2)
	e.sim.Configure(e.n.Cluster, e.n.Service, ServiceConfig{CircuitBreaker: true, Rollback: true, NoDeploymentAPI: true})
	_, err := e.api.ListServiceDeployments(context.Background(), &ecs.ListServiceDeploymentsInput{Cluster: aws.String(e.n.Cluster), Service: aws.String(e.n.Service)})
	var ad *ecstypes.AccessDeniedException
	if !errors.As(err, &ad) || !strings.Contains(err.Error(), "ecs:ListServiceDeployments") {
		t.Fatalf("ListServiceDeployments without the permission: %v", err)
	}
}

func TestSDBlueGreenStages(t *testing.T) {
	t.Parallel()
	e := newStackEnv(t, Success, 2)
	e.sim.Configure(e.n.Cluster, e.n.Service, ServiceConfig{Strategy: "BLUE_GREEN", BakeTimeMinutes: 1, CircuitBreaker: true, Rollback: true})
	td, _ := e.register(t, "f0")
	arn, _ := e.deploy(t, td)
	var stages []string
	bakeSteps := 0 // reads (one per step) that showed BAKE_TIME
	sideBySide := false
	seq, sd := e.watch(t, arn, 40, func(sd ecstypes.ServiceDeployment) {
		s := string(sd.LifecycleStage)
		if s != "" && (len(stages) == 0 || stages[len(stages)-1] != s) {
			stages = append(stages, s)
		}
		if s == "BAKE_TIME" {
			bakeSteps++
			if sd.TargetServiceRevision.RunningTaskCount == 1 && len(sd.SourceServiceRevisions) == 1 && sd.SourceServiceRevisions[0].RunningTaskCount == 1 {
				sideBySide = true
			}
		}
	})
	wantSeq(t, seq, "PENDING", "IN_PROGRESS", "SUCCESSFUL")
	// Every stage is seen (each lasts at least a step; we read after each).
	if !slices.Equal(stages, blueGreenStages) {
		t.Errorf("stages %v, want %v", stages, blueGreenStages)
	}
	if !sideBySide {
		t.Error("during BAKE_TIME the old and new revisions did not both run a task")
	}
	if want := int(testMinuteIs / testStep); bakeSteps != want {
		t.Errorf("bake time lasted %d steps, want 1 minute × MinuteIs (%s) = %d steps of %s", bakeSteps, testMinuteIs, want, testStep)
	}
	if c := sd.DeploymentConfiguration; c == nil || c.Strategy != "BLUE_GREEN" || aws.ToInt32(c.BakeTimeInMinutes) != 1 {
		t.Errorf("record's deploymentConfiguration: %+v", c)
	}
	if svc := e.describe(t); len(svc.Deployments) != 1 || svc.RunningCount != 1 {
		t.Errorf("after CLEAN_UP: %+v", svc.Deployments)
	}
}

// TestSDRollingPacing: maximumPercent 100 / minimumHealthyPercent 0 (the
// data guard's setting) stops the old task before the new one starts: the
// two revisions never run together; 200 / 100 starts the new one beside it.
func TestSDRollingPacing(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name         string
		max, min     int32
		wantTogether bool
	}{{"100-0", 100, 0, false}, {"200-100", 200, 100, true}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newStackEnv(t, Success, 3)
			e.sim.Configure(e.n.Cluster, e.n.Service, ServiceConfig{CircuitBreaker: true, Rollback: true, MaximumPercent: c.max, MinimumHealthyPercent: c.min})
			td, _ := e.register(t, "a1")
			arn, _ := e.deploy(t, td)
			together := false
			seq, _ := e.watch(t, arn, 20, func(sd ecstypes.ServiceDeployment) {
				src, tgt := sd.SourceServiceRevisions[0], sd.TargetServiceRevision
				if src.RunningTaskCount > 0 && tgt.RunningTaskCount+tgt.PendingTaskCount > 0 {
					together = true
				}
			})
			wantSeq(t, seq, "PENDING", "IN_PROGRESS", "SUCCESSFUL")
			if together != c.wantTogether {
				t.Errorf("old and new task side by side: %v, want %v", together, c.wantTogether)
			}
			if got := e.describe(t).DeploymentConfiguration; aws.ToInt32(got.MaximumPercent) != c.max || aws.ToInt32(got.MinimumHealthyPercent) != c.min {
				t.Errorf("deploymentConfiguration %+v", got)
			}
		})
	}
}

func TestSDAlarmRollback(t *testing.T) {
	t.Parallel()
	for _, rollback := range []bool{true, false} {
		t.Run(map[bool]string{true: "rollback", false: "no-rollback"}[rollback], func(t *testing.T) {
			t.Parallel()
			e := newStackEnv(t, Success, 30)
			e.sim.Configure(e.n.Cluster, e.n.Service, ServiceConfig{CircuitBreaker: true, Rollback: true, Alarms: []string{"web-5xx"}, AlarmRollback: rollback})
			td, _ := e.register(t, "a2")
			arn, _ := e.deploy(t, td)
			if err := e.sim.TriggerAlarm(e.n.Cluster, e.n.Service, "other"); err == nil {
				t.Error("an alarm that is not the service's fired")
			}
			e.sim.Advance(2)
			if err := e.sim.TriggerAlarm(e.n.Cluster, e.n.Service, "web-5xx"); err != nil {
				t.Fatal(err)
			}
			seq, sd := e.watch(t, arn, 60, nil) // Polls 30: the rollback deployment takes 30 steps
			want := []string{"ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL"}
			if !rollback {
				want = []string{"STOPPED"}
			}
			if !slices.Equal(seq, want) {
				t.Errorf("statuses after the alarm: %v, want %v", seq, want)
			}
			if a := sd.Alarms; a == nil || a.Status != "TRIGGERED" || !slices.Equal(a.TriggeredAlarmNames, []string{"web-5xx"}) || !slices.Equal(a.AlarmNames, []string{"web-5xx"}) {
				t.Errorf("alarms: %+v", a)
			}
		})
	}
}

// TestSDTrafficSteps: CANARY shifts CanaryPercent first and the rest after
// the canary bake; LINEAR steps StepPercent each step bake.
func TestSDTrafficSteps(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		cfg  ServiceConfig
		want []float64
	}{
		{"canary", ServiceConfig{Strategy: "CANARY", CanaryPercent: 20, CanaryBakeMinutes: 1}, []float64{0, 20, 100}},
		{"linear", ServiceConfig{Strategy: "LINEAR", StepPercent: 40, StepBakeMinutes: 1}, []float64{0, 40, 80, 100}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newStackEnv(t, Success, 2)
			c.cfg.CircuitBreaker, c.cfg.Rollback = true, true
			e.sim.Configure(e.n.Cluster, e.n.Service, c.cfg)
			td, _ := e.register(t, "a3")
			arn, _ := e.deploy(t, td)
			var weights []float64
			seq, sd := e.watch(t, arn, 40, func(sd ecstypes.ServiceDeployment) {
				tg := sd.TargetServiceRevision
				if tg.RequestedProductionTrafficWeight == nil {
					t.Fatalf("no requestedProductionTrafficWeight on %s's target", c.name)
				}
				w := aws.ToFloat64(tg.RequestedProductionTrafficWeight)
				if src := aws.ToFloat64(sd.SourceServiceRevisions[0].RequestedProductionTrafficWeight); src != 100-w {
					t.Errorf("source weight %v with target %v", src, w)
				}
				if len(weights) == 0 || weights[len(weights)-1] != w {
					weights = append(weights, w)
				}
			})
			wantSeq(t, seq, "PENDING", "IN_PROGRESS", "SUCCESSFUL")
			if !slices.Equal(weights, c.want) {
				t.Errorf("production traffic weights %v, want %v", weights, c.want)
			}
			if sd.DeploymentConfiguration.Strategy != ecstypes.DeploymentStrategy(c.cfg.Strategy) {
				t.Errorf("strategy %s", sd.DeploymentConfiguration.Strategy)
			}
		})
	}
}
