package rollout

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/awserr"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
)

// DefaultInterval is how often Follow polls.
const DefaultInterval = 3 * time.Second

// FollowOptions say which deployment to follow and how.
type FollowOptions struct {
	Cluster, Service string
	DeploymentID     string // the id UpdateService returned
	TaskDefinition   string // the revision that deployment runs
	// ServiceDeploymentArn is our service deployment (the service's
	// currentServiceDeployment in the UpdateService answer; "" when not
	// known: Follow then looks it up with ListServiceDeployments).
	ServiceDeploymentArn string
	// PreviousServiceDeploymentArn is the service's currentServiceDeployment
	// before the update: an answer still naming it is a stale read.
	PreviousServiceDeploymentArn string
	// Source is the revision the service ran before the update: what ECS's
	// rollback goes back to.
	Source string
	// UpdatedAt is when UpdateService returned (default: now); Grace is how
	// long after it a read that does not show our deployment is taken as a
	// lagging read (default DefaultGrace).
	UpdatedAt time.Time
	Grace     time.Duration
	// NoServiceDeploymentAPI follows the service's deployments only
	// (DescribeServices), as for an account without the service deployment
	// API.
	NoServiceDeploymentAPI bool
	Env                    string // for the hints in messages ("ctjdeploy ENV status")
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
	// Logs, when set, reads the stopped containers' last log lines on a
	// failure.
	Logs Logs
	// FailureThreshold is config failure_threshold: on a service that
	// neither a circuit breaker nor deployment alarms watch, once this many
	// tasks of our deployment failed, Follow stops it and follows the
	// rollback (threshold.go). 0: never.
	FailureThreshold int
}

// Followed names the deployment to follow (the FollowOptions fields of the
// same names).
type Followed struct {
	DeploymentID, TaskDefinition                       string
	ServiceDeploymentArn, PreviousServiceDeploymentArn string
	Source                                             string
	UpdatedAt                                          time.Time
}

// Pace is how Follow polls and whom it tells (the FollowOptions fields of
// the same names).
type Pace struct {
	Interval, Timeout time.Duration
	Since             time.Time
	Reporter          report.Reporter
	Sleep             func(ctx context.Context, d time.Duration) error
}

// NewFollowOptions is the one way the commands build FollowOptions: the
// service (env names it in hints), the deployment and the pace. Options the
// commands set only sometimes (Logs, FailureThreshold) are set on the
// result.
func NewFollowOptions(cluster, service, env string, d Followed, p Pace) FollowOptions {
	return FollowOptions{Cluster: cluster, Service: service, Env: env,
		DeploymentID: d.DeploymentID, TaskDefinition: d.TaskDefinition,
		ServiceDeploymentArn: d.ServiceDeploymentArn, PreviousServiceDeploymentArn: d.PreviousServiceDeploymentArn,
		Source: d.Source, UpdatedAt: d.UpdatedAt,
		Interval: p.Interval, Timeout: p.Timeout, Since: p.Since, Reporter: p.Reporter, Sleep: p.Sleep}
}

// FollowResult is how the followed deployment ended.
type FollowResult struct {
	State   State
	Polls   int
	Service *ecstypes.Service // the last DescribeServices answer
	// ServiceDeployment is the last record of ours (nil when the service
	// deployment API was not used).
	ServiceDeployment *ecstypes.ServiceDeployment
	// Retries counts polling calls that failed transiently (throttling,
	// 5xx, timeouts) and were retried.
	Retries int
	// Stopped are the deployment's stopped tasks, read when it failed.
	Stopped []StoppedTask
	// FailedAt is when Follow first saw the failure (for the benchmark).
	FailedAt time.Time
	// Acted is what Follow did at FailureThreshold ("stop":
	// StopServiceDeployment, "update": UpdateService back; "" nothing);
	// ThresholdAt is when a poll showed the threshold reached, ActedAt when
	// the call that ended the deployment returned.
	Acted                string
	ThresholdAt, ActedAt time.Time
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
	// Logs are the container's last lines (CloudWatch Logs, masked), for
	// essential containers logging with awslogs.
	Logs      []string `json:"logs,omitempty"`
	LogGroup  string   `json:"logGroup,omitempty"`
	LogStream string   `json:"logStream,omitempty"`
	// LogNote says why no lines could be read.
	LogNote string `json:"logNote,omitempty"`
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
	id := ecsread.ID(t.TaskArn)
	out := fmt.Sprintf("task %s stopped: %s", id, t.Reason)
	if len(parts) > 0 {
		out += "; " + strings.Join(parts, ", ")
	}
	return out
}

