package rollout

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// decide hands a STOPPED record to DecideServiceDeployment only with the
// list of newer deployments read; without it the service's deployments
// decide, as they do without a record.
func TestDecideSource(t *testing.T) {
	now := time.Now()
	obs := Observation{ID: "ecs-svc/1", TaskDefinition: "td:2", Source: "td:1", UpdatedAt: now.Add(-time.Minute), Now: now, Seen: true,
		Svc: ecstypes.Service{Deployments: []ecstypes.Deployment{{Id: aws.String("ecs-svc/1"), Status: aws.String(statusPrimary), TaskDefinition: aws.String("td:2"),
			RolloutState: ecstypes.DeploymentRolloutStateCompleted, DesiredCount: 1, RunningCount: 1}}}}
	stopped := &ecstypes.ServiceDeployment{Status: ecstypes.ServiceDeploymentStatusStopped, ServiceDeploymentArn: aws.String("sd/1")}
	running := &ecstypes.ServiceDeployment{Status: ecstypes.ServiceDeploymentStatusInProgress, ServiceDeploymentArn: aws.String("sd/1")}
	for _, c := range []struct {
		name string
		p    polled
		want State
	}{
		{"no record", polled{}, evaluate(obs)},
		{"stopped, newer unknown", polled{sd: stopped, useRecord: true}, evaluate(obs)},
		{"stopped, newer read", polled{sd: stopped, newerKnown: true, useRecord: true}, DecideServiceDeployment(stopped, nil, obs)},
		{"in progress", polled{sd: running, useRecord: true}, DecideServiceDeployment(running, nil, obs)},
	} {
		if got := decide(decision{obs: obs, p: c.p}); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
	if evaluate(obs).Phase != Completed || DecideServiceDeployment(running, nil, obs).Phase == Completed {
		t.Fatal("the cases above do not tell the sources apart")
	}
}

// The pacer doubles its backoff up to maxBackoff, resets it after a poll,
// and says the deadline passed rather than sleeping past it.
func TestPacer(t *testing.T) {
	var slept []time.Duration
	p := newPacer(FollowOptions{Interval: 10 * time.Second, Jitter: -1, Timeout: time.Hour,
		Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }})
	var waits []time.Duration
	for range 4 {
		if w := p.backoff(); w < p.wait*8/10 || w > p.wait*12/10 {
			t.Errorf("backoff %v is not %v ± 20%%", w, p.wait)
		}
		waits = append(waits, p.wait)
	}
	if !reflect.DeepEqual(waits, []time.Duration{20 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}) {
		t.Errorf("backoff %v", waits)
	}
	p.reset()
	if p.wait != 10*time.Second || p.next() != 10*time.Second {
		t.Errorf("after reset: %v, next %v", p.wait, p.next())
	}
	if err := p.sleep(context.Background(), 2*time.Hour); err != nil || len(slept) != 1 || slept[0] > time.Hour {
		t.Errorf("sleep past the deadline: %v, slept %v", err, slept)
	}
	p.deadline = time.Now().Add(-time.Second)
	err := p.sleep(context.Background(), time.Second)
	if !errors.Is(err, errDeadline) || len(slept) != 1 {
		t.Fatalf("after the deadline: %v, slept %v", err, slept)
	}
	if code := exitcode.Of(p.stopped(err, FollowOptions{DeploymentID: "d", Service: "s"}, State{}, "")); code != exitcode.TimedOut {
		t.Errorf("exit %d, want %d", code, exitcode.TimedOut)
	}
	if code := exitcode.Of(p.stopped(context.Canceled, FollowOptions{}, State{}, "")); code == exitcode.TimedOut {
		t.Error("an interruption is no timeout")
	}
}
