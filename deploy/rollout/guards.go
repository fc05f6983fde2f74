package rollout

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/ecsread"
)

// Guard names, as verdicts and the JSON output spell them.
const (
	GuardInProgress  = "in-progress"
	GuardStaleCommit = "stale-commit"
	GuardData        = "data"
)

// Outcome is what a guard decided.
type Outcome string

const (
	Pass     Outcome = "pass"     // nothing to object to
	Warn     Outcome = "warn"     // the deploy goes on; the message says why it might not be fine
	Refuse   Outcome = "refuse"   // the deploy stops with exit 5, nothing changed
	Bypassed Outcome = "bypassed" // would refuse, but --force said go ahead
)

// Verdict is one guard's decision.
type Verdict struct {
	Guard   string  `json:"guard"`
	Outcome Outcome `json:"outcome"`
	Message string  `json:"message"`
}

// Ancestry is what local git history says about two commits.
type Ancestry int

const (
	CannotTell  Ancestry = iota // shallow clone, unknown commit, or not a commit
	IsAncestor                  // the first commit is an ancestor of the second
	NotAncestor                 // it is not
)

// GuardInput is everything the guards look at.
type GuardInput struct {
	Env     string
	Service *ecstypes.Service // the service now (DescribeServices)
	// Rendered is the definition this deploy would run.
	Rendered *ecs.RegisterTaskDefinitionInput
	// Tag is the image tag (commit) deployed; LiveCommit is the live
	// revision's ctjdeploy:commit tag ("" when it has none).
	Tag, LiveCommit string
	// Ancestry says whether Tag is an ancestor of LiveCommit;
	// AncestryNote says why it cannot tell.
	Ancestry     Ancestry
	AncestryNote string
	// Force bypasses the in-progress and stale-commit guards.
	Force bool
	// EphemeralDatabase turns a postgres data directory off any persistent
	// volume into a warning (config key ephemeral_database).
	EphemeralDatabase bool
}

// Guards runs every guard. Pure.
func Guards(in GuardInput) []Verdict {
	return []Verdict{
		InProgressGuard(in.Service, in.Force),
		StaleCommitGuard(in.Env, in.Tag, in.LiveCommit, in.Ancestry, in.AncestryNote, in.Force),
		DataGuard(in.Rendered, in.Service, in.EphemeralDatabase),
	}
}

