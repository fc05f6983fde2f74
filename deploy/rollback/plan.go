// Package rollback returns an environment's service to an earlier
// revision: the one recorded as live before the current deployment, or the
// images pushed under an earlier tag. It builds and pushes nothing.
//
// MakePlan only reads (ECS, the registry, Terraform when it must render);
// a dry run prints the plan and stops. Run applies a plan: register the
// rendered revision if one is needed, then update, follow and verify
// through the deploy package, exactly as a deploy does. Nothing is ever
// deregistered.
package rollback

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/deploy/inspect"
	"github.com/hackforla/ctjdeploy/deploy/rollout"
	"github.com/hackforla/ctjdeploy/deploy/taskdef"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/safego"
	"github.com/hackforla/ctjdeploy/push"
	"github.com/hackforla/ctjdeploy/tfvars"
)

// ECS is the part of the ECS API a rollback plan reads.
type ECS interface {
	inspect.ECS
}

// Registry resolves tags already pushed (push.ECR satisfies it).
type Registry interface {
	// Resolve returns REGISTRY/REPOSITORY@sha256:... for a tag that exists;
	// a missing tag is an error wrapping push.ErrTagNotFound.
	Resolve(ctx context.Context, registry, repository, tag string) (string, error)
	// Tags lists a repository's tags.
	Tags(ctx context.Context, registry, repository string) ([]string, error)
	// HasDigest says whether the repository still holds that manifest.
	HasDigest(ctx context.Context, registry, repository, digest string) (bool, error)
}

// Deps are what MakePlan reads from.
type Deps struct {
	ECS      ECS
	Registry Registry
	// Outputs reads the Terraform outputs when a revision must be rendered;
	// nil means tfvars.Read with the environment's terraform settings.
	Outputs func(ctx context.Context) (tfvars.Outputs, error)
	// Preflight makes every read a rollback needs first (deploy/preflight):
	// an error (exit 2) lists every denied read; warnings go to Plan.Notes.
	// nil: none.
	Preflight func(ctx context.Context) (warnings []string, err error)
}

// Options are the rollback command's choices.
type Options struct {
	To       string // full tag or commit prefix (>= 7 characters); "" = the recorded previous revision
	Registry string // the environment's registry host
	Color    bool   // color the diff
}

// Plan is what a rollback will do.
type Plan struct {
	Env     string `json:"env"`
	Cluster string `json:"cluster"`
	Service string `json:"service"`
	// Live is the revision the service runs now.
	Live inspect.Revision `json:"live"`
	// Target is the revision to return to; when Register is set it is
	// the revision still to be registered (ARN empty).
	Target inspect.Revision `json:"target"`
	// Register, when not nil, is the rendered task definition to register
	// first (no ACTIVE revision runs the tag's digests).
	Register *ecs.RegisterTaskDefinitionInput `json:"-"`
	// Diff is the unified diff live → Register (masked), when registering.
	Diff string `json:"diff,omitempty"`
	// Tag is the image tag (commit) being returned to, if known.
	Tag string `json:"tag,omitempty"`
	// Images maps image name → REGISTRY/REPOSITORY@sha256:... deployed.
	Images map[string]string `json:"images"`
	// Why says how the target was chosen.
	Why string `json:"why"`
	// Unchanged: the service already runs the target; nothing to do.
	Unchanged bool     `json:"unchanged"`
	Notes     []string `json:"notes,omitempty"`
	// Verdicts are the guards' verdicts (see Guards).
	Verdicts []rollout.Verdict `json:"guards"`
	// ServiceState is the described service (for the guards).
	ServiceState *ecstypes.Service `json:"-"`
	// Stop is the in-flight service deployment the rollback stops with
	// StopServiceDeployment (stopType ROLLBACK): ECS then rolls it back to
	// its source revision itself. "" when nothing is in flight (the
	// rollback then deploys Target).
	Stop string `json:"stopServiceDeployment,omitempty"`
	// StopDeploymentID is that deployment's id in the service's deployments.
	StopDeploymentID string `json:"stopDeploymentId,omitempty"`
}

