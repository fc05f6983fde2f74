package rollout

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/awserr"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
)

// Live is the service and the revision it runs now.
type Live struct {
	Cluster, Service string
	Svc              *ecstypes.Service
	// TaskDefinition is the live revision (nil if the service names none).
	TaskDefinition *ecstypes.TaskDefinition
	Tags           map[string]string // the live revision's tags
}

// ARN is the live revision's ARN.
func (l *Live) ARN() string {
	if l == nil || l.Svc == nil {
		return ""
	}
	return aws.ToString(l.Svc.TaskDefinition)
}

// Commit is the live revision's ctjdeploy:commit tag ("" if none).
func (l *Live) Commit() string {
	if l == nil {
		return ""
	}
	return l.Tags[ecsread.TagCommit]
}

// ReadLive reads the service (DescribeServices) and its live revision with
// its tags (DescribeTaskDefinition): two calls. A missing or inactive service
// is an invalid-input error naming it.
func ReadLive(ctx context.Context, api ECS, cluster, service string) (*Live, error) {
	svc, err := ecsread.DescribeService(ctx, api, cluster, service)
	if err != nil {
		return nil, err
	}
	l := &Live{Cluster: cluster, Service: service, Svc: svc, Tags: map[string]string{}}
	arn := aws.ToString(svc.TaskDefinition)
	if arn == "" {
		return l, nil
	}
	td, tags, err := ecsread.DescribeTaskDefinition(ctx, api, arn)
	if err != nil {
		return nil, err
	}
	l.TaskDefinition, l.Tags = td, ecsread.TagMap(tags)
	return l, nil
}

// RegisterTags are the tags Register puts on a new revision.
type RegisterTags struct {
	Commit   string // ctjdeploy:commit
	Env      string // ctjdeploy:env
	Previous string // ctjdeploy:previous: the ARN live before (may be "")
	// Run is ctjdeploy:run, one registration's id ("": Register makes one):
	// how a retry recognises a revision its failed call registered.
	Run string
}

// List is the tags as RegisterTaskDefinition takes them, sorted by key;
// empty values are left out.
func (t RegisterTags) List() []ecstypes.Tag {
	m := map[string]string{ecsread.TagCommit: t.Commit, ecsread.TagEnv: t.Env, ecsread.TagPrevious: t.Previous, ecsread.TagRun: t.Run}
	var out []ecstypes.Tag
	for k, v := range m {
		if v != "" {
			out = append(out, ecstypes.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return *out[i].Key < *out[j].Key })
	return out
}

// Register registers td (a copy, with tags merged in) and returns the new
// revision's ARN.
//
// RegisterTaskDefinition takes no client token (ECS API Reference,
// "RegisterTaskDefinition": no clientToken parameter, unlike UpdateService
// and CreateService), so a call that timed out or failed with a 5xx may
// have registered the revision all the same, and a blind retry (the SDK's
// retryer) would register a second one. Register therefore calls it with
// the SDK's retries off, tags each registration with a run id
// (ctjdeploy:run), and before each retry of a failure that may have been
// applied, reads the family's latest revision: when it carries this run's
// id, that is the revision, adopted instead of registered again.
func Register(ctx context.Context, api ECS, td *ecs.RegisterTaskDefinitionInput, tags RegisterTags) (string, error) {
	in := *td
	keep := map[string]bool{ecsread.TagCommit: true, ecsread.TagEnv: true, ecsread.TagPrevious: true, ecsread.TagRun: true}
	in.Tags = nil
	for _, t := range td.Tags {
		if !keep[aws.ToString(t.Key)] {
			in.Tags = append(in.Tags, t)
		}
	}
	if tags.Run == "" {
		tags.Run = NewRunID()
	}
	in.Tags = append(in.Tags, tags.List()...)
	family := aws.ToString(td.Family)
	what := "registering task definition family " + family + " (ecs:RegisterTaskDefinition)"
	wait := RegisterBackoff
	for attempt := 1; ; attempt++ {
		out, err := api.RegisterTaskDefinition(ctx, &in, func(o *ecs.Options) { o.RetryMaxAttempts = 1 })
		if err == nil {
			if out.TaskDefinition == nil || out.TaskDefinition.TaskDefinitionArn == nil {
				return "", fmt.Errorf("registering task definition family %s: ECS returned no ARN", family)
			}
			return aws.ToString(out.TaskDefinition.TaskDefinitionArn), nil
		}
		if !awserr.IsTransient(err) || ctx.Err() != nil || attempt >= RegisterAttempts {
			if attempt > 1 {
				what += fmt.Sprintf(", %d attempts", attempt)
			}
			return "", awserr.Wrap(what, err)
		}
		if serr := sleepCtx(ctx, jittered(wait, 0.2)); serr != nil {
			return "", awserr.Wrap(what, err)
		}
		wait = min(2*wait, 5*time.Second)
		if arn := registeredByRun(ctx, api, family, tags.Run); arn != "" {
			return arn, nil // the failed call had registered it
		}
	}
}

// RegisterAttempts and RegisterBackoff bound Register's own retries (the
// SDK's are off for that call: see Register).
var (
	RegisterAttempts = 6
	RegisterBackoff  = 500 * time.Millisecond
)

// registeredByRun is the ARN of the family's latest revision when it carries
// run's id, else "" (not there, or not readable: retrying the register is
// then the only way on).
func registeredByRun(ctx context.Context, api ECS, family, run string) string {
	out, err := api.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(family),
		Include: []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags}})
	if err != nil || out.TaskDefinition == nil {
		return ""
	}
	for _, t := range out.Tags {
		if aws.ToString(t.Key) == ecsread.TagRun && aws.ToString(t.Value) == run {
			return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
		}
	}
	return ""
}

