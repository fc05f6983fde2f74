// Package deploy runs one deploy of an environment. Run plans it (phases
// preflight, live, terraform, validate, build or resolve, push-plan,
// render, plan: one method each on the run, reading everything and writing
// nothing) and, unless it is a dry run, applies it (push, register, update,
// rollout, verify, smoke). A dry run is the same code path stopped before
// the first write, so it cannot claim something the real run would not do.
// The Result is the run's output (the --output json document); the working
// state the phases hand on lives on the run.
package deploy

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/build"
	"github.com/hackforla/ctjdeploy/deploy/rollout"
	"github.com/hackforla/ctjdeploy/deploy/smoke"
	"github.com/hackforla/ctjdeploy/deploy/taskdef"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/gitinfo"
	"github.com/hackforla/ctjdeploy/internal/lease"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/push"
	"github.com/hackforla/ctjdeploy/tfvars"
)

// Options are one deploy's inputs.
type Options struct {
	Env *config.Environment
	// Tag is the image tag deployed (the full commit SHA by default; the
	// caller resolves it).
	Tag string
	// GitDir is a folder inside the git repository holding the config (for
	// the stale-commit guard and the OCI source label); "" skips git.
	GitDir  string
	DryRun  bool
	NoBuild bool
	NoWait  bool
	Force   bool
	// NoSmoke skips the environment's smoke checks (--no-smoke).
	NoSmoke bool
	// ForceUnlock takes the deploy lock over from its holder even before it
	// expires (--force-unlock: the holder is known to be dead).
	ForceUnlock bool
	Timeout     time.Duration // following the deployment; 0: no limit
	// Interval between polls (default deploy.DefaultInterval).
	Interval time.Duration
	Color    bool // color the diff
	Reporter report.Reporter
}

// Deps are the pipeline's collaborators.
type Deps struct {
	ECS      rollout.ECS
	Builder  build.Builder // unused with NoBuild
	Pusher   push.Pusher
	Registry string // host[:port] of the environment's registry
	// Outputs reads the Terraform outputs (default tfvars.Read with the
	// environment's terraform settings).
	Outputs func(ctx context.Context) (tfvars.Outputs, error)
	// Getenv looks up template {{ env }} variables (default os.LookupEnv).
	Getenv func(string) (string, bool)
	// Logs reads the stopped containers' last log lines on a failed
	// rollout (nil: none are shown).
	Logs rollout.Logs
	// SmokeRootCAs replaces the system roots for smoke checks (tests).
	SmokeRootCAs *x509.CertPool
	// SmokeInterval is the wait between smoke tries (0: smoke's default).
	SmokeInterval time.Duration
	// SSM holds the deploy lock (lock.go); nil: no lock.
	SSM SSM
	// Preflight makes every read the run needs before the first build and
	// the first write (deploy/preflight): an error (exit 2) lists every
	// denied read; warnings name reads the run can do without. nil: none.
	Preflight func(ctx context.Context) (warnings []string, err error)
}

// Image is one image of the deploy.
type Image struct {
	Name         string `json:"name"`
	Repository   string `json:"repository"` // REGISTRY/REPOSITORY
	Ref          string `json:"ref"`        // REGISTRY/REPOSITORY@sha256:...
	Digest       string `json:"digest"`
	LocalID      string `json:"localImageId,omitempty"`
	MissingBytes int64  `json:"missingBytes"` // the plan: bytes the registry lacks
	Missing      int    `json:"missingLayers"`
	Layers       int    `json:"layers"`
	// MissingList names the blobs a push would upload: the plan's "which
	// layers the registry lacks, and their bytes".
	MissingList  []Blob   `json:"missing,omitempty"`
	ExistingTags []string `json:"existingTags,omitempty"`
	// Rebuilt is this run's build's digest when the commit tag already named
	// another image (a non-reproducible rebuild): Digest is then that image,
	// deployed instead, and nothing is pushed (tags.go).
	Rebuilt  string `json:"rebuilt,omitempty"`
	Pushed   bool   `json:"pushed"`
	Uploaded int64  `json:"bytesUploaded"`
	Reused   int64  `json:"bytesReused"`
}

// Blob is one layer (or config) a push would upload.
type Blob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// Timing is how long one phase took.
type Timing struct {
	Phase   string  `json:"phase"`
	Seconds float64 `json:"seconds"`
}