// MakePlan decides where a rollback goes. It writes nothing. Errors that
// mean "nothing to roll back to" or "those images are gone" have exit
// code 2 and list the candidates.
func MakePlan(ctx context.Context, d Deps, env *config.Environment, o Options) (*Plan, error) {
	var warnings []string
	if d.Preflight != nil {
		ws, err := d.Preflight(ctx)
		if err != nil {
			return nil, err
		}
		warnings = ws
	}
	svc, err := inspect.DescribeService(ctx, d.ECS, env)
	if err != nil {
		return nil, err
	}
	if chk := rollout.CheckService(env.Name, env.Service, svc); chk.Refusal != nil {
		return nil, chk.Refusal
	}
	live, err := inspect.DescribeRevision(ctx, d.ECS, aws.ToString(svc.TaskDefinition))
	if err != nil {
		return nil, err
	}
	live.Live = true
	p := &Plan{Env: env.Name, Cluster: env.Cluster, Service: env.Service, Live: live, ServiceState: svc, Images: map[string]string{}, Notes: warnings}
	pl := &planner{d: d, env: env, o: o, p: p}
	if o.To == "" {
		if d, arn := InFlight(svc); d != nil {
			// "Stopping Amazon ECS service deployments": ROLLBACK stops an
			// IN_PROGRESS deployment and deploys its source revision, which
			// is the revision live before it by definition.
			p.Stop, p.StopDeploymentID = arn, aws.ToString(d.Id)
			if err = pl.previous(ctx); err != nil || p.Unchanged {
				p.Unchanged = false
				if src := rollout.SourceRevision(svc); src != "" {
					if t, derr := inspect.DescribeRevision(ctx, pl.d.ECS, src); derr == nil {
						p.Target, p.Tag, err = t, t.Commit, nil
					}
				}
			}
			if err != nil {
				return nil, err
			}
			p.Why = fmt.Sprintf("deployment %s of %s is in progress: ctjdeploy asks ECS to stop it and roll it back (StopServiceDeployment, stopType ROLLBACK) to %s, the revision live before it", p.StopDeploymentID, ecsread.ShortARN(p.Live.ARN), ecsread.ShortARN(p.Target.ARN))
			p.Verdicts = Guards(env, p)
			return p, nil
		}
		err = pl.previous(ctx)
	} else {
		err = pl.toTag(ctx)
	}
	if err != nil {
		return nil, err
	}
	p.Verdicts = Guards(env, p)
	return p, nil
}

// InFlight is the service's PRIMARY deployment when it is IN_PROGRESS and
// the service names its current service deployment (the API that can stop
// it), with that service deployment's ARN; nil otherwise.
func InFlight(svc *ecstypes.Service) (*ecstypes.Deployment, string) {
	if svc == nil || aws.ToString(svc.CurrentServiceDeployment) == "" {
		return nil, ""
	}
	for i := range svc.Deployments {
		d := &svc.Deployments[i]
		if aws.ToString(d.Status) == "PRIMARY" && d.RolloutState == ecstypes.DeploymentRolloutStateInProgress {
			return d, aws.ToString(svc.CurrentServiceDeployment)
		}
	}
	return nil, ""
}

type planner struct {
	d   Deps
	env *config.Environment
	o   Options
	p   *Plan

	histOnce sync.Once
	hist     []inspect.Revision
	histErr  error
}

// history reads the family's newest revisions (only on paths that need it).
func (pl *planner) history(ctx context.Context) ([]inspect.Revision, error) {
	pl.histOnce.Do(func() {
		family, _, _ := ecsread.FamilyOf(pl.p.Live.ARN)
		arns, err := inspect.ListFamily(ctx, pl.d.ECS, family, inspect.DefaultLimit)
		if err != nil {
			pl.histErr = err
			return
		}
		pl.hist, pl.histErr = inspect.DescribeRevisions(ctx, pl.d.ECS, arns)
		pl.hist = inspect.MarkLive(pl.hist, pl.p.Live.ARN)
	})
	return pl.hist, pl.histErr
}

// previous plans the return to the revision recorded on the live one.
func (pl *planner) previous(ctx context.Context) error {
	p, live := pl.p, pl.p.Live
	if live.Previous == "" {
		why := "it was not deployed by ctjdeploy (it has no ctjdeploy:* tags; terraform apply or another tool registered it)"
		if live.ByCtjdeploy {
			why = "it was the first revision ctjdeploy deployed here, or was deployed without recording the revision live before"
		}
		return exitcode.Invalidf("nothing recorded to roll back to: the live revision %s has no %s tag: %s. %s",
			ecsread.ShortARN(live.ARN), ecsread.TagPrevious, why, pl.candidatesHint(ctx))
	}
	target, err := inspect.DescribeRevision(ctx, pl.d.ECS, live.Previous)
	if err != nil {
		return exitcode.Invalidf("the revision recorded as live before %s, %s, cannot be read: %v. %s",
			ecsread.ShortARN(live.ARN), ecsread.ShortARN(live.Previous), err, pl.candidatesHint(ctx))
	}
	if target.Status != "ACTIVE" {
		return exitcode.Invalidf("the revision recorded as live before %s, %s, is %s (deregistered): the service cannot return to it. %s",
			ecsread.ShortARN(live.ARN), ecsread.ShortARN(target.ARN), target.Status, pl.candidatesHint(ctx))
	}
	p.Target = target
	p.Tag = target.Commit
	p.Why = fmt.Sprintf("%s was live before %s (recorded in its %s tag)", ecsread.ShortARN(target.ARN), ecsread.ShortARN(live.ARN), ecsread.TagPrevious)
	for name, cs := range Containers(pl.env, target) {
		p.Images[name] = cs[0].Image
	}
	if target.ARN == live.ARN {
		p.Unchanged = true
		return nil
	}
	return pl.checkImages(ctx, target)
}