// NewRunID is a random id of one run (12 hex digits): the deploy lock's
// holder and a registration's ctjdeploy:run tag.
func NewRunID() string {
	b := make([]byte, 6)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}

// Update points the service at taskDef (UpdateService, one call) and returns
// the id of the deployment this update started: the PRIMARY deployment of
// the answer running taskDef. force asks ECS for a new deployment even when
// the service already runs taskDef.
func Update(ctx context.Context, api ECS, cluster, service, taskDef string, force bool) (string, *ecstypes.Service, error) {
	out, err := api.UpdateService(ctx, &ecs.UpdateServiceInput{
		Cluster:            aws.String(cluster),
		Service:            aws.String(service),
		TaskDefinition:     aws.String(taskDef),
		ForceNewDeployment: force,
	})
	if err != nil {
		return "", nil, awserr.Wrap(fmt.Sprintf("updating service %s in cluster %s to %s (ecs:UpdateService)", service, cluster, ecsread.ShortARN(taskDef)), err)
	}
	if out.Service == nil {
		return "", nil, fmt.Errorf("updating service %s: ECS returned no service", service)
	}
	if id := primaryOf(out.Service, taskDef); id != "" {
		return id, out.Service, nil
	}
	// The answer does not list the deployment yet: reads are eventually
	// consistent (the ECS API reference's note on it), so look again for a
	// while before calling it a failure.
	svc := out.Service
	for wait, waited := 100*time.Millisecond, time.Duration(0); waited < DefaultGrace; wait = min(2*wait, 2*time.Second) {
		if err := sleepCtx(ctx, wait); err != nil {
			break
		}
		waited += wait
		s, err := ecsread.DescribeService(ctx, api, cluster, service)
		if err != nil {
			if awserr.IsTransient(err) {
				continue
			}
			return "", svc, err
		}
		svc = s
		if id := primaryOf(s, taskDef); id != "" {
			return id, s, nil
		}
	}
	return "", svc, fmt.Errorf("updated service %s to %s, but for %s ECS listed no PRIMARY deployment of that revision, so there is nothing to follow; check `ctjdeploy ENV status`", service, ecsread.ShortARN(taskDef), DefaultGrace)
}

// primaryOf is the id of svc's PRIMARY deployment when it runs taskDef.
func primaryOf(svc *ecstypes.Service, taskDef string) string {
	for _, d := range svc.Deployments {
		if aws.ToString(d.Status) == statusPrimary && aws.ToString(d.TaskDefinition) == taskDef {
			return aws.ToString(d.Id)
		}
	}
	return ""
}

// SourceRevision is the revision the service's PRIMARY deployment replaces:
// that of the newest ACTIVE deployment running another revision ("" if
// none). It is what an in-flight deployment's rollback goes back to.
func SourceRevision(svc *ecstypes.Service) string {
	prim := ""
	for _, d := range svc.Deployments {
		if aws.ToString(d.Status) == statusPrimary {
			prim = aws.ToString(d.TaskDefinition)
		}
	}
	for _, d := range svc.Deployments {
		if td := aws.ToString(d.TaskDefinition); aws.ToString(d.Status) == statusActive && td != prim {
			return td
		}
	}
	return ""
}