// Result is the plan and what came of it: the --output json document.
type Result struct {
	Env        string            `json:"env"`
	Cluster    string            `json:"cluster"`
	Service    string            `json:"service"`
	Tag        string            `json:"tag"`
	DryRun     bool              `json:"dryRun"`
	Images     []Image           `json:"images"`
	LiveARN    string            `json:"liveTaskDefinitionArn,omitempty"`
	LiveCommit string            `json:"liveCommit,omitempty"`
	TaskDefARN string            `json:"taskDefinitionArn,omitempty"` // the revision the service runs (or would run)
	Register   bool              `json:"register"`                    // the plan: a new revision is needed
	Registered bool              `json:"registered"`                  // one was registered
	Update     bool              `json:"update"`                      // the plan: the service is updated
	Change     string            `json:"serviceChange"`
	Diff       string            `json:"diff,omitempty"`
	Guards     []rollout.Verdict `json:"guards"`
	// Warnings are the plan's warnings about the service's deployment
	// settings (no circuit breaker, rollback off).
	Warnings     []string `json:"warnings,omitempty"`
	DeploymentID string   `json:"deploymentId,omitempty"`
	// Following says the deploy followed a deployment it did not start:
	// the rendered revision was live already, its deployment in progress.
	Following bool `json:"followingExisting,omitempty"`
	// Outcome: deployed, unchanged, updated (--no-wait), dry-run,
	// rolled-back, timed-out, refused, invalid, failed.
	Outcome      string                `json:"outcome"`
	Error        string                `json:"error,omitempty"`
	Polls        int                   `json:"polls,omitempty"`
	Verification *rollout.Verification `json:"verification,omitempty"`
	Stopped      []rollout.StoppedTask `json:"stoppedTasks,omitempty"`
	// Smoke are the smoke checks' results (after a verified rollout).
	Smoke []smoke.Result `json:"smoke,omitempty"`
	// SmokeRollback is the deployment that took the service back to the
	// previous revision after a failed smoke check.
	SmokeRollback string `json:"smokeRollbackDeploymentId,omitempty"`
	// URL is the environment's address (config url:, or the first smoke URL).
	URL     string   `json:"url,omitempty"`
	Events  []string `json:"events,omitempty"`
	Timings []Timing `json:"timings"`
	// Lock is the deploy lock this run held (lock.go), LockReleased says
	// it was deleted at the end.
	Lock         string `json:"lock,omitempty"`
	LockReleased bool   `json:"lockReleased,omitempty"`
}

// run is one deploy in progress: its inputs, its output (res) and the
// working state its phases hand on to each other.
type run struct {
	o   Options
	d   Deps
	res *Result
	rep report.Reporter

	live     *rollout.Live                    // the service and its live revision (phase live)
	outputs  tfvars.Outputs                   // the Terraform outputs, read once (phase terraform)
	tmpl     []byte                           // the task definition template, read once (phase validate)
	anc      *ancestry                        // TAG against the live commit, asked of git once
	built    []build.Image                    // this run's images, in env.ImageNames() order (phase build)
	images   map[string]imageWork             // by image name: what the push needs (phase push-plan)
	rendered *ecs.RegisterTaskDefinitionInput // the definition deployed (phase render)
	lease    *lease.Lease                     // the deploy lock held (lock.go); nil: none

	updating  bool      // UpdateService was called
	completed bool      // the deployment was followed to its successful end
	followAt  time.Time // when the update was asked for
	updatedAt time.Time // when UpdateService returned
	sdArn     string    // the service deployment the update started (currentServiceDeployment)
	failedAt  time.Time // when Follow saw the failure (for the benchmark)
}

// imageWork is what pushing one image takes: the image built and the plan
// that compared it with the registry.
type imageWork struct {
	built build.Image
	plan  push.Plan
}

// ancestry is whether TAG is an ancestor of the live revision's commit.
type ancestry struct {
	is   rollout.Ancestry
	note string
}

// phase runs fn as a reported phase and records its time.
func (r *run) phase(name string, fn func(p *report.Phase) error) error {
	p := report.Begin(r.rep, name)
	err := fn(p)
	r.res.Timings = append(r.res.Timings, Timing{Phase: name, Seconds: p.Elapsed().Seconds()})
	return p.End(err)
}

