package rollback

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/deploy/inspect"
	"github.com/hackforla/ctjdeploy/deploy/rollout"
	"github.com/hackforla/ctjdeploy/deploy/taskdef"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/lease"
	"github.com/hackforla/ctjdeploy/internal/report"
)

// Guards are a rollback's guard verdicts: the data guard exactly as a
// deploy runs it; the stale-commit guard is bypassed (going back is the
// point); a deployment in progress is replaced (stage is broken: rolling
// back is what ends a stuck or failing rollout). Pure.
func Guards(env *config.Environment, p *Plan) []rollout.Verdict {
	var vs []rollout.Verdict
	ip := rollout.InProgressGuard(p.ServiceState, true)
	if ip.Outcome == rollout.Bypassed {
		ip.Message = strings.Replace(ip.Message, "because of --force", "because a rollback replaces it", 1)
	}
	vs = append(vs, ip)
	vs = append(vs, rollout.Verdict{Guard: rollout.GuardStaleCommit, Outcome: rollout.Bypassed,
		Message: "a rollback goes back to older code on purpose"})
	vs = append(vs, rollout.DataGuard(targetDefinition(p), p.ServiceState, env.EphemeralDatabase))
	return vs
}

// targetDefinition is the definition the rollback would run.
func targetDefinition(p *Plan) *ecs.RegisterTaskDefinitionInput {
	if p.Register != nil {
		return p.Register
	}
	if p.Target.Definition != nil {
		return taskdef.FromLive(p.Target.Definition)
	}
	return nil
}

// RunOptions say how to apply a plan.
type RunOptions struct {
	lease *lease.Lease // the deploy lock held (Run sets it)

	NoWait   bool          // stop after UpdateService
	Timeout  time.Duration // how long to follow (exit 4 after)
	Interval time.Duration // poll interval (0: the deploy package's default)
	// Sleep replaces the wait between polls (tests); nil: a timer.
	Sleep    func(ctx context.Context, d time.Duration) error
	Reporter report.Reporter
	// SSM holds the deploy lock (internal/lease), the same one a deploy
	// takes; nil: no lock (as with lock: false).
	SSM lease.SSM
	// ForceUnlock takes the lock over from its holder even before it
	// expires (--force-unlock: the holder is known to be dead).
	ForceUnlock bool
	// Run is this run's id (the lock's holder); "": a new one.
	Run string
}

// pace is how a rollback follows its deployment: events since since.
func (o RunOptions) pace(since time.Time) rollout.Pace {
	return rollout.Pace{Interval: o.Interval, Timeout: o.Timeout, Since: since, Reporter: o.Reporter, Sleep: o.Sleep}
}

// Result is what a rollback did.
type Result struct {
	// Outcome: deployed (the service runs the target, verified), unchanged,
	// updated (--no-wait), refused, failed, rolled-back (exit 3: the
	// rollback's own deployment failed), timed-out.
	Outcome           string                `json:"outcome"`
	TaskDefinitionARN string                `json:"taskDefinitionArn,omitempty"`
	Registered        bool                  `json:"registered"`
	DeploymentID      string                `json:"deploymentId,omitempty"`
	Verification      *rollout.Verification `json:"verification,omitempty"`
	// NowRunning says what the service runs after a failure.
	NowRunning string `json:"nowRunning,omitempty"`
	// Lock is the deploy lock this rollback held, LockReleased says
	// whether it released it.
	Lock         string `json:"lock,omitempty"`
	LockReleased bool   `json:"lockReleased,omitempty"`
}

