package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/hackforla/ctjdeploy/internal/ecssim"
	"github.com/hackforla/ctjdeploy/internal/taskrun"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// The example's pgdb on the stack is a real PostgreSQL (scripts/stack
// builds postgres:18 from Debian's postgresql-15 with debootstrap); the
// stand-in busybox image, which runs no database, is labelled otherwise.
func needRealPostgres(t *testing.T) {
	t.Helper()
	out, err := exec.Command("/usr/bin/docker", "image", "inspect", "-f", `{{ index .Config.Labels "org.ctjdeploy.stack-base" }}`, "postgres:18").CombinedOutput()
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(out)), "debian-pg15") {
		t.Fatalf("postgres:18 on the stack is not the Debian PostgreSQL image (label %q, %v): run scripts/stack up, whose base-images step builds it", strings.TrimSpace(string(out)), err)
	}
	if _, err := exec.LookPath("psql"); err != nil {
		t.Skip("no psql on the host (apt-get install postgresql-client)")
	}
}

// pgConn is how the host reaches a task's pgdb: user, database and password
// as the task definition gives them to the container.
type pgConn struct{ user, db, password string }

// pgConnOf reads pgdb's POSTGRES_USER, POSTGRES_DB and the secret
// POSTGRES_PASSWORD from the registered revision; the simulator sets a
// secret to "ecssim-secret-<parameter name>" (it reads no SSM).
func pgConnOf(t *testing.T, moto *ecs.Client, td string) pgConn {
	t.Helper()
	out, err := moto.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(td)})
	if err != nil {
		t.Fatal(err)
	}
	var c pgConn
	for _, cd := range out.TaskDefinition.ContainerDefinitions {
		if aws.ToString(cd.Name) != "pgdb" {
			continue
		}
		for _, e := range cd.Environment {
			switch aws.ToString(e.Name) {
			case "POSTGRES_USER":
				c.user = aws.ToString(e.Value)
			case "POSTGRES_DB":
				c.db = aws.ToString(e.Value)
			}
		}
		for _, s := range cd.Secrets {
			if aws.ToString(s.Name) == "POSTGRES_PASSWORD" {
				c.password = "ecssim-secret-" + path.Base(aws.ToString(s.ValueFrom))
			}
		}
	}
	if c.user == "" || c.db == "" || c.password == "" {
		t.Fatalf("revision %s: pgdb lacks POSTGRES_USER, POSTGRES_DB or the POSTGRES_PASSWORD secret: %+v", td, c)
	}
	return c
}

// psql runs sql on 127.0.0.1:port, retrying while the server is not up
// yet (initdb on a first start takes seconds), and returns psql's
// unaligned output (quiet: no command tags).
func (c pgConn) psql(t *testing.T, port int, sql string, within time.Duration) string {
	t.Helper()
	var out []byte
	var err error
	if teststack.Poll(within, 300*time.Millisecond, func() bool {
		cmd := exec.Command("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-U", c.user, "-d", c.db, "-c", sql)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+c.password, "PGCONNECT_TIMEOUT=3")
		out, err = cmd.CombinedOutput()
		return err == nil
	}) {
		return strings.TrimSpace(string(out))
	}
	t.Fatalf("psql on 127.0.0.1:%d (user %s, database %s) within %s: %v\n%s", port, c.user, c.db, within, err, out)
	return ""
}

// runningPgdb waits for the service's RUNNING task with real containers
// whose ARN is not old, and returns it and pgdb's host port.
func runningPgdb(t *testing.T, f *fixture, old string) (string, int) {
	t.Helper()
	var arn string
	var port int
	if teststack.Poll(60*time.Second, 200*time.Millisecond, func() bool {
		arn, port = f.sim.RunningTaskPort(f.n.Cluster, f.n.Service, 5432)
		return port != 0 && arn != old
	}) {
		return arn, port
	}
	t.Fatalf("no running task (other than %q) publishes pgdb's port 5432 within 60s (last: %q %d)", old, arn, port)
	return "", 0
}