// Run plans the deploy and, unless o.DryRun, applies the plan. The Result is
// returned in every case (filled as far as the run got); the error carries
// the exit code (exitcode.Of).
func Run(ctx context.Context, o Options, d Deps) (*Result, error) {
	env := o.Env
	res := &Result{Env: env.Name, Cluster: env.Cluster, Service: env.Service, Tag: o.Tag, DryRun: o.DryRun, URL: env.URL}
	r := &run{o: o, d: d, res: res, rep: o.Reporter}
	if r.rep == nil {
		r.rep = report.Discard
	}
	err := r.plan(ctx)
	if err == nil {
		err = rollout.Refusal(res.Guards)
	}
	if err == nil && !o.DryRun {
		// The plan is shown before the first write (the renderers print the
		// event as it comes and then end with a short result).
		var b strings.Builder
		if WritePlan(&b, res) == nil {
			report.For(r.rep, "plan").Fields(strings.TrimRight(b.String(), "\n"), map[string]any{"plan": true})
		}
		err = r.apply(ctx)
	}
	if err != nil && ctx.Err() != nil {
		err = r.interrupted(err)
	}
	res.Outcome = outcome(res, err)
	if err != nil {
		res.Error = err.Error()
	}
	return res, err
}

// interrupted says, on an error after the context ended (a signal), what
// the interruption left: nothing changed on the service, an UpdateService
// whose answer never came, or a deployment going on in ECS.
func (r *run) interrupted(err error) error {
	env, res := r.o.Env, r.res
	switch {
	case r.completed:
		return fmt.Errorf("%w; interrupted after deployment %s of %s completed, before its checks (running tasks' digests, smoke checks) ended: service %s runs %s, unverified: check `ctjdeploy %s status`",
			err, res.DeploymentID, shortARN(res.TaskDefARN), env.Service, shortARN(res.TaskDefARN), env.Name)
	case res.DeploymentID != "":
		if strings.Contains(err.Error(), res.DeploymentID) {
			return err // Follow's message names the deployment going on
		}
		return fmt.Errorf("%w; interrupted after the service update: deployment %s of %s goes on in ECS: check `ctjdeploy %s status`", err, res.DeploymentID, shortARN(res.TaskDefARN), env.Name)
	case r.updating:
		return fmt.Errorf("%w; interrupted while UpdateService was in flight: service %s may now be deploying %s: check `ctjdeploy %s status`", err, env.Service, shortARN(res.TaskDefARN), env.Name)
	case res.Registered:
		return fmt.Errorf("%w; interrupted before the service update: service %s was not changed (revision %s was registered and is unused)", err, env.Service, shortARN(res.TaskDefARN))
	}
	return fmt.Errorf("%w; interrupted before the service update: service %s was not changed", err, env.Service)
}

func outcome(res *Result, err error) string {
	if err != nil {
		return exitcode.Name(exitcode.Of(err))
	}
	switch {
	case res.DryRun:
		return "dry-run"
	case !res.Update:
		return "unchanged"
	case res.DeploymentID != "" && res.Verification == nil:
		return "updated"
	}
	return "deployed"
}

// placeholderDigest stands for the images' digests while the template is
// checked before the build.
const placeholderDigest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

// step is one phase of the run: a name (its report.Phase) and what it does.
type step struct {
	name string
	run  func(ctx context.Context, p *report.Phase) error
}

// steps runs each step as a reported phase, stopping at the first error.
func (r *run) steps(ctx context.Context, steps ...step) error {
	for _, s := range steps {
		if err := r.phase(s.name, func(p *report.Phase) error { return s.run(ctx, p) }); err != nil {
			return err
		}
	}
	return nil
}

// plan reads everything and writes nothing. It fails fast, before minutes
// of building: the service must exist, the Terraform outputs must be
// readable, the template must render (with placeholder digests) and the
// data guard, which does not depend on the images, must pass.
func (r *run) plan(ctx context.Context) error {
	if err := config.ValidTag(r.o.Tag); err != nil {
		return err
	}
	var steps []step
	if r.d.Preflight != nil {
		steps = append(steps, step{"preflight", r.preflight})
	}
	steps = append(steps, step{"live", r.readLive})
	if r.o.Env.Terraform != nil || r.d.Outputs != nil {
		steps = append(steps, step{"terraform", r.readOutputs})
	}
	steps = append(steps, step{"validate", r.validate})
	if r.o.NoBuild {
		steps = append(steps, step{"resolve", r.resolve})
	} else {
		steps = append(steps, step{"build", r.build}, step{"push-plan", r.pushPlan})
	}
	steps = append(steps, step{"render", r.renderImages}, step{"plan", r.judge})
	return r.steps(ctx, steps...)
}

// preflight makes every read the run needs (Deps.Preflight) before any
// other: a denial ends the run (exit 2), warnings go on.
func (r *run) preflight(ctx context.Context, p *report.Phase) error {
	ws, err := r.d.Preflight(ctx)
	r.warn(p, ws)
	return err
}

// warn reports each warning and keeps it in the result.
func (r *run) warn(p *report.Phase, ws []string) {
	for _, w := range ws {
		p.Warnf("%s", w)
		r.res.Warnings = append(r.res.Warnings, w)
	}
}