// Run applies p: refuses on a guard's refusal (exit 5); registers the
// rendered revision if the plan has one; updates the service; follows the
// deployment it started and verifies the running tasks' digests, exactly as
// a deploy does (exit 3 when the rollback itself failed, with what runs
// now; exit 4 on timeout). It never deregisters anything.
func Run(ctx context.Context, api rollout.ECS, env *config.Environment, p *Plan, o RunOptions) (res Result, err error) {
	l, err := takeLock(ctx, api, env, p, o)
	if err != nil {
		res.Outcome = exitcode.Name(exitcode.Of(err))
		if exitcode.Of(err) == exitcode.Refused {
			res.Outcome = "refused"
		}
		return res, err
	}
	if l != nil {
		defer func() { res.Lock, res.LockReleased = l.Name(), l.Release() }()
		o.lease = l
	}
	if err := rollout.Refusal(Guards(env, p)); err != nil {
		res.Outcome = "refused"
		return res, err
	}
	if p.Stop != "" {
		if err := o.lease.Err(); err != nil {
			res.Outcome = "refused"
			return res, fmt.Errorf("%w; nothing changed: the service still runs %s", err, describe(p.Live))
		}
		return stopAndFollow(ctx, api, env, p, o)
	}
	if p.Unchanged {
		res.Outcome = "unchanged"
		res.TaskDefinitionARN = p.Live.ARN
		return res, nil
	}
	arn := p.Target.ARN
	want := rollout.PinnedDigests(targetDefinition(p).ContainerDefinitions)
	if err := o.lease.Err(); err != nil {
		res.Outcome = "refused"
		return res, fmt.Errorf("%w; nothing changed: the service still runs %s", err, describe(p.Live))
	}
	if p.Register != nil {
		ph := report.Begin(o.Reporter, "register")
		var err error
		arn, err = rollout.Register(ctx, api, p.Register, rollout.RegisterTags{Commit: p.Tag, Env: env.Name, Previous: p.Live.ARN})
		if err != nil {
			res.Outcome = "failed"
			return res, ph.End(fmt.Errorf("%w; nothing changed: the service still runs %s", err, describe(p.Live)))
		}
		ph.Infof("registered %s (tagged %s=%s)", ecsread.ShortARN(arn), ecsread.TagCommit, p.Tag)
		ph.End(nil)
		res.Registered = true
	}
	res.TaskDefinitionARN = arn
	if err := o.lease.Err(); err != nil {
		res.Outcome = "refused"
		return res, fmt.Errorf("%w; nothing changed: the service still runs %s (revision %s, registered by this rollback, is unused)", err, describe(p.Live), ecsread.ShortARN(arn))
	}

	ph := report.Begin(o.Reporter, "update")
	since := time.Now()
	id, svc, err := rollout.Update(ctx, api, env.Cluster, env.Service, arn, false)
	if err != nil {
		res.Outcome = "failed"
		if svc == nil {
			err = fmt.Errorf("%w; the service still runs %s", err, describe(p.Live))
		}
		return res, ph.End(err)
	}
	res.DeploymentID = id
	ph.Infof("service %s now deploys %s (deployment %s)", env.Service, ecsread.ShortARN(arn), id)
	ph.End(nil)
	if o.NoWait {
		res.Outcome = "updated"
		return res, nil
	}

	ph = report.Begin(o.Reporter, "rollout")
	fr, err := rollout.Follow(ctx, api, rollout.NewFollowOptions(env.Cluster, env.Service, env.Name,
		rollout.Followed{DeploymentID: id, TaskDefinition: arn, ServiceDeploymentArn: aws.ToString(svc.CurrentServiceDeployment),
			PreviousServiceDeploymentArn: prevSD(p), Source: p.Live.ARN, UpdatedAt: time.Now()},
		o.pace(since)))
	if err != nil {
		code := exitcode.Of(err)
		res.Outcome = exitcode.Name(code)
		if code == exitcode.RolledBack {
			res.NowRunning = NowRunning(fr.Service, p, arn)
			err = exitcode.Wrap(exitcode.RolledBack, fmt.Errorf("the rollback to %s failed: %w\nwhat runs now: %s", ecsread.ShortARN(arn), err, res.NowRunning))
		}
		return res, ph.End(err)
	}
	ph.End(nil)

	return verify(ctx, api, env, o, fr, arn, want, res)
}

