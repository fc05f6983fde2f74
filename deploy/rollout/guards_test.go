package rollout

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

func TestInProgressGuard(t *testing.T) {
	t.Parallel()
	const inProg, done = ecstypes.DeploymentRolloutStateInProgress, ecstypes.DeploymentRolloutStateCompleted
	tests := []struct {
		name  string
		deps  []ecstypes.Deployment
		force bool
		want  Outcome
		msg   string
	}{
		{"steady", []ecstypes.Deployment{dep(other, "PRIMARY", tdOld, done, "", 1, 0, 1, 0)}, false, Pass, ""},
		{"in progress", []ecstypes.Deployment{dep(other, "PRIMARY", tdNew, inProg, "", 1, 1, 0, 0), dep("ecs-svc/9", "ACTIVE", tdOld, done, "", 1, 0, 1, 0)}, false, Refuse, "ecs-svc/2222"},
		{"in progress, forced", []ecstypes.Deployment{dep(other, "PRIMARY", tdNew, inProg, "", 1, 1, 0, 0)}, true, Bypassed, "--force"},
		{"two live deployments without rollout state", []ecstypes.Deployment{dep(other, "PRIMARY", tdNew, "", "", 1, 0, 1, 0), dep("ecs-svc/9", "ACTIVE", tdOld, "", "", 1, 0, 1, 0)}, false, Refuse, "2 deployments"},
		{"FAILED PRIMARY (breaker without rollback), old still ACTIVE, nothing in progress: the fix may go", []ecstypes.Deployment{dep(other, "PRIMARY", tdNew, ecstypes.DeploymentRolloutStateFailed, "cb", 1, 0, 0, 3), dep("ecs-svc/9", "ACTIVE", tdOld, done, "", 1, 0, 1, 0)}, false, Pass, "FAILED and nothing is in progress"},
		{"FAILED ACTIVE while a rollback is IN_PROGRESS: still refused", []ecstypes.Deployment{dep("ecs-svc/9", "PRIMARY", tdOld, inProg, "", 1, 1, 0, 0), dep(other, "ACTIVE", tdNew, ecstypes.DeploymentRolloutStateFailed, "cb", 1, 0, 0, 3)}, false, Refuse, "ecs-svc/9"},
		{"old INACTIVE one is fine", []ecstypes.Deployment{dep(other, "PRIMARY", tdNew, done, "", 1, 0, 1, 0), dep("ecs-svc/9", "INACTIVE", tdOld, "", "", 0, 0, 0, 0)}, false, Pass, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := InProgressGuard(&ecstypes.Service{Deployments: tt.deps}, tt.force)
			if v.Outcome != tt.want || !strings.Contains(v.Message, tt.msg) {
				t.Errorf("got %s %q, want %s containing %q", v.Outcome, v.Message, tt.want, tt.msg)
			}
		})
	}
}

func TestStaleCommitGuard(t *testing.T) {
	t.Parallel()
	const a, b = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	tests := []struct {
		name       string
		tag, live  string
		anc        Ancestry
		note       string
		force      bool
		want       Outcome
		msgContain string
	}{
		{"no live commit tag", a, "", IsAncestor, "", false, Pass, "no ctjdeploy:commit"},
		{"same commit", a, a, IsAncestor, "", false, Pass, "same commit"},
		{"newer", a, b, NotAncestor, "", false, Pass, "not an ancestor"},
		{"older", a, b, IsAncestor, "", false, Refuse, "rollback --to aaaaaaaaaaaa"},
		{"older, forced", a, b, IsAncestor, "", true, Bypassed, "--force"},
		{"shallow clone", a, b, CannotTell, "shallow clone", false, Warn, "shallow clone"},
		{"cannot tell, forced is still a warning", a, b, CannotTell, "", true, Warn, "cannot tell"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := StaleCommitGuard("stage", tt.tag, tt.live, tt.anc, tt.note, tt.force)
			if v.Outcome != tt.want || !strings.Contains(v.Message, tt.msgContain) {
				t.Errorf("got %s %q, want %s containing %q", v.Outcome, v.Message, tt.want, tt.msgContain)
			}
		})
	}
}

func pgTD(image, mount string, vol *ecstypes.Volume, env ...ecstypes.KeyValuePair) *ecs.RegisterTaskDefinitionInput {
	c := ecstypes.ContainerDefinition{Name: aws.String("pgdb"), Image: aws.String(image), Environment: env}
	if mount != "" {
		c.MountPoints = []ecstypes.MountPoint{{SourceVolume: aws.String("pgdata"), ContainerPath: aws.String(mount)}}
	}
	td := &ecs.RegisterTaskDefinitionInput{Family: aws.String("f"), ContainerDefinitions: []ecstypes.ContainerDefinition{
		{Name: aws.String("django"), Image: aws.String("r/backend@sha256:1")}, c}}
	if vol != nil {
		vol.Name = aws.String("pgdata")
		td.Volumes = []ecstypes.Volume{*vol}
	}
	return td
}