// readLive reads the service and its live revision, and checks the
// service's deployment settings.
func (r *run) readLive(ctx context.Context, p *report.Phase) error {
	env, res := r.o.Env, r.res
	live, err := rollout.ReadLive(ctx, r.d.ECS, env.Cluster, env.Service)
	if err != nil {
		return err
	}
	r.live = live
	res.LiveARN, res.LiveCommit = live.ARN(), live.Commit()
	p.Infof("service %s runs %s (%s deployments)", env.Service, shortARN(live.ARN()), rollout.Strategy(live.Svc))
	chk := rollout.CheckService(env.Name, env.Service, live.Svc)
	if chk.Refusal != nil {
		return chk.Refusal
	}
	r.warn(p, chk.Warnings)
	return nil
}

// readOutputs reads the Terraform outputs (Deps.Outputs, or tfvars.Read).
func (r *run) readOutputs(ctx context.Context, p *report.Phase) error {
	read := r.d.Outputs
	if read == nil {
		tf := r.o.Env.Terraform
		read = func(ctx context.Context) (tfvars.Outputs, error) {
			return tfvars.Read(ctx, tfvars.Options{Dir: tf.Dir, Workspace: tf.Workspace, Init: tf.Init})
		}
	}
	var err error
	r.outputs, err = read(ctx)
	return err
}

// validate renders the template with placeholder digests and applies the
// guards that cannot change after the build.
func (r *run) validate(ctx context.Context, _ *report.Phase) error {
	env, res := r.o.Env, r.res
	tmpl, err := taskdef.ReadTemplate(env.TaskDefinition)
	if err != nil {
		return err // exit 2, naming the template
	}
	r.tmpl = tmpl
	refs := map[string]string{}
	for _, n := range env.ImageNames() {
		refs[n] = r.d.Registry + "/" + env.Images[n].Repository + "@" + placeholderDigest
	}
	td, err := r.render(refs)
	if err != nil {
		return err
	}
	if v := rollout.DataGuard(td, r.live.Svc, env.EphemeralDatabase); v.Outcome == rollout.Refuse {
		res.Guards = []rollout.Verdict{v}
		return rollout.Refusal(res.Guards)
	}
	if !r.o.NoBuild && res.LiveCommit != "" && res.LiveCommit != r.o.Tag {
		// The live revision was deployed from another commit: the images
		// built for TAG carry TAG in their revision label, so their digests
		// differ and this run will deploy. Its guards' verdicts cannot
		// change after the build: refuse now if they refuse.
		if vs := r.guards(ctx, td); rollout.Refusal(vs) != nil {
			res.Guards = vs
			return rollout.Refusal(vs)
		}
	}
	return nil
}

// resolve (--no-build) finds the images already pushed under TAG.
func (r *run) resolve(ctx context.Context, p *report.Phase) error {
	env := r.o.Env
	for _, n := range env.ImageNames() {
		im := env.Images[n]
		ref, err := r.d.Pusher.Resolve(ctx, r.d.Registry, im.Repository, r.o.Tag)
		if err != nil {
			return fmt.Errorf("image %s: %w (--no-build deploys images already pushed under --tag %s)", n, err, r.o.Tag)
		}
		_, dg, _ := strings.Cut(ref, "@")
		r.res.Images = append(r.res.Images, Image{Name: n, Repository: r.d.Registry + "/" + im.Repository, Ref: ref, Digest: dg})
		p.Infof("%s: %s", n, ref)
	}
	return nil
}

// build builds the environment's images, labelled with TAG, with the
// registry's cache when the registry answers.
func (r *run) build(ctx context.Context, p *report.Phase) error {
	cacheRegistry := r.d.Registry
	if err := build.RegistryAnswers(ctx, r.d.Registry, 10*time.Second); err != nil {
		cacheRegistry = ""
		p.Warnf("the registry %s does not answer (%v): building without its cache; the push will retry it", r.d.Registry, err)
	}
	source := ""
	if r.o.GitDir != "" {
		source = gitinfo.RemoteURL(ctx, r.o.GitDir)
	}
	var err error
	r.built, err = build.BuildAll(ctx, r.d.Builder, build.EnvSpecs(r.o.Env, r.o.Tag, source, cacheRegistry), r.rep)
	return err
}

