package rollout

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
)

// DefaultInterval is how often Follow polls DescribeServices.
const DefaultInterval = 3 * time.Second

// FollowOptions say which deployment to follow and how.
type FollowOptions struct {
	Cluster, Service string
	DeploymentID     string // the id UpdateService returned
	TaskDefinition   string // the revision that deployment runs
	Env              string // for the hints in messages ("ctjdeploy ENV status")
	// Interval between polls (default DefaultInterval); each wait is
	// Interval ± Jitter×Interval (Jitter default 0.1; negative: none).
	Interval time.Duration
	Jitter   float64
	// Timeout is how long to follow before giving up with exit 4 (0: no limit).
	Timeout time.Duration
	// Since: service events older than this are not printed (default: now).
	Since    time.Time
	Reporter report.Reporter
	// Sleep waits d or until ctx ends (default: a timer). Tests inject it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// FollowResult is how the followed deployment ended.
type FollowResult struct {
	State   State
	Polls   int
	Service *ecstypes.Service // the last DescribeServices answer
	// Stopped are the deployment's stopped tasks, read when it failed.
	Stopped []StoppedTask
	// FailedAt is when Follow first saw the failure (for the benchmark).
	FailedAt time.Time
}

// StoppedTask is a task the failed deployment started and ECS stopped.
type StoppedTask struct {
	TaskArn    string             `json:"taskArn"`
	Reason     string             `json:"stoppedReason"`
	StopCode   string             `json:"stopCode,omitempty"`
	Containers []StoppedContainer `json:"containers,omitempty"`
}

// StoppedContainer is one container of a stopped task.
type StoppedContainer struct {
	Name     string `json:"name"`
	ExitCode *int32 `json:"exitCode,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

func (t StoppedTask) String() string {
	var parts []string
	for _, c := range t.Containers {
		s := c.Name
		if c.ExitCode != nil {
			s += fmt.Sprintf(" exit %d", *c.ExitCode)
		}
		if c.Reason != "" {
			s += " (" + c.Reason + ")"
		}
		if c.ExitCode != nil || c.Reason != "" {
			parts = append(parts, s)
		}
	}
	id := t.TaskArn[strings.LastIndex(t.TaskArn, "/")+1:]
	out := fmt.Sprintf("task %s stopped: %s", id, t.Reason)
	if len(parts) > 0 {
		out += "; " + strings.Join(parts, ", ")
	}
	return out
}

// maxStopped is how many stopped tasks a failure report describes.
const maxStopped = 5

// Follow polls the service until the deployment opts.DeploymentID completes
// (nil error), fails or is rolled back by ECS (exit 3, with the rollout
// reason, the last failure events and the stopped tasks' reasons), is
// replaced by another deployment of the same revision (exit 1), or the
// timeout passes (exit 4: it may still finish). Each new service event is
// reported once (phase "rollout", Line events), and the deployment's counts
// as a Progress event whenever they change.
func Follow(ctx context.Context, api ECS, o FollowOptions) (FollowResult, error) {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Jitter == 0 {
		o.Jitter = 0.1
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	if o.Since.IsZero() {
		o.Since = time.Now()
	}
	if o.Env == "" {
		o.Env = "ENV"
	}
	ph := report.For(o.Reporter, "rollout")
	start := time.Now()
	var deadline time.Time
	if o.Timeout > 0 {
		deadline = start.Add(o.Timeout)
	}
	seen := map[string]bool{}
	var res FollowResult
	lastProgress := ""
	var events []ecstypes.ServiceEvent // ours, oldest first
	for {
		svc, err := DescribeService(ctx, api, o.Cluster, o.Service)
		if err != nil {
			if ctx.Err() != nil {
				return res, interrupted(o)
			}
			return res, err
		}
		res.Polls++
		res.Service = svc
		// New events, oldest first, each once.
		var fresh []ecstypes.ServiceEvent
		for _, e := range svc.Events {
			id := aws.ToString(e.Id)
			if seen[id] {
				continue
			}
			seen[id] = true
			if e.CreatedAt != nil && e.CreatedAt.Before(o.Since.Add(-time.Second)) {
				continue
			}
			fresh = append(fresh, e)
		}
		sort.SliceStable(fresh, func(i, j int) bool {
			return aws.ToTime(fresh[i].CreatedAt).Before(aws.ToTime(fresh[j].CreatedAt))
		})
		for _, e := range fresh {
			ph.Line("event", aws.ToString(e.Message))
		}
		events = append(events, fresh...)

		st := evaluate(o.DeploymentID, o.TaskDefinition, *svc)
		res.State = st
		if d := st.Ours; d != nil {
			p := fmt.Sprintf("%d/%d %d %d", d.RunningCount, d.DesiredCount, d.PendingCount, d.FailedTasks)
			if p != lastProgress {
				lastProgress = p
				ph.Progress("deployment "+o.DeploymentID, int64(d.RunningCount), int64(d.DesiredCount),
					fmt.Sprintf("running, %d pending, %d failed", d.PendingCount, d.FailedTasks))
			}
		}
		switch st.Phase {
		case Completed:
			return res, nil
		case Superseded:
			return res, fmt.Errorf("%s; follow it with `ctjdeploy %s status`", st.Reason, o.Env)
		case Failed:
			res.FailedAt = time.Now()
			res.Stopped = stoppedTasks(ctx, api, o)
			return res, failure(o, st, events, res.Stopped)
		}
		wait := jittered(o.Interval, o.Jitter)
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return res, timedOut(o, st)
			}
			if wait > left {
				wait = left
			}
		}
		if err := o.Sleep(ctx, wait); err != nil {
			return res, interrupted(o)
		}
	}
}

func jittered(d time.Duration, j float64) time.Duration {
	if j <= 0 {
		return d
	}
	f := 1 + j*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func interrupted(o FollowOptions) error {
	return fmt.Errorf("stopped following deployment %s of service %s; it goes on without us: check it with `ctjdeploy %s status`", o.DeploymentID, o.Service, o.Env)
}

func timedOut(o FollowOptions, st State) error {
	counts := ""
	if d := st.Ours; d != nil {
		counts = fmt.Sprintf(" (%d/%d running, %d pending, %d failed)", d.RunningCount, d.DesiredCount, d.PendingCount, d.FailedTasks)
	}
	return exitcode.Wrap(exitcode.TimedOut, fmt.Errorf(
		"timed out after %s waiting for deployment %s of service %s to %s%s; it may still finish: check with `ctjdeploy %s status`, or wait longer with --timeout",
		o.Timeout, o.DeploymentID, o.Service, shortARN(o.TaskDefinition), counts, o.Env))
}

// maxFailureEvents is how many of the deployment's last events a failure
// report repeats.
const maxFailureEvents = 5

func failure(o FollowOptions, st State, events []ecstypes.ServiceEvent, stopped []StoppedTask) error {
	var b strings.Builder
	fmt.Fprintf(&b, "deployment %s of %s to service %s failed: %s", o.DeploymentID, shortARN(o.TaskDefinition), o.Service, st.Reason)
	if !st.RolledBack {
		b.WriteString("\nECS did not roll the service back; it still runs what the deployment left: check `ctjdeploy " + o.Env + " status`")
	}
	if n := len(events); n > 0 {
		b.WriteString("\nlast service events:")
		for _, e := range events[max(0, n-maxFailureEvents):] {
			b.WriteString("\n  " + aws.ToString(e.Message))
		}
	}
	if len(stopped) > 0 {
		b.WriteString("\nstopped tasks:")
		for _, t := range stopped {
			b.WriteString("\n  " + t.String())
		}
	}
	return exitcode.Wrap(exitcode.RolledBack, fmt.Errorf("%s", b.String()))
}

// stoppedTasks reads the deployment's stopped tasks (ListTasks STOPPED +
// DescribeTasks). It is best effort: a failure here must not hide the
// deployment's failure, so errors give no tasks.
func stoppedTasks(ctx context.Context, api ECS, o FollowOptions) []StoppedTask {
	lt, err := api.ListTasks(ctx, &ecs.ListTasksInput{
		Cluster: aws.String(o.Cluster), ServiceName: aws.String(o.Service), DesiredStatus: ecstypes.DesiredStatusStopped,
	})
	if err != nil || len(lt.TaskArns) == 0 {
		return nil
	}
	arns := lt.TaskArns
	if len(arns) > 100 {
		arns = arns[:100]
	}
	dt, err := api.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(o.Cluster), Tasks: arns})
	if err != nil {
		return nil
	}
	var out []StoppedTask
	for _, t := range dt.Tasks {
		if aws.ToString(t.TaskDefinitionArn) != o.TaskDefinition && aws.ToString(t.StartedBy) != o.DeploymentID {
			continue
		}
		st := StoppedTask{TaskArn: aws.ToString(t.TaskArn), Reason: aws.ToString(t.StoppedReason), StopCode: string(t.StopCode)}
		for _, c := range t.Containers {
			st.Containers = append(st.Containers, StoppedContainer{Name: aws.ToString(c.Name), ExitCode: c.ExitCode, Reason: aws.ToString(c.Reason)})
		}
		out = append(out, st)
		if len(out) == maxStopped {
			break
		}
	}
	return out
}
