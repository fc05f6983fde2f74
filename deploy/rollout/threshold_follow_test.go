package rollout

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/hackforla/ctjdeploy/internal/ecsread"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// scriptECS answers Follow's polls from a script: failed[i] is our
// deployment's failedTasks at poll i; after the stop (or the update back)
// the rollback completes two polls later. It records the calls in order.
type scriptECS struct {
	ECS
	failed  []int32
	poll    int
	breaker bool
	noAPI   bool
	calls   []string
	stopAt  int // the poll after which the stop came (-1: none)
	// throttle: the first throttle StopServiceDeployment calls answer
	// ThrottlingException.
	throttle int
	backID   string
}

const sdArn = "arn:aws:ecs:us-west-2:123456789012:service-deployment/c/s/abc"

func (f *scriptECS) DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput, opts ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error) {
	f.calls = append(f.calls, "DescribeServices")
	f.poll++
	n := f.failed[min(f.poll-1, len(f.failed)-1)]
	cfg := &ecstypes.DeploymentConfiguration{DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: f.breaker, Rollback: f.breaker}}
	ours := dep(ours, "PRIMARY", tdNew, "", "", 1, 1, 0, n)
	ours.CreatedAt = aws.Time(time.Now().Add(-time.Minute))
	deps := []ecstypes.Deployment{ours}
	if f.stopAt >= 0 {
		rb := dep(other, "PRIMARY", tdOld, "", "", 1, 1, 0, 0)
		if f.backID != "" {
			rb.Id = aws.String(f.backID)
		}
		rb.CreatedAt = aws.Time(time.Now())
		ours.Status = aws.String("ACTIVE")
		deps = []ecstypes.Deployment{rb, ours}
		if f.poll-f.stopAt >= 2 {
			rb.RunningCount, rb.PendingCount = 1, 0
			deps = []ecstypes.Deployment{rb}
		}
	}
	return &ecs.DescribeServicesOutput{Services: []ecstypes.Service{{ServiceName: aws.String("s"), Deployments: deps, DeploymentConfiguration: cfg,
		CurrentServiceDeployment: aws.String(sdArn)}}}, nil
}

func (f *scriptECS) DescribeServiceDeployments(ctx context.Context, in *ecs.DescribeServiceDeploymentsInput, opts ...func(*ecs.Options)) (*ecs.DescribeServiceDeploymentsOutput, error) {
	f.calls = append(f.calls, "DescribeServiceDeployments")
	if f.noAPI {
		return nil, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform: ecs:DescribeServiceDeployments"}
	}
	st := ecstypes.ServiceDeploymentStatusInProgress
	if f.stopAt >= 0 {
		st = ecstypes.ServiceDeploymentStatusRollbackInProgress
		if f.poll-f.stopAt >= 2 {
			st = ecstypes.ServiceDeploymentStatusRollbackSuccessful
		}
	}
	return &ecs.DescribeServiceDeploymentsOutput{ServiceDeployments: []ecstypes.ServiceDeployment{{ServiceDeploymentArn: aws.String(sdArn), Status: st,
		DeploymentConfiguration: &ecstypes.DeploymentConfiguration{DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: f.breaker}}}}}, nil
}

func (f *scriptECS) StopServiceDeployment(ctx context.Context, in *ecs.StopServiceDeploymentInput, opts ...func(*ecs.Options)) (*ecs.StopServiceDeploymentOutput, error) {
	f.calls = append(f.calls, "StopServiceDeployment")
	if f.throttle > 0 {
		f.throttle--
		return nil, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
	}
	if aws.ToString(in.ServiceDeploymentArn) != sdArn || in.StopType != ecstypes.StopServiceDeploymentStopTypeRollback {
		return nil, errors.New("wrong stop: " + aws.ToString(in.ServiceDeploymentArn) + " " + string(in.StopType))
	}
	f.stopAt = f.poll
	return &ecs.StopServiceDeploymentOutput{ServiceDeploymentArn: in.ServiceDeploymentArn}, nil
}