// pushPlan compares each built image with the registry: which layers it
// lacks, and whether the commit tag already names another image.
func (r *run) pushPlan(ctx context.Context, p *report.Phase) error {
	env, res := r.o.Env, r.res
	r.images = map[string]imageWork{}
	for i, n := range env.ImageNames() {
		pl, err := r.d.Pusher.Plan(ctx, r.built[i], r.target(env.Images[n]))
		if err != nil {
			return err
		}
		r.images[n] = imageWork{built: r.built[i], plan: pl}
		var list []Blob
		for _, l := range pl.Layers {
			if l.Missing {
				list = append(list, Blob{Digest: l.Digest, Size: l.Size})
			}
		}
		img := Image{Name: n, Repository: pl.Repository, Ref: pl.Repository + "@" + pl.Digest, Digest: pl.Digest,
			LocalID: r.built[i].ID, MissingBytes: pl.MissingBytes, Missing: len(list), Layers: len(pl.Layers), MissingList: list,
			ExistingTags: pl.ExistingTags}
		if was, ok := pl.Tagged[r.o.Tag]; ok && was != pl.Digest {
			keepCommitTag(&img, was, r.o.Tag, env.Name, pl.Tagged)
			p.Warnf("%s: commit tag %s already names %s, pushed by an earlier run of this commit; this build gave %s (the build is not reproducible). "+
				"Deploying the image under the commit tag: a commit tag never moves, so no revision that pins it loses its image. To deploy a fresh build, push a new commit",
				n, r.o.Tag, was, img.Rebuilt)
			res.Images = append(res.Images, img)
			continue
		}
		res.Images = append(res.Images, img)
		p.Infof("%s: %s, %d of %d layers to upload (%d bytes)", n, pl.Digest, len(list), len(pl.Layers), pl.MissingBytes)
	}
	return nil
}

// renderImages renders the task definition with the images' digests.
func (r *run) renderImages(_ context.Context, _ *report.Phase) error {
	refs := map[string]string{}
	for _, im := range r.res.Images {
		refs[im.Name] = im.Ref
	}
	var err error
	r.rendered, err = r.render(refs)
	return err
}

// judge compares the rendered definition with the live one and applies the
// guards: the plan.
func (r *run) judge(ctx context.Context, p *report.Phase) error {
	env, res, live := r.o.Env, r.res, r.live
	var liveIn *ecs.RegisterTaskDefinitionInput
	if live.TaskDefinition != nil {
		liveIn = taskdef.FromLive(live.TaskDefinition)
	}
	res.Register = liveIn == nil || !taskdef.Equal(liveIn, r.rendered)
	if res.Register {
		res.Diff = taskdef.Diff(live.ARN(), liveIn, r.rendered, taskdef.DiffOptions{Color: r.o.Color})
		res.Update = true
		res.Change = fmt.Sprintf("register a new revision of %s and update service %s from %s to it", aws.ToString(r.rendered.Family), env.Service, shortARN(live.ARN()))
	} else {
		res.TaskDefARN = live.ARN()
		res.Change = fmt.Sprintf("none: service %s already runs %s, identical to the rendered definition", env.Service, shortARN(live.ARN()))
	}
	res.Guards = r.guards(ctx, r.rendered)
	if !res.Update {
		// Nothing will be deployed: a deployment in progress is not in the
		// way, and an older commit with identical images rolls nothing
		// back.
		for i, v := range res.Guards {
			if v.Guard != rollout.GuardData && v.Outcome == rollout.Refuse {
				res.Guards[i].Outcome = rollout.Warn
				res.Guards[i].Message += " (nothing to deploy, so not refused)"
			}
		}
	}
	for _, v := range res.Guards {
		switch v.Outcome {
		case rollout.Warn, rollout.Bypassed:
			p.Warnf("%s guard: %s", v.Guard, v.Message)
		case rollout.Refuse:
			p.Warnf("%s guard refuses: %s", v.Guard, v.Message)
		}
	}
	for _, c := range env.Smoke {
		what := fmt.Sprintf("smoke check: GET %s until %d", c.URL, c.Status)
		if c.Contains != "" {
			what += fmt.Sprintf(" with %q in the body", c.Contains)
		}
		what += fmt.Sprintf(", within %s", c.Timeout)
		if r.o.NoSmoke {
			what += " (skipped: --no-smoke)"
		}
		p.Infof("%s", what)
	}
	return nil
}