// checkImages checks that the target revision's images still exist in the
// registry: a pinned digest must still be there (a lifecycle policy may
// have expired it; its commit tag moving or going is only a note); an
// image named by a mutable tag in a repository ctjdeploy pushes to is
// refused: ECS would resolve the tag to whatever it points at now, which
// is not what ran before (`--to COMMIT` renders a revision pinned by
// digest instead).
func (pl *planner) checkImages(ctx context.Context, target inspect.Revision) error {
	var gone []string
	for name, cs := range Containers(pl.env, target) {
		c := cs[0]
		ref := inspect.ParseImage(c.Image)
		reg := ref.Registry
		if reg == "" {
			reg = pl.o.Registry
		}
		if c.Digest == "" && ref.Tag != "" {
			return exitcode.Invalidf("the revision to roll back to, %s, names %s's image %s by the mutable tag %q, in a repository ctjdeploy pushes to: ECS would run whatever that tag points at now, not what ran before. Roll back with `--to COMMIT` (a commit tag: ctjdeploy then pins its digests). %s",
				ecsread.ShortARN(target.ARN), name, c.Image, ref.Tag, pl.candidatesHint(ctx))
		}
		if c.Digest != "" {
			ok, err := pl.d.Registry.HasDigest(ctx, reg, ref.Path, c.Digest)
			if err != nil {
				return err
			}
			if !ok {
				gone = append(gone, fmt.Sprintf("%s no longer holds %s (%s's image)", ref.Repository, c.Digest, name))
				continue
			}
		}
		tag := ref.Tag
		if c.Digest != "" {
			tag = target.Commit
		}
		if tag == "" {
			pl.p.Notes = append(pl.p.Notes, fmt.Sprintf("cannot check that %s's image %s still exists (no tag to look up)", name, c.Image))
			continue
		}
		got, err := pl.d.Registry.Resolve(ctx, reg, ref.Path, tag)
		switch {
		case errors.Is(err, push.ErrTagNotFound):
			gone = append(gone, fmt.Sprintf("%s has no tag %s", ref.Repository, tag))
		case err != nil:
			return err
		case c.Digest != "" && inspect.ParseImage(got).Digest != c.Digest:
			pl.p.Notes = append(pl.p.Notes, fmt.Sprintf("tag %s of %s now points at %s, not at %s which %s runs; the revision keeps its digest",
				tag, ref.Repository, inspect.ParseImage(got).Digest, c.Digest, ecsread.ShortARN(target.ARN)))
		}
	}
	if len(gone) > 0 {
		return pl.goneErr(ctx, target.Commit, describe(target), gone)
	}
	return nil
}

// toTag plans the return to the images pushed under --to.
func (pl *planner) toTag(ctx context.Context) error {
	p := pl.p
	tag, images, err := pl.resolveTag(ctx, pl.o.To)
	if err != nil {
		return err
	}
	p.Tag = tag
	p.Images = images
	want := map[string]string{}
	for n, ref := range images {
		want[n] = inspect.ParseImage(ref).Digest
	}
	if RunsDigests(pl.env, p.Live, want) {
		p.Target = p.Live
		p.Unchanged = true
		p.Why = fmt.Sprintf("the live revision %s already runs the images of %s", ecsread.ShortARN(p.Live.ARN), tag)
		return nil
	}
	target, found, err := pl.findRevision(ctx, want)
	if err != nil {
		return err
	}
	if found {
		p.Target = target
		p.Why = fmt.Sprintf("%s already runs the images of %s: reused, nothing registered", ecsread.ShortARN(target.ARN), tag)
		return nil
	}
	return pl.render(ctx, tag, images)
}

