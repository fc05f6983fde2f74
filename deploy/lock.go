package deploy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/deploy/rollout"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/lease"
)

// SSM is the part of the SSM API the deploy lock calls (internal/lease).
type SSM = lease.SSM

// LockTTL is how long a deploy lock holds unrenewed by default (config
// lock.ttl): an older one was left by a run that died (killed, a lost
// runner) and is taken over with a warning.
const LockTTL = config.DefaultLockTTL

// LockName is the SSM parameter that is the deploy lock of a service by
// default (config lock: names another).
func LockName(cluster, service string) string {
	return config.DefaultLockParameter(cluster, service)
}

// LockHolder says who holds the deploy lock.
type LockHolder = lease.Holder

// lockNow is the clock of the lock (tests).
var lockNow = time.Now

// takeLock takes the deploy lock (internal/lease: a lease that never has
// two holders, renewed while this run lives) before the first write (push,
// register, update). The returned release releases it (if it is still this
// run's) on every path; call it once. Without Deps.SSM, or with lock:
// false, there is no lock. sameService checks, right before the register
// and the update, that the lease still holds.
func (r *run) takeLock(ctx context.Context) (release func(), err error) {
	env := r.o.Env
	release = func() {}
	name := env.LockParameter()
	if r.d.SSM == nil || name == "" {
		return release, nil
	}
	l, err := lease.Acquire(ctx, r.d.SSM, lease.Options{Name: name, Region: env.Region, Env: env.Name, TTL: env.LockTTL(), Force: r.o.ForceUnlock,
		Holder:   lease.Holder{Run: rollout.NewRunID(), Command: "deploy", Tag: r.o.Tag, Env: env.Name, Started: lockNow().UTC()},
		Reporter: r.rep, Now: func() time.Time { return lockNow() }})
	if err != nil {
		return release, err
	}
	r.lease, r.res.Lock = l, name
	return func() { r.res.LockReleased = l.Release() }, nil
}

// sameService refuses (exit 5) when this run's deploy lock was lost, and
// re-reads the service and refuses (exit 5) when its revision
// or its primary deployment changed since the plan read it: another deploy
// (or terraform apply) ran in between, and this run's guards judged a state
// that is gone. It runs right before the register and again right before
// the update (registered: the revision this run registered, then unused).
func (r *run) sameService(ctx context.Context, registered string) error {
	env, was := r.o.Env, r.live
	if err := r.lease.Err(); err != nil {
		// Another run may hold the deploy lock now: stop before this write.
		if registered != "" {
			return fmt.Errorf("%w; revision %s, registered by this run, is unused and the service was not changed by this run", err, shortARN(registered))
		}
		return fmt.Errorf("%w; nothing was registered and the service was not changed by this run", err)
	}
	if was == nil || was.Svc == nil {
		return nil
	}
	svc, err := ecsread.DescribeService(ctx, r.d.ECS, env.Cluster, env.Service)
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