// guards judges a deploy of td over the live service: in progress, stale
// commit (from the local git history), data.
func (r *run) guards(ctx context.Context, td *ecs.RegisterTaskDefinitionInput) []rollout.Verdict {
	env, res := r.o.Env, r.res
	if r.anc == nil {
		r.anc = &ancestry{is: rollout.CannotTell, note: "no git repository"}
		if r.o.GitDir != "" && res.LiveCommit != "" && res.LiveCommit != r.o.Tag {
			a, why, err := gitinfo.IsAncestor(ctx, r.o.GitDir, r.o.Tag, res.LiveCommit)
			r.anc.note = why
			if err != nil {
				r.anc.note = err.Error()
			}
			switch a {
			case gitinfo.Ancestor:
				r.anc.is = rollout.IsAncestor
			case gitinfo.NotAncestor:
				r.anc.is = rollout.NotAncestor
			}
		}
	}
	return rollout.Guards(rollout.GuardInput{Env: env.Name, Service: r.live.Svc, Rendered: td,
		Tag: r.o.Tag, LiveCommit: res.LiveCommit, Ancestry: r.anc.is, AncestryNote: r.anc.note,
		Force: r.o.Force, EphemeralDatabase: env.EphemeralDatabase})
}

// render renders the template with the images refs (name → REGISTRY/REPO@sha256:…).
func (r *run) render(refs map[string]string) (*ecs.RegisterTaskDefinitionInput, error) {
	return taskdef.Render(filepath.Base(r.o.Env.TaskDefinition), r.tmpl, taskdef.Inputs{Images: refs, Outputs: r.outputs, Env: r.d.Getenv, SecretEnv: r.o.Env.SecretEnv})
}

// target is where im is pushed: its repository under TAG and ENV, learning
// known layers from what ENV holds there, and mounting layers the
// environment's other repositories hold (a fresh runner pushes django's
// base layers once).
func (r *run) target(im *config.Image) push.Target {
	var others []string
	for _, n := range r.o.Env.ImageNames() {
		if o := r.o.Env.Images[n]; o.Repository != im.Repository {
			others = append(others, o.Repository)
		}
	}
	return push.Target{Registry: r.d.Registry, Repository: im.Repository, Tags: []string{r.o.Tag, r.o.Env.Name}, MountFrom: others}
}

// shortARN is ecsread.ShortARN, with "(none)" for no revision.
func shortARN(arn string) string {
	if arn == "" {
		return "(none)"
	}
	return ecsread.ShortARN(arn)
}

// apply carries the plan out: push, register, update, follow, verify,
// smoke. The deploy lock is held from before the first write.
func (r *run) apply(ctx context.Context) error {
	release, err := r.takeLock(ctx) // before the first write (lock.go)
	if err != nil {
		return err
	}
	defer release()
	if !r.o.NoBuild {
		// Every image under TAG first; ENV moves after all (tags.go).
		if err := r.phase("push", func(p *report.Phase) error { return r.pushImages(ctx, p) }); err != nil {
			return err
		}
	}
	if !r.res.Update {
		return r.unchanged(ctx)
	}
	// After the push, right before the first ECS write: the service must be
	// what the plan judged (another deploy or terraform apply may have run
	// during the build and the push).
	if err := r.sameService(ctx, ""); err != nil {
		return err
	}
	if err := r.steps(ctx, step{"register", r.register}); err != nil {
		return err
	}
	// Again right before the update: the register took time too, and an
	// update now would undo whatever moved the service meanwhile.
	if err := r.sameService(ctx, r.res.TaskDefARN); err != nil {
		return err
	}
	if err := r.steps(ctx, step{"update", r.update}); err != nil || r.o.NoWait {
		return err
	}
	if err := r.steps(ctx, step{"rollout", r.followUpdate}); err != nil {
		return err
	}
	r.completed = true
	if err := r.verify(ctx, r.res.TaskDefARN); err != nil {
		return err
	}
	return r.smoke(ctx, true)
}

// unchanged ends a run that registers nothing: it follows the live
// revision's deployment if that has not ended (a rerun of a commit), then
// verifies and smoke-checks what runs.
func (r *run) unchanged(ctx context.Context) error {
	res := r.res
	if r.o.NoWait {
		return nil
	}
	if d := liveRollout(r.live.Svc, res.TaskDefARN); d != nil {
		// A rerun of a commit whose deployment has not ended: follow that
		// deployment to its end instead of reporting "unchanged".
		res.DeploymentID, res.Following, res.Update = aws.ToString(d.Id), true, true
		if err := r.phase("rollout", func(p *report.Phase) error {
			p.Infof("service %s already runs %s, but its deployment %s has not ended (%s): following it", r.o.Env.Service, shortARN(res.TaskDefARN), res.DeploymentID, strings.ToLower(string(d.RolloutState)))
			return r.follow(ctx, rollout.Followed{ServiceDeploymentArn: aws.ToString(r.live.Svc.CurrentServiceDeployment),
				Source: rollout.SourceRevision(r.live.Svc), UpdatedAt: aws.ToTime(d.CreatedAt)})
		}); err != nil {
			return err
		}
	}
	if err := r.verify(ctx, res.TaskDefARN); err != nil {
		return err
	}
	return r.smoke(ctx, false)
}