// resolveTag resolves to (a full tag, or a commit prefix) in every image's
// repository, returning the full tag and the pinned references.
func (pl *planner) resolveTag(ctx context.Context, to string) (string, map[string]string, error) {
	names := pl.env.ImageNames()
	refs, missing, err := pl.resolveAll(ctx, names, to)
	if err != nil {
		return "", nil, err
	}
	if len(missing) == 0 {
		return to, refs, nil
	}
	// Not a full tag present everywhere: list the tags to match a prefix.
	lists := make([][]string, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer safego.Recover("listing the tags of "+n, func(e error) { errs[i] = e })
			lists[i], errs[i] = pl.d.Registry.Tags(ctx, pl.o.Registry, pl.env.Images[n].Repository)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", nil, err
	}
	m := MatchTag(to, Union(lists))
	avail := Intersect(lists)
	switch {
	case len(m.Candidates) == 0:
		return "", nil, exitcode.Invalidf("--to %s: no tag is %s or starts with it in %s. %s", to, to,
			strings.Join(pl.repos(), " or "), pl.nearestHint(ctx, to, avail))
	case m.Tag == "":
		return "", nil, exitcode.Invalidf("--to %s is ambiguous: it starts %d tags: %s. Give more characters of the commit",
			to, len(m.Candidates), strings.Join(m.Candidates, ", "))
	case m.Tag == to:
		// Present in some repository, not all: gone from the others.
		return "", nil, pl.goneErr(ctx, to, to, missing)
	}
	refs, missing, err = pl.resolveAll(ctx, names, m.Tag)
	if err != nil {
		return "", nil, err
	}
	if len(missing) > 0 {
		return "", nil, pl.goneErr(ctx, m.Tag, m.Tag, missing)
	}
	return m.Tag, refs, nil
}

// resolveAll resolves tag in every image's repository concurrently; a
// missing tag is listed in missing, not returned as an error.
func (pl *planner) resolveAll(ctx context.Context, names []string, tag string) (map[string]string, []string, error) {
	refs := make([]string, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer safego.Recover("resolving the tag of "+n, func(e error) { errs[i] = e })
			refs[i], errs[i] = pl.d.Registry.Resolve(ctx, pl.o.Registry, pl.env.Images[n].Repository, tag)
		}()
	}
	wg.Wait()
	out := map[string]string{}
	var missing []string
	for i, n := range names {
		switch {
		case errors.Is(errs[i], push.ErrTagNotFound):
			missing = append(missing, fmt.Sprintf("%s/%s has no tag %s", pl.o.Registry, pl.env.Images[n].Repository, tag))
		case errs[i] != nil:
			return nil, nil, errs[i]
		default:
			out[n] = refs[i]
		}
	}
	return out, missing, nil
}

// findRevision looks for an ACTIVE revision of the live family that runs
// want: the live revision's recorded previous first (one call), then the
// family's newest revisions, four at a time, newest first.
func (pl *planner) findRevision(ctx context.Context, want map[string]string) (inspect.Revision, bool, error) {
	live := pl.p.Live
	seen := map[string]bool{live.ARN: true}
	if live.Previous != "" {
		seen[live.Previous] = true
		if r, err := inspect.DescribeRevision(ctx, pl.d.ECS, live.Previous); err == nil && r.Status == "ACTIVE" && RunsDigests(pl.env, r, want) {
			return r, true, nil
		}
	}
	family, _, _ := ecsread.FamilyOf(live.ARN)
	arns, err := inspect.ListFamily(ctx, pl.d.ECS, family, inspect.DefaultLimit)
	if err != nil {
		return inspect.Revision{}, false, err
	}
	var todo []string
	for _, a := range arns {
		if !seen[a] {
			todo = append(todo, a)
		}
	}
	for len(todo) > 0 {
		batch := todo[:min(4, len(todo))]
		todo = todo[len(batch):]
		revs, err := inspect.DescribeRevisions(ctx, pl.d.ECS, batch)
		if err != nil {
			return inspect.Revision{}, false, err
		}
		for _, r := range revs {
			if RunsDigests(pl.env, r, want) {
				return r, true, nil
			}
		}
	}
	return inspect.Revision{}, false, nil
}

