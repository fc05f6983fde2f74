package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/hackforla/ctjdeploy/deploy/rollout"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
)

// SSM is the part of the SSM API the deploy lock calls.
type SSM interface {
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, opts ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	DeleteParameter(ctx context.Context, in *ssm.DeleteParameterInput, opts ...func(*ssm.Options)) (*ssm.DeleteParameterOutput, error)
}

// LockTTL is how long a deploy lock holds by default (config lock.ttl):
// an older one was left by a run that died (killed, a lost runner) and is
// taken over with a warning.
const LockTTL = config.DefaultLockTTL

// LockName is the SSM parameter that is the deploy lock of a service by
// default (config lock: names another).
func LockName(cluster, service string) string {
	return config.DefaultLockParameter(cluster, service)
}

// LockHolder is the lock parameter's value: who holds the lock.
type LockHolder struct {
	Run     string    `json:"run"`
	Tag     string    `json:"tag"`
	Env     string    `json:"env"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// TTL is how long this holder's lock holds unreleased (its config's
	// lock.ttl): a reader judges staleness by it, not by its own setting.
	TTL string `json:"ttl,omitempty"`
}

// ttl is the holder's time to live, else def.
func (h LockHolder) ttl(def time.Duration) time.Duration {
	if d, err := time.ParseDuration(h.TTL); err == nil && d > 0 {
		return d
	}
	return def
}

func (h LockHolder) String() string {
	return fmt.Sprintf("run %s (tag %s, host %s, pid %d, started %s)", h.Run, h.Tag, h.Host, h.PID, h.Started.UTC().Format(time.RFC3339))
}

// lockNow is the clock of the lock (tests).
var lockNow = time.Now

// takeLock takes the deploy lock before the first write (push, register,
// update). The returned release deletes the lock (if it is still this
// run's) on every path; call it once. Without Deps.SSM there is no lock.
// sameService, right before the register, then checks that the service is
// still as the plan read it (a deploy that ran between this run's plan and
// its register).
//
// The lock is an SSM parameter written with PutParameter without overwrite:
// SSM refuses an existing name with ParameterAlreadyExists ("PutParameter",
// AWS Systems Manager API Reference: Overwrite "Overwrite an existing
// parameter. The default value is false"), which makes the write
// conditional.
func (r *run) takeLock(ctx context.Context) (release func(), err error) {
	env := r.o.Env
	release = func() {}
	if name := env.LockParameter(); r.d.SSM != nil && name != "" {
		me := LockHolder{Run: rollout.NewRunID(), Tag: r.o.Tag, Env: env.Name, Host: hostname(), PID: os.Getpid(), Started: lockNow().UTC(), TTL: env.LockTTL().String()}
		if err := r.acquire(ctx, name, me); err != nil {
			return release, err
		}
		r.res.Lock = name
		release = func() { r.releaseLock(name, me) }
	}
	return release, nil
}

func (r *run) acquire(ctx context.Context, name string, me LockHolder) error {
	env := r.o.Env
	val, _ := json.Marshal(me)
	put := func(overwrite bool) error {
		_, err := r.d.SSM.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(string(val)),
			Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(overwrite),
			Description: aws.String("ctjdeploy deploy lock of service " + env.Service + "; deleted at the end of the deploy")})
		return err
	}
	err := put(false)
	if err == nil {
		return nil
	}
	var exists *ssmtypes.ParameterAlreadyExists
	if !errors.As(err, &exists) {
		return fmt.Errorf("taking the deploy lock %s (ssm:PutParameter): %w; nothing was changed", name, err)
	}
	holder, age, gerr := r.readLock(ctx, name)
	if gerr != nil {
		return fmt.Errorf("the deploy lock %s is held, and reading it failed (ssm:GetParameter): %w; nothing was changed", name, gerr)
	}
	clear := fmt.Sprintf("aws ssm delete-parameter --name %s --region %s", name, env.Region)
	ttl := holder.ttl(env.LockTTL())
	switch {
	case age < ttl && !r.o.ForceUnlock:
		return exitcode.Refusedf("lock held: another deploy of %s holds the deploy lock %s: %s, %s ago; nothing was changed. "+
			"Wait for it to end; if it died, run again with --force-unlock (or clear the lock with `%s`); it expires after %s",
			env.Name, name, holder, age.Round(time.Second), clear, ttl)
	case age < ttl:
		// --force-unlock: the person says the holder is dead.
		report.For(r.rep, "lock").Warnf("--force-unlock: taking over the deploy lock %s from %s, %s ago (it would have expired after %s); if that run is still alive, both may now write", name, holder, age.Round(time.Second), ttl)
	default:
		// A stale lock: its run died without releasing it.
		report.For(r.rep, "lock").Warnf("taking over the stale deploy lock %s: %s, %s ago (older than %s)", name, holder, age.Round(time.Second), ttl)
	}
	if err := put(true); err != nil {
		return fmt.Errorf("taking over the deploy lock %s (ssm:PutParameter): %w; nothing was changed", name, err)
	}
	// Two runs taking over the same stale lock: the last write wins, and
	// the other one sees it here.
	now, _, err := r.readLock(ctx, name)
	if err != nil {
		return fmt.Errorf("reading the deploy lock %s back (ssm:GetParameter): %w; nothing was changed", name, err)
	}
	if now.Run != me.Run {
		return exitcode.Refusedf("lock held: %s took over the deploy lock %s at the same time; nothing was changed", now, name)
	}
	return nil
}

// readLock reads the lock's holder and age (from its started time, or the
// parameter's last modification when its value is not a holder).
func (r *run) readLock(ctx context.Context, name string) (LockHolder, time.Duration, error) {
	out, err := r.d.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		return LockHolder{}, 0, err
	}
	var h LockHolder
	if out.Parameter == nil {
		return h, 0, errors.New("no parameter in the answer")
	}
	started := aws.ToTime(out.Parameter.LastModifiedDate)
	if jerr := json.Unmarshal([]byte(aws.ToString(out.Parameter.Value)), &h); jerr != nil || h.Started.IsZero() {
		h = LockHolder{Run: "unknown (the parameter holds no ctjdeploy lock record)", Started: started}
	}
	return h, lockNow().Sub(h.Started), nil
}

// releaseLock deletes the lock if it is still this run's (a run that took
// over a stale lock owns it now). It runs on every path, after an interrupt
// too: with a context of its own.
func (r *run) releaseLock(name string, me LockHolder) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ph := report.For(r.rep, "lock")
	h, _, err := r.readLock(ctx, name)
	if err == nil && h.Run != me.Run {
		ph.Warnf("the deploy lock %s is now held by %s: left in place", name, h)
		return
	}
	if _, err := r.d.SSM.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(name)}); err != nil {
		var nf *ssmtypes.ParameterNotFound
		if errors.As(err, &nf) {
			return
		}
		ph.Warnf("releasing the deploy lock %s failed (ssm:DeleteParameter): %v; the next deploy will be refused until it expires (%s), or run it with --force-unlock, or clear the lock: `aws ssm delete-parameter --name %s --region %s`",
			name, err, r.o.Env.LockTTL(), name, r.o.Env.Region)
		return
	}
	r.res.LockReleased = true
}

// sameService re-reads the service and refuses (exit 5) when its revision
// or its primary deployment changed since the plan read it: another deploy
// (or terraform apply) ran in between, and this run's guards judged a state
// that is gone. It runs right before the register and again right before
// the update (registered: the revision this run registered, then unused).
func (r *run) sameService(ctx context.Context, registered string) error {
	env, was := r.o.Env, r.live
	if was == nil || was.Svc == nil {
		return nil
	}
	svc, err := rollout.DescribeService(ctx, r.d.ECS, env.Cluster, env.Service)
	if err != nil {
		if registered != "" {
			return fmt.Errorf("re-reading service %s before updating it: %w; the service was not changed, and revision %s, registered by this run, is unused", env.Service, err, shortARN(registered))
		}
		return fmt.Errorf("re-reading service %s before registering: %w; the service was not changed", env.Service, err)
	}
	var changed []string
	if a, b := aws.ToString(was.Svc.TaskDefinition), aws.ToString(svc.TaskDefinition); a != b {
		changed = append(changed, fmt.Sprintf("its revision went from %s to %s", shortARN(a), shortARN(b)))
	}
	if a, b := primaryID(was.Svc), primaryID(svc); a != b {
		changed = append(changed, fmt.Sprintf("its primary deployment went from %s to %s", a, b))
	}
	if len(changed) == 0 {
		return nil
	}
	done := "nothing was registered"
	if registered != "" {
		done = fmt.Sprintf("revision %s, registered by this run, is unused (nothing was deregistered)", shortARN(registered))
	}
	return exitcode.Refusedf("service %s changed since this run's plan read it (%s): another deploy or terraform apply ran meanwhile; %s and the service was not changed by this run. Check `ctjdeploy %s status` and deploy again",
		env.Service, strings.Join(changed, "; "), done, env.Name)
}

func primaryID(svc *ecstypes.Service) string {
	for _, d := range svc.Deployments {
		if aws.ToString(d.Status) == "PRIMARY" {
			return aws.ToString(d.Id)
		}
	}
	return "(none)"
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}