func svcMax(max int32) *ecstypes.Service {
	return &ecstypes.Service{DeploymentConfiguration: &ecstypes.DeploymentConfiguration{MaximumPercent: aws.Int32(max), MinimumHealthyPercent: aws.Int32(0)}}
}

func TestDataGuard(t *testing.T) {
	t.Parallel()
	shared := &ecstypes.Volume{DockerVolumeConfiguration: &ecstypes.DockerVolumeConfiguration{Scope: ecstypes.ScopeShared}}
	taskScope := func() *ecstypes.Volume {
		return &ecstypes.Volume{DockerVolumeConfiguration: &ecstypes.DockerVolumeConfiguration{Scope: ecstypes.ScopeTask}}
	}
	efs := func() *ecstypes.Volume {
		return &ecstypes.Volume{EfsVolumeConfiguration: &ecstypes.EFSVolumeConfiguration{FileSystemId: aws.String("fs-1")}}
	}
	bind := func() *ecstypes.Volume { return &ecstypes.Volume{} }
	hostPath := func() *ecstypes.Volume {
		return &ecstypes.Volume{Host: &ecstypes.HostVolumeProperties{SourcePath: aws.String("/srv/pg")}}
	}
	pgdataEnv := ecstypes.KeyValuePair{Name: aws.String("PGDATA"), Value: aws.String("/srv/pgdata/db")}
	tests := []struct {
		name      string
		td        *ecs.RegisterTaskDefinitionInput
		svc       *ecstypes.Service
		ephemeral bool
		want      Outcome
		msg       string
	}{
		{"no postgres", &ecs.RegisterTaskDefinitionInput{ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("x"), Image: aws.String("nginx")}}}, svcMax(200), false, Pass, "no postgres"},
		{"pg18 on shared docker volume, max 100", pgTD("postgres:18", "/var/lib/postgresql", shared), svcMax(100), false, Pass, "scope shared"},
		{"pg18 on EFS, max 100", pgTD("public.ecr.aws/docker/library/postgres:18.1", "/var/lib/postgresql", efs()), svcMax(100), false, Pass, "EFS"},
		{"pg18 on host path, max 100", pgTD("postgres:18", "/var/lib/postgresql", hostPath()), svcMax(100), false, Pass, "host path"},
		{"pg18 on shared volume, max 200: two servers on one volume", pgTD("postgres:18", "/var/lib/postgresql", shared), svcMax(200), false, Refuse, "maximumPercent to 100"},
		{"max 200 is refused even with ephemeral_database", pgTD("postgres:18", "/var/lib/postgresql", efs()), svcMax(200), true, Refuse, "two postgres servers"},
		{"service without deployment configuration defaults to 200", pgTD("postgres:18", "/var/lib/postgresql", shared), &ecstypes.Service{}, false, Refuse, "maximumPercent is 200"},
		{"max 100 but BLUE_GREEN: both revisions run side by side", pgTD("postgres:18", "/var/lib/postgresql", shared), func() *ecstypes.Service {
			s := svcMax(100)
			s.DeploymentConfiguration.Strategy = ecstypes.DeploymentStrategyBlueGreen
			return s
		}(), false, Refuse, "BLUE_GREEN strategy"},
		{"no mount at all", pgTD("postgres:18", "", nil), svcMax(100), false, Refuse, "on no volume"},
		{"no mount, ephemeral", pgTD("postgres:18", "", nil), svcMax(200), true, Warn, "ephemeral_database"},
		{"pg18 mounted at the old data dir only", pgTD("postgres:18", "/var/lib/postgresql/data", shared), svcMax(100), false, Refuse, "/var/lib/postgresql,"},
		{"pg16 at /var/lib/postgresql/data", pgTD("postgres:16-alpine", "/var/lib/postgresql/data", shared), svcMax(100), false, Pass, ""},
		{"pg16 at the parent: the image's VOLUME shadows it", pgTD("postgres:16", "/var/lib/postgresql", shared), svcMax(100), false, Refuse, "/var/lib/postgresql/data"},
		{"untagged image accepts either dir", pgTD("postgres@sha256:abc", "/var/lib/postgresql/data", shared), svcMax(100), false, Pass, ""},
		{"task-scoped docker volume", pgTD("postgres:18", "/var/lib/postgresql", taskScope()), svcMax(100), false, Refuse, "scope task"},
		{"task-scoped docker volume, ephemeral", pgTD("postgres:18", "/var/lib/postgresql", taskScope()), svcMax(100), true, Warn, "ephemeral_database"},
		{"bind mount without host path", pgTD("postgres:18", "/var/lib/postgresql", bind()), svcMax(100), false, Refuse, "no host path"},
		{"volume not declared", pgTD("postgres:18", "/var/lib/postgresql", nil), svcMax(100), false, Refuse, "not declared"},
		{"PGDATA elsewhere, mounted", pgTD("postgres:18", "/srv/pgdata", shared, pgdataEnv), svcMax(100), false, Pass, ""},
		{"PGDATA elsewhere, default dir mounted", pgTD("postgres:18", "/var/lib/postgresql", shared, pgdataEnv), svcMax(100), false, Refuse, "/srv/pgdata/db"},
		{"mypostgres is not postgres", pgTD("example/mypostgres:18", "", nil), svcMax(200), false, Pass, "no postgres"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := DataGuard(tt.td, tt.svc, tt.ephemeral)
			if v.Outcome != tt.want || !strings.Contains(v.Message, tt.msg) {
				t.Errorf("got %s %q, want %s containing %q", v.Outcome, v.Message, tt.want, tt.msg)
			}
		})
	}
}