// maxStopped is how many stopped tasks a failure report describes.
const maxStopped = 5

// Follow follows deployment opts.DeploymentID to its end. Where the account
// has the service deployment API it polls DescribeServiceDeployments for our
// record (and DescribeServices for events and counts); where it has not
// (access denied, or no record of ours within the grace period) it decides
// from DescribeServices alone (evaluate). It returns nil when the
// deployment completed; exit 3 once ECS rolled it back and that rollback
// completed; exit 6 when it failed and the service is not back on a working
// revision; exit 1 when another deployment replaced it (named); exit 4 when
// the timeout passes (it may still finish). Throttling, 5xx answers and
// timeouts of the polling calls are retried with backoff until the
// deadline. Each new service event is reported once (phase "rollout", Line
// events), the deployment's counts as a Progress event whenever they
// change, and each change of the record's status or lifecycle stage as an
// Info line.
//
// It is a poll loop: each poll (follower.poll) is handed to the observer
// (events, notes, progress) and to the decider (decide, pure; then the
// FailureThreshold action, follower.act); the pacer keeps the interval,
// the retry backoff and the deadline.
func Follow(ctx context.Context, api ECS, o FollowOptions) (FollowResult, error) {
	o = o.withDefaults()
	ph := report.For(o.Reporter, "rollout")
	f := &follower{api: api, o: o, ph: ph, useAPI: !o.NoServiceDeploymentAPI, sdArn: o.ServiceDeploymentArn}
	if f.sdArn != "" && f.sdArn == o.PreviousServiceDeploymentArn {
		f.sdArn = "" // the answer still named the deployment before ours
	}
	w := newObserver(ph, o)
	pace := newPacer(o)
	var res FollowResult
	for {
		p, err := f.poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return res, interrupted(o, w.note)
			}
			if !awserr.IsTransient(err) {
				return res, err
			}
			res.Retries++
			wait := pace.backoff()
			ph.Infof("ECS answered a transient error, retrying in %s: %v", wait.Round(100*time.Millisecond), err)
			if err := pace.sleep(ctx, wait); err != nil {
				return res, pace.stopped(err, o, res.State, w.note)
			}
			continue
		}
		pace.reset()
		res.Polls++
		res.Service = p.svc
		if p.sd != nil {
			res.ServiceDeployment = p.sd
		}
		w.events(p.svc)
		st, err := f.decide(ctx, p, &res)
		res.State = st
		if err != nil {
			return res, err
		}
		w.state(st)
		if st.Phase.Terminal() {
			return res, f.end(ctx, st, w.all, &res)
		}
		if err := pace.sleep(ctx, pace.next()); err != nil {
			return res, pace.stopped(err, o, res.State, w.note)
		}
	}
}