// register registers the rendered definition with ctjdeploy's tags.
func (r *run) register(ctx context.Context, p *report.Phase) error {
	res := r.res
	arn, err := rollout.Register(ctx, r.d.ECS, r.rendered, rollout.RegisterTags{Commit: r.o.Tag, Env: r.o.Env.Name, Previous: res.LiveARN})
	if err != nil {
		return err
	}
	res.TaskDefARN, res.Registered = arn, true
	p.Infof("registered %s", shortARN(arn))
	return nil
}

// update points the service at the registered revision (UpdateService).
func (r *run) update(ctx context.Context, p *report.Phase) error {
	env, res := r.o.Env, r.res
	r.followAt = time.Now()
	r.updating = true
	id, svc, err := rollout.Update(ctx, r.d.ECS, env.Cluster, env.Service, res.TaskDefARN, false)
	if err != nil {
		if ctx.Err() == nil && svc == nil {
			// An orphan: say which revision is left unused.
			return fmt.Errorf("%w\nrevision %s, registered by this run, is unused: service %s still runs %s unless the update was applied before the error (check `ctjdeploy %s status`); nothing was deregistered",
				err, shortARN(res.TaskDefARN), env.Service, shortARN(res.LiveARN), env.Name)
		}
		return err
	}
	res.DeploymentID, r.updatedAt = id, time.Now()
	if svc != nil {
		r.sdArn = aws.ToString(svc.CurrentServiceDeployment)
	}
	p.Infof("service %s: deployment %s of %s started", env.Service, id, shortARN(res.TaskDefARN))
	return nil
}

// followUpdate follows the deployment the update started.
func (r *run) followUpdate(ctx context.Context, _ *report.Phase) error {
	return r.follow(ctx, rollout.Followed{ServiceDeploymentArn: r.sdArn,
		PreviousServiceDeploymentArn: aws.ToString(r.live.Svc.CurrentServiceDeployment),
		Source:                       r.res.LiveARN, UpdatedAt: r.updatedAt})
}

// smoke runs the environment's smoke checks after a verified rollout. When
// one fails and this run moved the service (rolledOut), the service goes
// back to the revision live before, as `rollback` does, and that rollback
// is followed: exit 3 when it completes, 6 when it fails. Without a
// rollout (nothing changed) a failure is exit 1: stage does not answer, and
// there is nothing to go back to.
func (r *run) smoke(ctx context.Context, rolledOut bool) error {
	env, res := r.o.Env, r.res
	if len(env.Smoke) == 0 || r.o.NoSmoke {
		return nil
	}
	checks := make([]smoke.Check, 0, len(env.Smoke))
	for _, c := range env.Smoke {
		checks = append(checks, smoke.Check{URL: c.URL, Status: c.Status, Contains: c.Contains, Timeout: c.Timeout})
	}
	start := time.Now()
	results, err := smoke.Run(ctx, checks, smoke.Options{Reporter: r.rep, RootCAs: r.d.SmokeRootCAs, Interval: r.d.SmokeInterval})
	res.Timings = append(res.Timings, Timing{Phase: "smoke", Seconds: time.Since(start).Seconds()})
	res.Smoke = results
	if err == nil {
		return nil
	}
	var failed *smoke.Failed
	if !errors.As(err, &failed) {
		return err
	}
	if !rolledOut || res.LiveARN == "" || res.LiveARN == res.TaskDefARN {
		return fmt.Errorf("%w\nservice %s runs %s, which this run did not change: nothing to roll back to", err, env.Service, shortARN(res.TaskDefARN))
	}
	var back error
	_ = r.phase("smoke-rollback", func(p *report.Phase) error {
		p.Warnf("smoke checks failed: rolling service %s back to %s, the revision live before this deploy", env.Service, shortARN(res.LiveARN))
		id, svc, uerr := rollout.Update(ctx, r.d.ECS, env.Cluster, env.Service, res.LiveARN, false)
		if uerr != nil {
			back = uerr
			return uerr
		}
		res.SmokeRollback = id
		sd := ""
		if svc != nil {
			sd = aws.ToString(svc.CurrentServiceDeployment)
		}
		_, ferr := rollout.Follow(ctx, r.d.ECS, rollout.NewFollowOptions(env.Cluster, env.Service, env.Name,
			rollout.Followed{DeploymentID: id, TaskDefinition: res.LiveARN, ServiceDeploymentArn: sd, Source: res.TaskDefARN, UpdatedAt: time.Now()},
			rollout.Pace{Interval: r.o.Interval, Timeout: r.o.Timeout, Reporter: &eventTap{next: r.rep, res: res}}))
		back = ferr
		return ferr
	})
	if back != nil {
		return exitcode.Wrap(exitcode.NotRecovered, fmt.Errorf("%w\nthe rollback to %s after the failed smoke checks did not complete: %v; service %s is NOT back on a working revision: act now (`ctjdeploy %s status`)",
			err, shortARN(res.LiveARN), back, env.Service, env.Name))
	}
	return exitcode.Wrap(exitcode.RolledBack, fmt.Errorf("%w\nthe smoke checks failed, so ctjdeploy rolled service %s back to %s (deployment %s) and the rollback completed: it runs the previous revision again",
		err, env.Service, shortARN(res.LiveARN), res.SmokeRollback))
}