func TestGuardsForceNeverBypassesData(t *testing.T) {
	t.Parallel()
	svc := svcMax(200)
	svc.Deployments = []ecstypes.Deployment{dep(other, "PRIMARY", tdNew, ecstypes.DeploymentRolloutStateInProgress, "", 1, 1, 0, 0)}
	vs := Guards(GuardInput{Env: "stage", Service: svc, Rendered: pgTD("postgres:18", "", nil),
		Tag: "a", LiveCommit: "b", Ancestry: IsAncestor, Force: true})
	got := map[string]Outcome{}
	for _, v := range vs {
		got[v.Guard] = v.Outcome
	}
	if got[GuardInProgress] != Bypassed || got[GuardStaleCommit] != Bypassed || got[GuardData] != Refuse {
		t.Fatalf("verdicts %v", got)
	}
	err := Refusal(vs)
	if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "data guard") || strings.Contains(err.Error(), "in-progress guard") {
		t.Fatalf("Refusal = %v (code %d)", err, exitcode.Of(err))
	}
	if Refusal([]Verdict{{Guard: "x", Outcome: Warn}, {Guard: "y", Outcome: Bypassed}}) != nil {
		t.Fatal("warnings and bypasses must not refuse")
	}
}

func TestCheckDigests(t *testing.T) {
	t.Parallel()
	want := PinnedDigests([]ecstypes.ContainerDefinition{
		{Name: aws.String("django"), Image: aws.String("127.0.0.1:5055/b@sha256:d1")},
		{Name: aws.String("next"), Image: aws.String("127.0.0.1:5055/f@sha256:n1")},
		{Name: aws.String("pgdb"), Image: aws.String("postgres:18")},
	})
	if len(want) != 2 || want["django"] != "sha256:d1" || want["next"] != "sha256:n1" {
		t.Fatalf("PinnedDigests = %v", want)
	}
	task := func(td, status string, digests ...string) ecstypes.Task {
		t := ecstypes.Task{TaskArn: aws.String("arn:aws:ecs:r:1:task/c/abc"), TaskDefinitionArn: aws.String(td), LastStatus: aws.String(status)}
		for i := 0; i+1 < len(digests); i += 2 {
			t.Containers = append(t.Containers, ecstypes.Container{Name: aws.String(digests[i]), ImageDigest: aws.String(digests[i+1])})
		}
		return t
	}
	tests := []struct {
		name     string
		tasks    []ecstypes.Task
		problems int
		msg      string
	}{
		{"match", []ecstypes.Task{task(tdNew, "RUNNING", "django", "sha256:d1", "next", "sha256:n1", "pgdb", "sha256:p")}, 0, ""},
		{"old revision's tasks are ignored", []ecstypes.Task{task(tdNew, "RUNNING", "django", "sha256:d1", "next", "sha256:n1"), task(tdOld, "RUNNING", "django", "sha256:zz")}, 0, ""},
		{"other digest", []ecstypes.Task{task(tdNew, "RUNNING", "django", "sha256:d2", "next", "sha256:n1")}, 1, "runs sha256:d2, not the pushed sha256:d1"},
		{"no digest reported", []ecstypes.Task{task(tdNew, "RUNNING", "django", "", "next", "sha256:n1")}, 1, "no image digest"},
		{"container missing", []ecstypes.Task{task(tdNew, "RUNNING", "next", "sha256:n1")}, 1, "no container \"django\""},
		{"no running task", []ecstypes.Task{task(tdNew, "STOPPED", "django", "sha256:d1", "next", "sha256:n1")}, 1, "no running task"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := CheckDigests(tt.tasks, tdNew, want, 1)
			if len(v.Problems) != tt.problems || (tt.msg != "" && !strings.Contains(strings.Join(v.Problems, "\n"), tt.msg)) {
				t.Errorf("problems %q, want %d containing %q", v.Problems, tt.problems, tt.msg)
			}
		})
	}
}