// takeLock takes the deploy lock (internal/lease), the one a deploy takes,
// before the rollback's first write: another run holding it is exit 5,
// naming it. With the lock held, the service must still be as the plan
// read it (a deploy that ended between the plan and the lock): else exit 5.
// nil: no lock (no SSM client, or lock: false).
func takeLock(ctx context.Context, api rollout.ECS, env *config.Environment, p *Plan, o RunOptions) (*lease.Lease, error) {
	name := env.LockParameter()
	if o.SSM == nil || name == "" {
		return nil, nil
	}
	run := o.Run
	if run == "" {
		run = rollout.NewRunID()
	}
	l, err := lease.Acquire(ctx, o.SSM, lease.Options{Name: name, Region: env.Region, Env: env.Name, TTL: env.LockTTL(), Force: o.ForceUnlock,
		Holder: lease.Holder{Run: run, Command: "rollback", Tag: p.Tag, Env: env.Name}, Reporter: o.Reporter})
	if err != nil {
		return nil, err
	}
	if was := p.ServiceState; was != nil {
		svc, err := ecsread.DescribeService(ctx, api, env.Cluster, env.Service)
		if err != nil {
			l.Release()
			return nil, fmt.Errorf("re-reading service %s after taking the deploy lock: %w; nothing changed", env.Service, err)
		}
		if a, b := aws.ToString(was.TaskDefinition), aws.ToString(svc.TaskDefinition); a != b || primaryID(was) != primaryID(svc) {
			l.Release()
			return nil, exitcode.Refusedf("service %s changed since this rollback's plan read it (revision %s → %s, primary deployment %s → %s): a deploy ran meanwhile; nothing changed. Run `ctjdeploy %s rollback --dry-run` to see the plan again",
				env.Service, ecsread.ShortARN(a), ecsread.ShortARN(b), primaryID(was), primaryID(svc), env.Name)
		}
	}
	return l, nil
}

func primaryID(svc *ecstypes.Service) string {
	for _, d := range svc.Deployments {
		if aws.ToString(d.Status) == "PRIMARY" {
			return aws.ToString(d.Id)
		}
	}
	return "(none)"
}

// stopAndFollow stops the in-flight service deployment p.Stop with
// StopServiceDeployment (stopType ROLLBACK), follows ECS's rollback to its
// end and verifies that the service runs the target's digests again. ECS's
// rollback completing is this command's success; the rollback failing is
// exit 6; the deployment completing before the stop took effect, or another
// deployment replacing it, exit 1.
func stopAndFollow(ctx context.Context, api rollout.ECS, env *config.Environment, p *Plan, o RunOptions) (Result, error) {
	res := Result{DeploymentID: p.StopDeploymentID, TaskDefinitionARN: p.Target.ARN}
	ph := report.Begin(o.Reporter, "update")
	since := time.Now()
	if err := rollout.StopRollback(ctx, api, p.Stop); err != nil {
		res.Outcome = "failed"
		return res, ph.End(fmt.Errorf("stopping service deployment %s of service %s (ecs:StopServiceDeployment): %w; nothing changed: run `ctjdeploy %s rollback` again, it deploys %s when nothing is in flight",
			p.Stop, env.Service, err, env.Name, ecsread.ShortARN(p.Target.ARN)))
	}
	ph.Infof("asked ECS to stop deployment %s and roll it back to %s", p.StopDeploymentID, ecsread.ShortARN(p.Target.ARN))
	ph.End(nil)
	if o.NoWait {
		res.Outcome = "updated"
		return res, nil
	}
	ph = report.Begin(o.Reporter, "rollout")
	fr, err := rollout.Follow(ctx, api, rollout.NewFollowOptions(env.Cluster, env.Service, env.Name,
		rollout.Followed{DeploymentID: p.StopDeploymentID, TaskDefinition: p.Live.ARN, ServiceDeploymentArn: p.Stop, Source: p.Target.ARN, UpdatedAt: since},
		o.pace(since)))
	switch code := exitcode.Of(err); {
	case code == exitcode.RolledBack:
		// What this command asked for.
	case err == nil:
		res.Outcome = "failed"
		return res, ph.End(exitcode.Wrap(exitcode.Failed, fmt.Errorf("deployment %s of %s completed before ECS could stop it: the service runs it; run `ctjdeploy %s rollback` again to return to %s",
			p.StopDeploymentID, ecsread.ShortARN(p.Live.ARN), env.Name, ecsread.ShortARN(p.Target.ARN))))
	default:
		res.Outcome = exitcode.Name(code)
		res.NowRunning = NowRunning(fr.Service, p, p.Target.ARN)
		if code == exitcode.NotRecovered {
			err = exitcode.Wrap(code, fmt.Errorf("ECS's rollback of deployment %s failed: %w\nwhat runs now: %s", p.StopDeploymentID, err, res.NowRunning))
		}
		return res, ph.End(err)
	}
	ph.Infof("ECS rolled deployment %s back", p.StopDeploymentID)
	ph.End(nil)
	arn := p.Target.ARN
	if d := fr.State.Replacer; d != nil && aws.ToString(d.TaskDefinition) != "" {
		arn = aws.ToString(d.TaskDefinition)
	}
	res.TaskDefinitionARN = arn
	want := map[string]string{}
	if arn == p.Target.ARN {
		want = rollout.PinnedDigests(targetDefinition(p).ContainerDefinitions)
	}
	return verify(ctx, api, env, o, fr, arn, want, res)
}