// The database survives a deploy: a row written into the running task's
// postgres is read back from the next revision's task, which ECS (here the
// simulator, maximumPercent 100) starts after stopping the old one, on the
// same shared Docker volume (the example's pgdata, scope shared,
// autoprovision) mounted at /var/lib/postgresql.
func TestRealContainersDatabaseSurvivesADeploy(t *testing.T) {
	t.Parallel() // its own cluster, service, repositories and simulator (TestMain: the stack's environment)
	if testing.Short() {
		t.Skip("needs the stack")
	}
	teststack.Start(t).Setenv(t)
	needRealPostgres(t)
	label := "org.ctjdeploy.ecssim.test=" + strings.ToLower(t.Name())
	eng, err := taskrun.NewEngine(taskrun.EngineOptions{RegistryUser: teststack.RegistryUser, RegistryPassword: teststack.RegistryPassword, Label: label, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	var group string
	t.Cleanup(func() {
		ctx := context.Background()
		_ = eng.Cleanup(ctx)
		if group != "" {
			if _, err := eng.RemoveSharedVolumes(ctx, group); err != nil {
				t.Errorf("removing the test's shared volume: %v", err)
			}
		}
		eng.Close()
	})
	f := newFixture(t, ecssim.Success, 100, func(o *ecssim.Options) { o.Engine = eng })
	group = f.n.Cluster + "/" + f.n.Service
	f.deps.Logs = cloudwatchlogs.NewFromConfig(f.st.AWSConfig(t), func(o *cloudwatchlogs.Options) { o.BaseEndpoint = f.deps.ECS.(*ecs.Client).Options().BaseEndpoint })
	o := f.opts(f.c[1])
	o.Timeout = 2 * time.Minute
	first, err := Run(context.Background(), o, f.deps)
	if err != nil || first.Outcome != "deployed" {
		t.Fatalf("first deploy with real containers: %v %+v", err, first.Outcome)
	}
	pg := pgConnOf(t, f.moto, first.TaskDefARN)
	task1, port1 := runningPgdb(t, f, "")
	marker := "survives-" + f.c[1][:12]
	if got := pg.psql(t, port1, "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL); INSERT INTO notes (body) VALUES ('"+marker+"') RETURNING id", 90*time.Second); got != "1" {
		t.Fatalf("insert into task %s's postgres: %q, want id 1", task1, got)
	}
	if got := pg.psql(t, port1, "SHOW data_directory", 10*time.Second); got != "/var/lib/postgresql/18/docker" {
		t.Errorf("data_directory = %q, want /var/lib/postgresql/18/docker (postgres 18's layout, on the pgdata volume)", got)
	}
	vol := taskrun.SharedVolume(group, "pgdata")
	if out, err := exec.Command("/usr/bin/docker", "volume", "inspect", "-f", "{{.Name}}", vol).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != vol {
		t.Fatalf("the shared volume %s: %v %s", vol, err, out)
	}

	// A new commit: the backend changes, so a new revision rolls out.
	next := t.TempDir()
	src := f.env.Images["django"].Context
	if out, err := exec.Command("cp", "-r", src+"/.", next).CombinedOutput(); err != nil {
		t.Fatalf("copying %s: %v %s", src, err, out)
	}
	if err := os.WriteFile(filepath.Join(next, "REVISION"), []byte(f.c[2]+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.env.Images["django"].Context = next
	o = f.opts(f.c[2])
	o.Timeout = 2 * time.Minute
	second, err := Run(context.Background(), o, f.deps)
	if err != nil || second.Outcome != "deployed" {
		t.Fatalf("second deploy: %v %+v", err, second.Outcome)
	}
	if second.TaskDefARN == first.TaskDefARN {
		t.Fatalf("the second deploy registered no new revision (%s): nothing rolled out", second.TaskDefARN)
	}
	task2, port2 := runningPgdb(t, f, task1)
	if got := pg.psql(t, port2, "SELECT id || ':' || body FROM notes", 90*time.Second); got != "1:"+marker {
		t.Fatalf("task %s (revision %s) reads %q from notes, want the row task %s wrote: 1:%s", task2, second.TaskDefARN, got, task1, marker)
	}
	// The old task is gone: maximumPercent 100 stops it before the new one
	// starts, so one postgres at a time used the data directory; the old one
	// shut down cleanly (its stop signal, SIGINT), so the new one found the
	// cluster shut down, not interrupted.
	logs, err := exec.Command("/usr/bin/docker", "logs", "ecssim-"+path.Base(task2)+"-pgdb").CombinedOutput()
	if err != nil {
		t.Fatalf("the new task's pgdb log: %v %s", err, logs)
	}
	if !strings.Contains(string(logs), "Skipping initialization") || !strings.Contains(string(logs), "database system was shut down at") || strings.Contains(string(logs), "automatic recovery in progress") {
		t.Errorf("the new task's postgres did not start on a cleanly shut down cluster (the old one still running, or killed?):\n%s", logs)
	}
	out, err := exec.Command("/usr/bin/docker", "ps", "-a", "--filter", "label="+label, "--filter", "volume="+vol, "--format", "{{.Names}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	if names := strings.Fields(string(out)); len(names) != 1 || !strings.Contains(names[0], path.Base(task2)) {
		t.Errorf("containers on %s after the deploy: %v, want only the new task's pgdb", vol, names)
	}
}

// What the data guard prevents (it refuses maximumPercent 200 when
// postgres keeps its data on a task volume): two tasks of the service at
// once, two postgres servers over one data directory. Shown with the
// simulator's engine as ECS would run them: each task in its own
// namespaces, both on the service's shared pgdata volume.
//
// What really happens: postgres's lock file does not protect the data. The
// second server reads postmaster.pid, finds the PID in it (1) is its own
// (each container has its own PID namespace, and postgres is PID 1 in
// both), takes the lock file for a stale one, runs crash recovery over the
// live cluster and accepts connections. Each server then has its own shared
// buffers: a row the first commits is invisible to the second, and their
// writes to the same files will corrupt the cluster. The lock only works
// when both servers share a PID namespace: then the second refuses with
// `lock file "postmaster.pid" already exists`.
func TestDataGuardHazardTwoPostgresOnOneVolume(t *testing.T) {
	t.Parallel() // its own cluster, service, repositories and simulator (TestMain: the stack's environment)
	if testing.Short() {
		t.Skip("needs the stack")
	}
	teststack.Start(t).Setenv(t)
	needRealPostgres(t)
	label := "org.ctjdeploy.ecssim.test=" + strings.ToLower(t.Name())
	eng, err := taskrun.NewEngine(taskrun.EngineOptions{Label: label, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	n := teststack.NewNames(t)
	group := n.Cluster + "/" + n.Service
	vol := taskrun.SharedVolume(group, "pgdata")
	third := "ecssim-hazard-third-" + path.Base(n.Service)
	t.Cleanup(func() {
		ctx := context.Background()
		_ = exec.Command("/usr/bin/docker", "rm", "-f", third).Run()
		_ = eng.Cleanup(ctx)
		if _, err := eng.RemoveSharedVolumes(ctx, group); err != nil {
			t.Errorf("removing %s: %v", vol, err)
		}
		eng.Close()
	})
	pg := pgConn{user: "civictechjobs_owner", db: "civictechjobs", password: "ecssim-secret-hazard"}
	spec := func(id string) taskrun.TaskSpec {
		return taskrun.TaskSpec{ID: id, Group: group,
			Volumes: []taskrun.VolumeSpec{{Name: "pgdata", Docker: &taskrun.DockerVolumeSpec{Scope: "shared", Autoprovision: true, Driver: "local"}}},
			Containers: []taskrun.ContainerSpec{{Name: "pgdb", Image: "postgres:18", Essential: true, PortMappings: []int{5432},
				Environment: map[string]string{"POSTGRES_USER": pg.user, "POSTGRES_DB": pg.db, "POSTGRES_PASSWORD": pg.password},
				Mounts:      []taskrun.MountSpec{{SourceVolume: "pgdata", ContainerPath: "/var/lib/postgresql"}}}}}
	}
	ctx := context.Background()
	run := fmt.Sprint(time.Now().UnixNano() % 1e9)
	a, err := eng.Start(ctx, spec("hazard-a-"+run))
	if err != nil {
		t.Fatal(err)
	}
	pg.psql(t, a.HostPort(5432), "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('first')", 90*time.Second)

	// The second task's postgres, while the first runs.
	b, err := eng.Start(ctx, spec("hazard-b-"+run))
	if err != nil {
		t.Fatal(err)
	}
	if got := pg.psql(t, b.HostPort(5432), "SELECT count(*) FROM notes", 60*time.Second); got != "1" {
		t.Fatalf("the second server counts %q rows, want the 1 on the volume", got)
	}
	logB := strings.Join(b.Logs("pgdb", 0), "\n")
	for _, want := range []string{
		"PostgreSQL Database directory appears to contain a database; Skipping initialization",
		"database system was not properly shut down; automatic recovery in progress",
		"database system is ready to accept connections",
	} {
		if !strings.Contains(logB, want) {
			t.Errorf("the second server's log lacks %q:\n%s", want, logB)
		}
	}
	if strings.Contains(logB, `lock file "postmaster.pid" already exists`) {
		t.Errorf("the second server refused the lock, yet answered:\n%s", logB)
	}
	select {
	case x := <-a.Exited():
		t.Fatalf("the first server exited (%+v) when the second started", x)
	default:
	}
	// Split brain: the first commits a row, the second does not see it.
	pg.psql(t, a.HostPort(5432), "INSERT INTO notes VALUES ('second')", 10*time.Second)
	if got := pg.psql(t, a.HostPort(5432), "SELECT count(*) FROM notes", 10*time.Second); got != "2" {
		t.Fatalf("the first server counts %q rows after its insert, want 2", got)
	}
	if got := pg.psql(t, b.HostPort(5432), "SELECT count(*) FROM notes", 10*time.Second); got != "1" {
		t.Errorf("the second server counts %q rows after the first committed one more, want 1 (each has its own buffers)", got)
	}
	t.Logf("two postgres servers over %s: both accept connections; the second ran crash recovery over the live cluster and does not see the first's commit", vol)

	// The lock does work in one PID namespace: a third server that shares
	// the first's refuses to start.
	ids, err := exec.Command("/usr/bin/docker", "ps", "-q", "--filter", "label="+label, "--filter", "name=hazard-a-"+run, "--filter", "volume="+vol).Output()
	if err != nil || len(strings.Fields(string(ids))) != 1 {
		t.Fatalf("the first task's pgdb container: %q %v", ids, err)
	}
	out, err := exec.Command("/usr/bin/docker", "run", "--name", third, "--pid=container:"+strings.TrimSpace(string(ids)),
		"-v", vol+":/var/lib/postgresql", "-e", "POSTGRES_PASSWORD="+pg.password, "postgres:18").CombinedOutput()
	if err == nil {
		t.Fatalf("a third postgres in the first's PID namespace started:\n%s", out)
	}
	for _, want := range []string{`FATAL:  lock file "postmaster.pid" already exists`, `Is another postmaster (PID 1) running in data directory "/var/lib/postgresql/18/docker"?`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the third server's output lacks %q:\n%s", want, out)
		}
	}
	_ = a.Stop(ctx)
	_ = b.Stop(ctx)
}