// Refusal is the exit-5 error of the verdicts that refuse, or nil.
func Refusal(vs []Verdict) error {
	var msgs []string
	for _, v := range vs {
		if v.Outcome == Refuse {
			msgs = append(msgs, fmt.Sprintf("%s guard: %s", v.Guard, v.Message))
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return refusedf("refused, nothing was changed:\n  %s", strings.Join(msgs, "\n  "))
}

// InProgressGuard refuses when the service already has a deployment in
// progress: one whose rolloutState is IN_PROGRESS, or more than one
// deployment that is not INACTIVE (a rollout still draining the old tasks).
// force turns the refusal into Bypassed. Pure.
func InProgressGuard(svc *ecstypes.Service, force bool) Verdict {
	v := Verdict{Guard: GuardInProgress, Outcome: Pass, Message: "no other deployment in progress"}
	if svc == nil {
		return v
	}
	var busy []string
	live := 0
	for _, d := range svc.Deployments {
		if aws.ToString(d.Status) == statusInactive {
			continue
		}
		live++
		if d.RolloutState == ecstypes.DeploymentRolloutStateInProgress {
			busy = append(busy, fmt.Sprintf("%s (%s, %s, %d/%d running)", aws.ToString(d.Id), aws.ToString(d.Status),
				ecsread.ShortARN(aws.ToString(d.TaskDefinition)), d.RunningCount, d.DesiredCount))
		}
	}
	if len(busy) == 0 && live <= 1 {
		return v
	}
	if len(busy) == 0 {
		// A FAILED PRIMARY with nothing in progress (circuit breaker without
		// rollback, or a failed rollback) is not a rollout that has not
		// finished: waiting changes nothing, and the deploy is the fix.
		for _, d := range svc.Deployments {
			if aws.ToString(d.Status) == statusPrimary && d.RolloutState == ecstypes.DeploymentRolloutStateFailed {
				v.Message = fmt.Sprintf("the last deployment %s (%s) FAILED and nothing is in progress: this deploy replaces it", aws.ToString(d.Id), ecsread.ShortARN(aws.ToString(d.TaskDefinition)))
				return v
			}
		}
	}
	what := "deployment " + strings.Join(busy, ", ") + " is in progress"
	if len(busy) == 0 {
		what = fmt.Sprintf("the service has %d deployments that are not INACTIVE (the last rollout has not finished)", live)
	}
	if force {
		v.Outcome, v.Message = Bypassed, what+"; going ahead because of --force (ECS will replace that deployment)"
		return v
	}
	v.Outcome = Refuse
	v.Message = what + ". Wait for it (`ctjdeploy ENV status`) and run again, or pass --force to replace it."
	return v
}

// StaleCommitGuard refuses when tag is an ancestor of liveCommit: deploying
// it would roll the environment back to older code (a late CI run). force
// turns the refusal into Bypassed; when history cannot tell it warns and the
// deploy goes on. Pure.
func StaleCommitGuard(env, tag, liveCommit string, a Ancestry, note string, force bool) Verdict {
	v := Verdict{Guard: GuardStaleCommit, Outcome: Pass}
	switch {
	case liveCommit == "":
		v.Message = "the live revision has no " + ecsread.TagCommit + " tag (not deployed by ctjdeploy): nothing to compare"
		return v
	case liveCommit == tag:
		v.Message = "the live revision was deployed from this same commit"
		return v
	}
	switch a {
	case NotAncestor:
		v.Message = fmt.Sprintf("%s is not an ancestor of the live commit %s", ecsread.ShortCommit(tag), ecsread.ShortCommit(liveCommit))
	case CannotTell:
		if note == "" {
			note = "local git history cannot tell"
		}
		v.Outcome = Warn
		v.Message = fmt.Sprintf("cannot tell whether %s is older than the live commit %s: %s; going on", ecsread.ShortCommit(tag), ecsread.ShortCommit(liveCommit), note)
	case IsAncestor:
		what := fmt.Sprintf("%s is an ancestor of the commit deployed now (%s): deploying it would roll %s back to older code", ecsread.ShortCommit(tag), ecsread.ShortCommit(liveCommit), env)
		if force {
			v.Outcome, v.Message = Bypassed, what+"; going ahead because of --force"
			return v
		}
		v.Outcome = Refuse
		v.Message = what + fmt.Sprintf(". To go back on purpose use `ctjdeploy %s rollback --to %s`, or pass --force.", env, ecsread.ShortCommit(tag))
	}
	return v
}

// Postgres data directories: the postgres image from 18 on keeps its data
// under /var/lib/postgresql (its VOLUME); older images under
// /var/lib/postgresql/data.
const (
	pgDataDir18  = "/var/lib/postgresql"
	pgDataDirOld = "/var/lib/postgresql/data"
)

// pgDir is where a postgres image keeps its data: data is the data
// directory, volume the image's VOLUME (a mount above it is shadowed by the
// anonymous volume docker creates there), mountAt the path to advise.
type pgDir struct{ data, volume, mountAt string }

// pgDataDirs lists where the data may be, by image major version (0:
// unknown, either layout) and PGDATA.
func pgDataDirs(major int, env []ecstypes.KeyValuePair) []pgDir {
	var dirs []pgDir
	switch {
	case major >= 18:
		dirs = []pgDir{{fmt.Sprintf("%s/%d/docker", pgDataDir18, major), pgDataDir18, pgDataDir18}}
	case major > 0:
		dirs = []pgDir{{pgDataDirOld, pgDataDirOld, pgDataDirOld}}
	default:
		dirs = []pgDir{{pgDataDir18 + "/docker", pgDataDir18, pgDataDir18}, {pgDataDirOld, pgDataDirOld, pgDataDirOld}}
	}
	for _, kv := range env {
		if aws.ToString(kv.Name) == "PGDATA" && aws.ToString(kv.Value) != "" {
			d := path.Clean(aws.ToString(kv.Value))
			vol := ""
			for _, x := range dirs {
				if within(d, x.volume) {
					vol = x.volume
				}
			}
			return []pgDir{{d, vol, d}}
		}
	}
	return dirs
}

// within says whether p is dir or below it.
func within(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// covers says whether a mount at p holds the data of one of dirs: the data
// directory is within p, and the image's VOLUME is not strictly below p.
func covers(p string, dirs []pgDir) bool {
	for _, d := range dirs {
		if within(d.data, p) && (d.volume == "" || !within(d.volume, p) || d.volume == p) {
			return true
		}
	}
	return false
}

var majorRe = regexp.MustCompile(`^(\d+)`)

// postgresImage says whether image is the postgres image (any registry, tag
// or digest) and returns its major version (0 when the tag does not say).
func postgresImage(image string) (bool, int) {
	ref := image
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	tag := ""
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref, tag = ref[:i], ref[i+1:]
	}
	if path.Base(ref) != "postgres" {
		return false, 0
	}
	m := majorRe.FindString(tag)
	n, _ := strconv.Atoi(m)
	return true, n
}

// DataGuard checks every postgres container of td: its data directory must
// be on a persistent volume (EFS, FSx, a docker volume with scope shared, or a
// host path), and when it is, the service's deployment configuration must not
// start the new task before the old one stops (maximumPercent > 100 would run
// two postgres servers over the same files). The first check becomes a
// warning when ephemeral (ephemeral_database: true); the second never does.
// No --force bypasses it. Pure.
func DataGuard(td *ecs.RegisterTaskDefinitionInput, svc *ecstypes.Service, ephemeral bool) Verdict {
	v := Verdict{Guard: GuardData, Outcome: Pass, Message: "no postgres container"}
	if td == nil {
		return v
	}
	vols := map[string]ecstypes.Volume{}
	for _, vol := range td.Volumes {
		vols[aws.ToString(vol.Name)] = vol
	}
	maxPct := int32(200) // the ECS default for a REPLICA service
	if svc != nil && svc.DeploymentConfiguration != nil && svc.DeploymentConfiguration.MaximumPercent != nil {
		maxPct = *svc.DeploymentConfiguration.MaximumPercent
	}
	var refuse, warn, ok []string
	for _, c := range td.ContainerDefinitions {
		isPG, major := postgresImage(aws.ToString(c.Image))
		if !isPG {
			continue
		}
		name := aws.ToString(c.Name)
		dirs := pgDataDirs(major, c.Environment)
		dataDir := dirs[0].mountAt
		var mount *ecstypes.MountPoint
		for i := range c.MountPoints {
			if covers(path.Clean(aws.ToString(c.MountPoints[i].ContainerPath)), dirs) {
				mount = &c.MountPoints[i]
				break
			}
		}
		if mount == nil {
			msg := fmt.Sprintf("container %q (%s) keeps its data in %s, which is on no volume: every deploy starts with an empty database. Add a volume (EFS, or a docker volume with scope \"shared\") mounted at %s",
				name, aws.ToString(c.Image), dataDir, dataDir)
			if ephemeral {
				warn = append(warn, fmt.Sprintf("container %q keeps its data in %s on no volume; ephemeral_database: true says every deploy starts with an empty database", name, dataDir))
			} else {
				refuse = append(refuse, msg+", or set ephemeral_database: true if an empty database on every deploy is intended.")
			}
			continue
		}
		volName := aws.ToString(mount.SourceVolume)
		vol, found := vols[volName]
		persistent, kind := volumeKind(vol, found)
		if !persistent {
			msg := fmt.Sprintf("container %q (%s) keeps its data in volume %q, which is %s: the data is lost when the task stops", name, aws.ToString(c.Image), volName, kind)
			if ephemeral {
				warn = append(warn, msg+"; ephemeral_database: true says that is intended")
			} else {
				refuse = append(refuse, msg+fmt.Sprintf(". Make volume %q persistent (EFS, or dockerVolumeConfiguration scope \"shared\"), or set ephemeral_database: true if an empty database on every deploy is intended.", volName))
			}
			continue
		}
		if st := Strategy(svc); st != string(ecstypes.DeploymentStrategyRolling) {
			refuse = append(refuse, fmt.Sprintf("container %q keeps its data in volume %q (%s), and the service deploys with the %s strategy: the new revision runs beside the old one, two postgres servers over the same data. Use the ROLLING strategy with maximumPercent 100.",
				name, volName, kind, st))
			continue
		}
		if maxPct > 100 {
			refuse = append(refuse, fmt.Sprintf("container %q keeps its data in volume %q (%s), and the service's deploymentConfiguration.maximumPercent is %d: ECS would start the new task while the old one runs, two postgres servers over the same data. Set maximumPercent to 100 (and minimumHealthyPercent to 0) on the service so the old task stops first.",
				name, volName, kind, maxPct))
			continue
		}
		ok = append(ok, fmt.Sprintf("container %q keeps its data in volume %q (%s); maximumPercent %d", name, volName, kind, maxPct))
	}
	switch {
	case len(refuse) > 0:
		v.Outcome, v.Message = Refuse, strings.Join(refuse, "; ")
	case len(warn) > 0:
		v.Outcome, v.Message = Warn, strings.Join(warn, "; ")
	case len(ok) > 0:
		v.Message = strings.Join(ok, "; ")
	}
	return v
}

// volumeKind says whether a task definition volume outlives its task, and
// names its kind for messages.
func volumeKind(vol ecstypes.Volume, found bool) (bool, string) {
	switch {
	case !found:
		return false, "not declared in volumes"
	case vol.EfsVolumeConfiguration != nil:
		return true, "EFS"
	case vol.FsxWindowsFileServerVolumeConfiguration != nil:
		return true, "FSx"
	case vol.DockerVolumeConfiguration != nil:
		if vol.DockerVolumeConfiguration.Scope == ecstypes.ScopeShared {
			return true, "docker volume, scope shared"
		}
		return false, "a docker volume with scope task (removed with the task)"
	case aws.ToBool(vol.ConfiguredAtLaunch):
		return false, "configured at launch (a per-task volume)"
	case vol.Host != nil && aws.ToString(vol.Host.SourcePath) != "":
		return true, "host path " + aws.ToString(vol.Host.SourcePath)
	}
	return false, "a bind mount with no host path (removed with the task)"
}