// render renders the current template with the tag's images and the
// current Terraform outputs, for registration.
func (pl *planner) render(ctx context.Context, tag string, images map[string]string) error {
	env, p := pl.env, pl.p
	tmpl, err := taskdef.ReadTemplate(env.TaskDefinition)
	if err != nil {
		return exitcode.Invalidf("reading the task definition template %s: %v", env.TaskDefinition, err)
	}
	var outs tfvars.Outputs
	switch {
	case pl.d.Outputs != nil:
		outs, err = pl.d.Outputs(ctx)
	case env.Terraform != nil:
		outs, err = tfvars.Read(ctx, tfvars.Options{Dir: env.Terraform.Dir, Workspace: env.Terraform.Workspace, Init: env.Terraform.Init})
	}
	if err != nil {
		return err
	}
	in, err := taskdef.Render(filepath.Base(env.TaskDefinition), tmpl, taskdef.Inputs{Images: images, Outputs: outs})
	if err != nil {
		return err
	}
	in.Tags = Tags(tag, env.Name, p.Live.ARN)
	p.Register = in
	p.Diff = taskdef.Diff(p.Live.ARN, taskdef.FromLive(p.Live.Definition), in, taskdef.DiffOptions{Color: pl.o.Color})
	p.Target = inspect.NewRevision(&ecstypes.TaskDefinition{
		Family:               in.Family,
		ContainerDefinitions: in.ContainerDefinitions,
		Status:               ecstypes.TaskDefinitionStatusActive,
	}, in.Tags)
	p.Why = fmt.Sprintf("no ACTIVE revision runs the images of %s: the current template is rendered with them and the current Terraform outputs, and registered", tag)
	return nil
}

// Tags are the tags of a revision registered for a rollback: the same as a
// deploy's (commit, env) and the revision live before it.
func Tags(commit, env, previous string) []ecstypes.Tag {
	return rollout.RegisterTags{Commit: commit, Env: env, Previous: previous}.List()
}

func (pl *planner) repos() []string {
	var out []string
	for _, n := range pl.env.ImageNames() {
		out = append(out, pl.o.Registry+"/"+pl.env.Images[n].Repository)
	}
	return out
}

// available lists the tags present in every image's repository.
func (pl *planner) available(ctx context.Context) ([]string, error) {
	var lists [][]string
	for _, n := range pl.env.ImageNames() {
		l, err := pl.d.Registry.Tags(ctx, pl.o.Registry, pl.env.Images[n].Repository)
		if err != nil {
			return nil, err
		}
		lists = append(lists, l)
	}
	return Intersect(lists), nil
}

// goneErr is the exit-2 error for images missing from the registry, with the
// nearest tags whose images all still exist. what names the tag or revision.
func (pl *planner) goneErr(ctx context.Context, tag, what string, gone []string) error {
	avail, err := pl.available(ctx)
	hint := ""
	if err != nil {
		hint = fmt.Sprintf("(listing the tags that remain failed: %v)", err)
	} else {
		hint = pl.nearestHint(ctx, tag, avail)
	}
	return exitcode.Invalidf("the images of %s are gone from the registry: %s (an ECR lifecycle policy may have expired them); nothing was changed. %s",
		what, strings.Join(gone, "; "), hint)
}

// nearestHint names the nearest tags that still have every image.
func (pl *planner) nearestHint(ctx context.Context, tag string, avail []string) string {
	hist, _ := pl.history(ctx)
	near := Nearest(tag, hist, avail, 10)
	if len(near) == 0 {
		return "No tag has all of the images (" + strings.Join(pl.env.ImageNames(), ", ") + "); deploy a commit instead"
	}
	rev := map[string]string{}
	for _, r := range hist {
		if r.Commit != "" && rev[r.Commit] == "" {
			rev[r.Commit] = ecsread.ShortARN(r.ARN)
		}
	}
	var items []string
	for _, t := range near {
		if r := rev[t]; r != "" {
			items = append(items, t+" (deployed as "+r+")")
		} else {
			items = append(items, t)
		}
	}
	return "Nearest tags that still have every image: " + strings.Join(items, ", ") + "; roll back to one with --to TAG"
}

// candidatesHint lists the revisions deployed by ctjdeploy (with their
// commits) that --to could return to.
func (pl *planner) candidatesHint(ctx context.Context) string {
	hist, err := pl.history(ctx)
	if err != nil {
		return fmt.Sprintf("Choose a tag with --to (listing the history failed: %v)", err)
	}
	var items []string
	seen := map[string]bool{}
	for _, r := range hist {
		if r.Commit == "" || r.Live || seen[r.Commit] {
			continue
		}
		seen[r.Commit] = true
		items = append(items, r.Commit+" ("+ecsread.ShortARN(r.ARN)+")")
		if len(items) == 10 {
			break
		}
	}
	if len(items) == 0 {
		return "No earlier revision of the family was deployed by ctjdeploy: roll back with --to TAG (a tag pushed to the registry), or deploy a commit"
	}
	return "Roll back with --to TAG to one of the commits deployed before (newest first): " + strings.Join(items, ", ")
}