// withDefaults fills in the options' defaults.
func (o FollowOptions) withDefaults() FollowOptions {
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
	if o.UpdatedAt.IsZero() {
		o.UpdatedAt = time.Now()
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.Env == "" {
		o.Env = "ENV"
	}
	return o
}

// polled is one poll's answers.
type polled struct {
	svc *ecstypes.Service
	sd  *ecstypes.ServiceDeployment // our record (nil: the API is not used, or lists none yet)
	// newer is the service deployment created after a STOPPED record of
	// ours (newerKnown: the list could be read).
	newer      *ecstypes.ServiceDeploymentBrief
	newerKnown bool
	// useRecord says the record decides (the API is on and listed ours).
	useRecord bool
}

// decision is what decide judges one poll by.
type decision struct {
	obs       Observation
	p         polled
	act       *thresholdAct // what ctjdeploy did at FailureThreshold (nil: nothing)
	threshold int
}

// decide is the verdict on one poll. Pure. Our service deployment record
// decides where there is one (a STOPPED record with the deployment created
// after it: replaced, or failed without rollback); else the service's
// deployments (evaluate). Once ctjdeploy acted at FailureThreshold,
// afterAct says what became of that.
func decide(d decision) State {
	var st State
	switch sd := d.p.sd; {
	case d.act != nil && d.act.how == ThresholdUpdate:
		// Our own UpdateService back: afterAct follows its deployment.
	case sd != nil && sd.Status == ecstypes.ServiceDeploymentStatusStopped && d.p.newerKnown:
		st = DecideServiceDeployment(sd, d.p.newer, d.obs)
	case sd != nil && sd.Status != ecstypes.ServiceDeploymentStatusStopped:
		st = DecideServiceDeployment(sd, nil, d.obs)
	default:
		st = evaluate(d.obs)
	}
	if d.act != nil {
		st = afterAct(st, d.obs, *d.act, d.threshold, d.p.useRecord)
	}
	return st
}

// decide judges poll p (decide), and when the deployment reached
// FailureThreshold with nothing done yet, ends it (endFailing) and judges
// again. It records what it learnt across polls (our deployment seen, the
// action's deployment seen).
func (f *follower) decide(ctx context.Context, p polled, res *FollowResult) (State, error) {
	o := f.o
	obs := Observation{ID: o.DeploymentID, TaskDefinition: o.TaskDefinition, Source: o.Source,
		UpdatedAt: o.UpdatedAt, Now: time.Now(), Grace: o.Grace, Seen: f.seenOurs, Svc: *p.svc}
	for _, d := range p.svc.Deployments {
		id := aws.ToString(d.Id)
		f.seenOurs = f.seenOurs || id == o.DeploymentID
		if f.act != nil {
			f.act.seen = f.act.seen || (f.act.id != "" && id == f.act.id)
		}
	}
	st := decide(decision{obs: obs, p: p, act: f.act, threshold: o.FailureThreshold})
	if f.act != nil {
		return st, nil
	}
	v := DecideThreshold(f.thresholdObs(st, p.svc, p.sd))
	switch {
	case v.Action != ThresholdNone:
		res.ThresholdAt = time.Now()
		if err := f.endFailing(ctx, v); err != nil {
			return st, err
		}
		if f.act != nil { // nil: a transient error, the next poll tries again
			res.Acted, res.ActedAt = string(f.act.how), time.Now()
			st = afterAct(st, obs, *f.act, o.FailureThreshold, p.useRecord)
		}
	case v.Reason != "" && !f.warned:
		f.warned = true
		f.ph.Warnf("deployment %s: %s", o.DeploymentID, v.Reason)
	}
	return st, nil
}

// end is what a terminal state returns: nil when the deployment completed;
// for a failure, the stopped tasks and their logs are read into res.
func (f *follower) end(ctx context.Context, st State, events []ecstypes.ServiceEvent, res *FollowResult) error {
	o := f.o
	switch st.Phase {
	case Replaced:
		return exitcode.Wrap(exitcode.Failed, fmt.Errorf("%s; %s; see `ctjdeploy %s status`", st.Reason, registeredBy(ctx, f.api, st.Replacer), o.Env))
	case RolledBack, NotRecovered:
		res.FailedAt = time.Now()
		res.Stopped = stoppedTasks(ctx, f.api, o)
		addLogs(ctx, f.api, o.Logs, o.TaskDefinition, res.Stopped)
		return failure(o, st, events, res.Stopped)
	}
	return nil
}

// follower holds what Follow learnt across polls: about the service
// deployment API, our deployment, and what it did at FailureThreshold.
type follower struct {
	api      ECS
	o        FollowOptions
	ph       *report.Phase
	useAPI   bool
	sdArn    string
	missing  time.Time     // when our record was first found missing
	status   string        // the record's last status and stage, for change lines
	seenOurs bool          // a poll listed our deployment
	act      *thresholdAct // what Follow did at FailureThreshold (nil: nothing yet)
	warned   bool          // the threshold was reached but nothing could be done: said once
}

// thresholdObs gathers DecideThreshold's inputs from one poll: our
// deployment's failedTasks (or the record's failure count when higher),
// the deployment configuration in force (the record's, else the
// service's), and whether the stop API can be used.
func (f *follower) thresholdObs(st State, svc *ecstypes.Service, sd *ecstypes.ServiceDeployment) ThresholdObs {
	o := ThresholdObs{Threshold: f.o.FailureThreshold, Config: svc.DeploymentConfiguration, Phase: st.Phase, RollingBack: st.RollingBack,
		CanStop: f.useAPI && sd != nil && f.sdArn != "", Source: f.o.Source}
	if st.Ours != nil {
		o.Failed = st.Ours.FailedTasks
	}
	if sd != nil {
		if sd.DeploymentConfiguration != nil {
			o.Config = sd.DeploymentConfiguration
		}
		if cb := sd.DeploymentCircuitBreaker; cb != nil && cb.FailureCount > o.Failed {
			o.Failed = cb.FailureCount
		}
	}
	return o
}

// endFailing carries out v: StopServiceDeployment(ROLLBACK) on our record,
// or UpdateService back to the revision live before. A denied or unknown
// stop falls back to the update; a stop ECS refuses because the deployment
// already ended (ConflictException) leaves ECS's verdict to tell. A
// transient error (throttling, 5xx, timeout) leaves f.act nil: the next
// poll decides again (a stop that did land shows as ROLLBACK_REQUESTED, and
// stopping a deployment in that state only continues its rollback). Any
// other failure ends the follow with exit 6: the service still runs the
// failing revision.
func (f *follower) endFailing(ctx context.Context, v ThresholdVerdict) error {
	o := f.o
	a := &thresholdAct{how: v.Action, why: v.Reason, target: o.Source, at: time.Now()}
	notRecovered := func(what string, err error) error {
		return exitcode.Wrap(exitcode.NotRecovered, fmt.Errorf("deployment %s of %s to service %s failed: %s; %s failed: %w\nthe service is NOT back on a working revision: act now (`ctjdeploy %s rollback`, or fix forward); check `ctjdeploy %s status`",
			o.DeploymentID, ecsread.ShortARN(o.TaskDefinition), o.Service, v.Reason, what, err, o.Env, o.Env))
	}
	if a.how == ThresholdStop {
		f.ph.Warnf("deployment %s: %s: stopping it (StopServiceDeployment %s, stopType ROLLBACK)", o.DeploymentID, v.Reason, ecsread.ID(f.sdArn))
		err := StopRollback(ctx, f.api, f.sdArn)
		if err == nil {
			f.act = a
			return nil
		}
		code := awserr.Code(err)
		switch {
		case code == "ConflictException":
			// "Stopping Amazon ECS service deployments": only a PENDING,
			// IN_PROGRESS or stopping deployment can be stopped; it ended
			// meanwhile, and ECS's record says how.
			f.ph.Warnf("ECS did not stop deployment %s: it has ended meanwhile (%s)", o.DeploymentID, awserr.Message(err))
			f.act = &thresholdAct{how: ThresholdNone}
			return nil
		case awserr.IsUnavailable(err):
			if o.Source == "" {
				return notRecovered("stopping it (ecs:StopServiceDeployment)", awserr.Wrap("service deployment "+f.sdArn, err))
			}
			f.ph.Warnf("ECS refused StopServiceDeployment (%s); updating service %s back to %s instead", code, o.Service, ecsread.ShortARN(o.Source))
			a.how = ThresholdUpdate
		default:
			if awserr.IsTransient(err) {
				f.ph.Warnf("stopping deployment %s: %v; trying again at the next poll", o.DeploymentID, err)
				return nil
			}
			return notRecovered("stopping it (ecs:StopServiceDeployment "+f.sdArn+")", err)
		}
	}
	f.ph.Warnf("deployment %s: %s: updating service %s back to %s (UpdateService)", o.DeploymentID, v.Reason, o.Service, ecsread.ShortARN(o.Source))
	a.at = time.Now()
	id, _, err := Update(ctx, f.api, o.Cluster, o.Service, o.Source, false)
	if err != nil {
		return notRecovered("updating the service back", err)
	}
	a.id = id
	f.act = a
	return nil
}

// poll reads the service, our service deployment record where the API is
// used, and for a STOPPED record the deployment created after it. A record ECS does not list within the grace period, or an
// access-denied answer, turns the API off for the rest of the follow.
func (f *follower) poll(ctx context.Context) (polled, error) {
	svc, sd, err := f.read(ctx)
	if err != nil {
		return polled{}, err
	}
	p := polled{svc: svc, sd: sd}
	if sd != nil && sd.Status == ecstypes.ServiceDeploymentStatusStopped && (f.act == nil || f.act.how != ThresholdUpdate) {
		// STOPPED: replaced, or failed without rollback. A newer service
		// deployment tells; when the list cannot be read, the service's
		// deployments tell instead.
		newer, err := f.newer(ctx, sd)
		if err == nil {
			p.newer, p.newerKnown = newer, true
		} else {
			_ = f.apiError(err) // a denial is named in a warning (the API is off from now on)
		}
	}
	p.useRecord = f.useAPI && sd != nil
	return p, nil
}

// read reads the service, and our service deployment record where the API
// is used.
func (f *follower) read(ctx context.Context) (*ecstypes.Service, *ecstypes.ServiceDeployment, error) {
	svc, err := ecsread.DescribeService(ctx, f.api, f.o.Cluster, f.o.Service)
	if err != nil {
		return nil, nil, err
	}
	if !f.useAPI {
		return svc, nil, nil
	}
	if f.sdArn == "" {
		if c := aws.ToString(svc.CurrentServiceDeployment); c != "" && c != f.o.PreviousServiceDeploymentArn && primaryIs(svc, f.o.DeploymentID) {
			f.sdArn = c
		} else if arn, err := f.find(ctx); err != nil {
			if err := f.apiError(err); err != nil {
				return nil, nil, err
			}
			return svc, nil, nil // the API is off from now on
		} else {
			f.sdArn = arn
		}
	}
	var sd *ecstypes.ServiceDeployment
	if f.sdArn != "" {
		var err error
		sd, err = ecsread.DescribeServiceDeployment(ctx, f.api, f.sdArn)
		if err != nil {
			if err := f.apiError(err); err != nil {
				return nil, nil, err
			}
			return svc, nil, nil
		}
	}
	if !f.useAPI {
		return svc, nil, nil
	}
	if sd == nil {
		if f.missing.IsZero() {
			f.missing = time.Now()
		}
		if time.Since(f.o.UpdatedAt) >= f.o.Grace {
			f.useAPI = false
			f.ph.Warnf("ECS lists no service deployment of ours %s after the update; following the service's deployments instead", f.o.Grace)
		}
		return svc, nil, nil
	}
	if s := string(sd.Status) + " " + string(sd.LifecycleStage); s != f.status {
		f.status = s
		line := "service deployment " + ecsread.ID(f.sdArn) + ": " + string(sd.Status)
		if sd.LifecycleStage != "" {
			line += ", lifecycle stage " + string(sd.LifecycleStage)
		}
		if r := aws.ToString(sd.StatusReason); r != "" {
			line += ": " + r
		}
		f.ph.Infof("%s", line)
	}
	return svc, sd, nil
}

// primaryIs says the service's PRIMARY deployment is ours: its
// currentServiceDeployment then names our record.
func primaryIs(svc *ecstypes.Service, id string) bool {
	for _, d := range svc.Deployments {
		if aws.ToString(d.Status) == statusPrimary {
			return aws.ToString(d.Id) == id
		}
	}
	return false
}

// find looks our record up: the newest service deployment of the service
// created since the update (ListServiceDeployments, createdAt after).
func (f *follower) find(ctx context.Context) (string, error) {
	list, err := ecsread.ServiceDeploymentsSince(ctx, f.api, f.o.Cluster, f.o.Service, f.o.UpdatedAt.Add(-5*time.Second))
	if err != nil {
		return "", err
	}
	var best *ecstypes.ServiceDeploymentBrief
	for i := range list {
		b := &list[i]
		if aws.ToString(b.ServiceDeploymentArn) == f.o.PreviousServiceDeploymentArn {
			continue
		}
		if best == nil || aws.ToTime(b.CreatedAt).Before(aws.ToTime(best.CreatedAt)) {
			best = b // the first one created after our update is ours
		}
	}
	if best == nil {
		return "", nil
	}
	return aws.ToString(best.ServiceDeploymentArn), nil
}

// newer is the newest service deployment of the service created after sd
// (nil if none).
func (f *follower) newer(ctx context.Context, sd *ecstypes.ServiceDeployment) (*ecstypes.ServiceDeploymentBrief, error) {
	after := aws.ToTime(sd.CreatedAt)
	list, err := ecsread.ServiceDeploymentsSince(ctx, f.api, f.o.Cluster, f.o.Service, after)
	if err != nil {
		return nil, err
	}
	var best *ecstypes.ServiceDeploymentBrief
	for i := range list {
		b := &list[i]
		if aws.ToString(b.ServiceDeploymentArn) == aws.ToString(sd.ServiceDeploymentArn) || !aws.ToTime(b.CreatedAt).After(after) {
			continue
		}
		if best == nil || aws.ToTime(b.CreatedAt).After(aws.ToTime(best.CreatedAt)) {
			best = b
		}
	}
	return best, nil
}

// apiError turns the service deployment API off on access denied (an
// account or role without it) and passes other errors on.
func (f *follower) apiError(err error) error {
	if awserr.IsUnavailable(err) {
		f.useAPI = false
		f.ph.Warnf("the service deployment API is not available (%s: %s); following the service's deployments instead: grant ecs:ListServiceDeployments and ecs:DescribeServiceDeployments (`ctjdeploy %s iam-policy`)", awserr.Code(err), awserr.Message(err), f.o.Env)
		return nil
	}
	return awserr.Wrap("reading the service deployments of service "+f.o.Service, err)
}

// registeredBy names whether ctjdeploy registered the replacing revision
// (its ctjdeploy:commit tag), best effort.
func registeredBy(ctx context.Context, api ECS, d *ecstypes.Deployment) string {
	if d == nil || aws.ToString(d.TaskDefinition) == "" {
		return "the replacing revision is unknown"
	}
	arn := aws.ToString(d.TaskDefinition)
	_, tags, err := ecsread.DescribeTaskDefinition(ctx, api, arn)
	if err != nil {
		return ecsread.ShortARN(arn) + ": could not read its tags"
	}
	if c, ok := ecsread.TagMap(tags)[ecsread.TagCommit]; ok {
		return fmt.Sprintf("%s was registered by ctjdeploy from commit %s", ecsread.ShortARN(arn), ecsread.ShortCommit(c))
	}
	return ecsread.ShortARN(arn) + " was not registered by ctjdeploy (no " + ecsread.TagCommit + " tag)"
}

func interrupted(o FollowOptions, note string) error {
	err := fmt.Errorf("stopped following deployment %s of service %s; it goes on in ECS without us%s: check it with `ctjdeploy %s status`", o.DeploymentID, o.Service, suffix(" (last seen: ", note)+closeParen(note), o.Env)
	return err
}

func closeParen(note string) string {
	if note == "" {
		return ""
	}
	return ")"
}

func timedOut(o FollowOptions, st State, note string) error {
	counts := ""
	if d := st.Ours; d != nil {
		counts = fmt.Sprintf(" (%d/%d running, %d pending, %d failed)", d.RunningCount, d.DesiredCount, d.PendingCount, d.FailedTasks)
	}
	doing := ""
	if note != "" {
		doing = "; ECS is still at: " + note
	}
	return exitcode.Wrap(exitcode.TimedOut, fmt.Errorf(
		"timed out after %s waiting for deployment %s of service %s to %s%s%s; it may still finish: check with `ctjdeploy %s status`, or wait longer with --timeout",
		o.Timeout, o.DeploymentID, o.Service, ecsread.ShortARN(o.TaskDefinition), counts, doing, o.Env))
}

// maxFailureEvents is how many of the deployment's last events a failure
// report repeats.
const maxFailureEvents = 5

func failure(o FollowOptions, st State, events []ecstypes.ServiceEvent, stopped []StoppedTask) error {
	var b strings.Builder
	fmt.Fprintf(&b, "deployment %s of %s to service %s failed: %s", o.DeploymentID, ecsread.ShortARN(o.TaskDefinition), o.Service, st.Reason)
	code := exitcode.RolledBack
	if st.Phase == NotRecovered {
		code = exitcode.NotRecovered
		b.WriteString("\nthe service is NOT back on a working revision: act now (fix forward with a new commit, or `ctjdeploy " + o.Env + " rollback`); check `ctjdeploy " + o.Env + " status`")
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
		shown := false
		for _, t := range stopped {
			if shown {
				break // one task's lines tell; the JSON document has more
			}
			for _, c := range t.Containers {
				shown = shown || len(c.Logs) > 0
				switch {
				case len(c.Logs) > 0:
					fmt.Fprintf(&b, "\nlast %s of %s in task %s (%s %s):", plural(len(c.Logs), "log line"), c.Name, ecsread.ID(t.TaskArn), c.LogGroup, c.LogStream)
					for _, l := range c.Logs {
						b.WriteString("\n  | " + l)
					}
				case c.LogNote != "":
					fmt.Fprintf(&b, "\nno log lines of %s in task %s: %s", c.Name, ecsread.ID(t.TaskArn), c.LogNote)
				}
			}
		}
	}
	return exitcode.Wrap(code, fmt.Errorf("%s", b.String()))
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
	}
	// The tasks that failed tell why, not the ones a rollback stopped
	// (ServiceSchedulerInitiated): those first, in ListTasks's order.
	sort.SliceStable(out, func(i, j int) bool { return failedTask(out[i]) && !failedTask(out[j]) })
	if len(out) > maxStopped {
		out = out[:maxStopped]
	}
	return out
}

// failedTask says t failed on its own: a container exited non-zero, or the
// task could not start.
func failedTask(t StoppedTask) bool {
	if t.StopCode == string(ecstypes.TaskStopCodeTaskFailedToStart) {
		return true
	}
	for _, c := range t.Containers {
		if c.ExitCode != nil && *c.ExitCode != 0 {
			return true
		}
	}
	return false
}