// verify checks that the running tasks of arn run the digests want pins
// (the verify phase of both ways a rollback ends) and sets res's outcome.
func verify(ctx context.Context, api rollout.ECS, env *config.Environment, o RunOptions, fr rollout.FollowResult, arn string, want map[string]string, res Result) (Result, error) {
	ph := report.Begin(o.Reporter, "verify")
	desired := int32(1)
	if fr.Service != nil {
		desired = fr.Service.DesiredCount
	}
	v, err := rollout.Verify(ctx, api, env.Cluster, env.Service, arn, want, desired)
	res.Verification = &v
	if err != nil {
		res.Outcome = "failed"
		return res, ph.End(err)
	}
	ph.Infof("%s of %s %s the digests it pins", rollout.Plural(v.Tasks, "running task"), ecsread.ShortARN(arn), rollout.Verb(v.Tasks, "runs", "run"))
	ph.End(nil)
	res.Outcome = "deployed"
	return res, nil
}

// prevSD is the service's current service deployment before the rollback's
// update ("" if unknown).
func prevSD(p *Plan) string {
	if p.ServiceState == nil {
		return ""
	}
	return aws.ToString(p.ServiceState.CurrentServiceDeployment)
}

// describe names a revision with its commit, for messages.
func describe(r inspect.Revision) string {
	s := ecsread.ShortARN(r.ARN)
	if r.Commit != "" {
		s += " (commit " + ecsread.ShortCommit(r.Commit) + ")"
	}
	return s
}

// NowRunning says what the service runs after the rollback's deployment
// failed: the PRIMARY deployment's revision and its counts, named as the
// revision rolled back from or the target. Pure.
func NowRunning(svc *ecstypes.Service, p *Plan, target string) string {
	if svc == nil {
		return fmt.Sprintf("unknown (the service could not be read); it ran %s before the rollback: check `ctjdeploy %s status`", describe(p.Live), p.Env)
	}
	arn := aws.ToString(svc.TaskDefinition)
	var running, desired int32 = svc.RunningCount, svc.DesiredCount
	for _, d := range svc.Deployments {
		if aws.ToString(d.Status) == "PRIMARY" {
			arn = aws.ToString(d.TaskDefinition)
			running, desired = d.RunningCount, d.DesiredCount
		}
	}
	what := ecsread.ShortARN(arn)
	switch arn {
	case p.Live.ARN:
		what = describe(p.Live) + ", the revision live before this rollback (ECS put it back)"
	case target:
		what += ", the rollback's target (ECS did not roll back; its tasks are failing)"
	}
	return fmt.Sprintf("%s, %d/%d tasks running; see `ctjdeploy %s status`", what, running, desired, p.Env)
}