func (f *scriptECS) UpdateService(ctx context.Context, in *ecs.UpdateServiceInput, opts ...func(*ecs.Options)) (*ecs.UpdateServiceOutput, error) {
	f.calls = append(f.calls, "UpdateService "+ecsread.ShortARN(aws.ToString(in.TaskDefinition)))
	f.stopAt, f.backID = f.poll, "ecs-svc/back"
	rb := dep(f.backID, "PRIMARY", aws.ToString(in.TaskDefinition), "", "", 1, 1, 0, 0)
	return &ecs.UpdateServiceOutput{Service: &ecstypes.Service{Deployments: []ecstypes.Deployment{rb}}}, nil
}

func (f *scriptECS) ListTasks(ctx context.Context, in *ecs.ListTasksInput, opts ...func(*ecs.Options)) (*ecs.ListTasksOutput, error) {
	return &ecs.ListTasksOutput{}, nil
}

// The stop comes in the poll that first shows the threshold, never twice,
// and never with a breaker.
func TestFollowStopsAtThreshold(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		failed   []int32
		throttle int
		breaker  bool
		noAPI    bool
		code     int
		act      string // the call made, if any
		actPoll  int    // the poll it follows
	}{
		{"stops in the poll that shows 3", []int32{0, 1, 2, 3, 4, 5}, 0, false, false, exitcode.RolledBack, "StopServiceDeployment", 4},
		{"jumps past the threshold between polls: stops at once", []int32{0, 5}, 0, false, false, exitcode.RolledBack, "StopServiceDeployment", 2},
		{"a throttled stop is tried again at the next poll, then lands once", []int32{0, 3}, 1, false, false, exitcode.RolledBack, "StopServiceDeployment", 3},
		{"without the API: UpdateService back in the same poll", []int32{1, 2, 3}, 0, false, true, exitcode.RolledBack, "UpdateService stage:7", 3},
		{"breaker: no stop, ECS's verdict (here: none) until the timeout", []int32{0, 3, 6, 9}, 0, true, false, exitcode.TimedOut, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &scriptECS{failed: tt.failed, breaker: tt.breaker, noAPI: tt.noAPI, stopAt: -1, throttle: tt.throttle}
			polls := 0
			res, err := Follow(context.Background(), api, FollowOptions{Cluster: "c", Service: "s", DeploymentID: ours, TaskDefinition: tdNew, Source: tdOld,
				ServiceDeploymentArn: sdArn, FailureThreshold: 3, Timeout: time.Second, UpdatedAt: time.Now().Add(-time.Minute),
				Sleep: func(ctx context.Context, d time.Duration) error {
					polls++
					if polls > 8 {
						// Past the script, wait what Follow asks (at most the
						// rest of its Timeout) so that the timeout comes.
						time.Sleep(d) // real time: Follow's deadline is on the wall clock
					}
					return ctx.Err()
				}})
			if exitcode.Of(err) != tt.code {
				t.Fatalf("exit %d, want %d: %v", exitcode.Of(err), tt.code, err)
			}
			acts := 0
			for _, c := range api.calls {
				if strings.HasPrefix(c, "StopServiceDeployment") || strings.HasPrefix(c, "UpdateService") {
					acts++
					if c != tt.act {
						t.Errorf("call %q, want %q", c, tt.act)
					}
					// Within the poll that first showed the threshold: the
					// poll count when the call came is that poll's.
					if api.stopAt != tt.actPoll {
						t.Errorf("acted after poll %d, want %d (calls %v)", api.stopAt, tt.actPoll, api.calls)
					}
				}
			}
			if want := map[bool]int{true: 1 + tt.throttle, false: 0}[tt.act != ""]; acts != want {
				t.Errorf("%d stops/updates, want %d: %v", acts, want, api.calls)
			}
			if tt.act != "" && (res.Acted == "" || res.ActedAt.Before(res.ThresholdAt)) {
				t.Errorf("result: acted %q at %v, threshold seen %v", res.Acted, res.ActedAt, res.ThresholdAt)
			}
		})
	}
}