// follow follows res.DeploymentID of res.TaskDefARN (d names the rest),
// recording polls, events and stopped tasks in the result.
func (r *run) follow(ctx context.Context, d rollout.Followed) error {
	env, res := r.o.Env, r.res
	d.DeploymentID, d.TaskDefinition = res.DeploymentID, res.TaskDefARN
	since := r.followAt.Add(-2 * time.Second)
	if r.followAt.IsZero() {
		since = time.Now().Add(-time.Minute)
	}
	o := rollout.NewFollowOptions(env.Cluster, env.Service, env.Name, d,
		rollout.Pace{Interval: r.o.Interval, Timeout: r.o.Timeout, Since: since, Reporter: &eventTap{next: r.rep, res: res}})
	o.Logs = r.d.Logs
	o.FailureThreshold = env.FailureThreshold // ends a rollout no breaker watches (rollout/threshold.go)
	fr, err := rollout.Follow(ctx, r.d.ECS, o)
	res.Polls, res.Stopped, r.failedAt = fr.Polls, fr.Stopped, fr.FailedAt
	return err
}

// liveRollout is the service's PRIMARY deployment of arn when it has not
// ended (rolloutState IN_PROGRESS, or other deployments still draining
// without a rolloutState), or FAILED: a rerun follows it (and a FAILED one
// ends the deploy with exit 6). nil when the live revision's deployment is
// done.
func liveRollout(svc *ecstypes.Service, arn string) *ecstypes.Deployment {
	if svc == nil {
		return nil
	}
	var prim *ecstypes.Deployment
	live := 0
	for i := range svc.Deployments {
		d := &svc.Deployments[i]
		if aws.ToString(d.Status) == "PRIMARY" {
			prim = d
		}
		if aws.ToString(d.Status) != "INACTIVE" {
			live++
		}
	}
	if prim == nil || aws.ToString(prim.TaskDefinition) != arn {
		return nil
	}
	switch prim.RolloutState {
	case ecstypes.DeploymentRolloutStateInProgress, ecstypes.DeploymentRolloutStateFailed:
		return prim
	case "":
		if live > 1 {
			return prim
		}
	}
	return nil
}

func sumLayers(p push.Plan) int64 {
	var n int64
	for _, l := range p.Layers {
		n += l.Size
	}
	return n
}

func (r *run) verify(ctx context.Context, arn string) error {
	return r.phase("verify", func(p *report.Phase) error {
		want := rollout.PinnedDigests(r.rendered.ContainerDefinitions)
		desired := int32(1)
		if s := r.live; s != nil && s.Svc != nil {
			desired = s.Svc.DesiredCount
		}
		v, err := rollout.Verify(ctx, r.d.ECS, r.o.Env.Cluster, r.o.Env.Service, arn, want, desired)
		r.res.Verification = &v
		if err == nil {
			names := make([]string, 0, len(want))
			for n := range want {
				names = append(names, n)
			}
			sort.Strings(names)
			p.Infof("%s of %s %s the pushed digests (%s)", rollout.Plural(v.Tasks, "running task"), shortARN(arn), rollout.Verb(v.Tasks, "runs", "run"), strings.Join(names, ", "))
		}
		return err
	})
}

// eventTap records the service events Follow reports, and passes every
// event on.
type eventTap struct {
	next report.Reporter
	res  *Result
}

func (t *eventTap) Report(e report.Event) {
	if e.Kind == report.Line && e.Phase == "rollout" {
		t.res.Events = append(t.res.Events, e.Message)
	}
	t.next.Report(e)
}
