package taskrun

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hackforla/ctjdeploy/internal/teststack"

	dcli "github.com/moby/moby/client"
)

func TestDependencyLevels(t *testing.T) {
	hc := &HealthCheck{Command: []string{"CMD-SHELL", "true"}}
	cs := []ContainerSpec{
		{Name: "next", Essential: true, DependsOn: []Dependency{{"django", "START"}}},
		{Name: "django", Essential: true, DependsOn: []Dependency{{"pgdb", "HEALTHY"}, {"migrate", "SUCCESS"}}},
		{Name: "pgdb", Essential: true, HealthCheck: hc},
		{Name: "migrate", DependsOn: []Dependency{{"pgdb", "HEALTHY"}}},
	}
	got, err := DependencyLevels(cs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"pgdb": 0, "migrate": 1, "django": 2, "next": 3}
	for n, l := range want {
		if got[n] != l {
			t.Errorf("level of %s = %d, want %d (all: %v)", n, got[n], l, got)
		}
	}
	for _, tc := range []struct {
		cs   []ContainerSpec
		want string
	}{
		{[]ContainerSpec{{Name: "a", DependsOn: []Dependency{{"b", "START"}}}, {Name: "b", DependsOn: []Dependency{{"a", "START"}}}}, "cycle: a -> b -> a"},
		{[]ContainerSpec{{Name: "a", DependsOn: []Dependency{{"b", "SUCCESS"}}}, {Name: "b", Essential: true}}, "b is essential"},
		{[]ContainerSpec{{Name: "a", DependsOn: []Dependency{{"b", "HEALTHY"}}}, {Name: "b"}}, "b has no healthCheck"},
		{[]ContainerSpec{{Name: "a", DependsOn: []Dependency{{"c", "START"}}}}, `depends on "c"`},
		{[]ContainerSpec{{Name: "a", DependsOn: []Dependency{{"b", "READY"}}}, {Name: "b"}}, `condition "READY"`},
	} {
		if _, err := DependencyLevels(tc.cs); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DependencyLevels(%+v) = %v, want an error with %q", tc.cs, err, tc.want)
		}
	}
}

// A container waits for its dependencies' conditions (HEALTHY through
// Docker's own health check, SUCCESS of a container that exits 0) and gets
// its workingDirectory, user, ulimits, memory limit and the task's labels;
// a SUCCESS dependency that exits 1 fails the start and leaves nothing.
func TestEngineDependsOnAndContainerSettings(t *testing.T) {
	e, _, _ := engTestEngine(t)
	ctx := context.Background()
	id := "deps-" + teststack.RandHex(4)
	t0 := time.Now()
	rt, err := e.Start(ctx, TaskSpec{ID: id, Labels: map[string]string{"ctjdeploy.env": "deps-test"}, Containers: []ContainerSpec{
		{Name: "app", Image: teststack.BaseImage, Essential: true, DependsOn: []Dependency{{"db", "HEALTHY"}, {"init", "SUCCESS"}},
			EntryPoint: []string{"sh", "-c"}, Command: []string{`echo "pwd=$(pwd) uid=$(id -u) nofile=$(ulimit -n)"; exec sleep 300`},
			WorkingDir: "/tmp", User: "65534", Ulimits: []Ulimit{{Name: "nofile", Soft: 100, Hard: 200}}, Memory: 64, MemoryReservation: 32, CPU: 256, Init: true},
		{Name: "db", Image: teststack.BaseImage, Essential: true, Init: true, StopTimeout: 2,
			HealthCheck: &HealthCheck{Command: []string{"CMD-SHELL", "test -f /tmp/ready"}, Interval: time.Second, Timeout: time.Second, Retries: 2},
			EntryPoint:  []string{"sh", "-c"}, Command: []string{"sleep 1.5; touch /tmp/ready; exec sleep 300"}},
		{Name: "init", Image: teststack.BaseImage, EntryPoint: []string{"sh", "-c"}, Command: []string{"echo init-done"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Start with dependsOn took %s", time.Since(t0).Round(time.Millisecond))
	if h := rt.Health("db"); h != "healthy" {
		t.Errorf("app started while db was %q (dependsOn HEALTHY)", h)
	}
	if code, ok := rt.ContainerExit("init"); !ok || code != 0 {
		t.Errorf("app started while init had not exited 0 (exited %v, code %d)", ok, code)
	}
	lines := engWaitLogs(t, rt, "app", "pwd=", 10*time.Second)
	if got := strings.Join(lines, "|"); !strings.Contains(got, "pwd=/tmp uid=65534 nofile=100") {
		t.Errorf("app printed %q, want pwd=/tmp uid=65534 nofile=100", got)
	}
	ins, err := e.cli.ContainerInspect(ctx, e.ContainerName(id, "app"), dcli.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if hc := ins.Container.HostConfig; hc.Memory != 64<<20 || hc.MemoryReservation != 32<<20 || hc.CPUShares != 256 {
		t.Errorf("app limits: memory %d, reservation %d, cpu shares %d; want 64 MiB, 32 MiB, 256", hc.Memory, hc.MemoryReservation, hc.CPUShares)
	}
	if ins.Container.Config.Labels["ctjdeploy.env"] != "deps-test" {
		t.Errorf("app labels %v: no ctjdeploy.env=deps-test", ins.Container.Config.Labels)
	}
	t1 := time.Now()
	if err := rt.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// db (Init: the stop signal reaches sleep) stops well within its stopTimeout.
	t.Logf("Stop took %s", time.Since(t1).Round(time.Millisecond))
	if left := engTaskContainers(t, e, id); len(left) != 0 {
		t.Errorf("containers left after Stop: %v", left)
	}

	id2 := "depsfail-" + teststack.RandHex(4)
	_, err = e.Start(ctx, TaskSpec{ID: id2, Containers: []ContainerSpec{
		{Name: "app", Image: teststack.BaseImage, Essential: true, DependsOn: []Dependency{{"init", "SUCCESS"}}, Command: []string{"sleep", "300"}},
		{Name: "init", Image: teststack.BaseImage, EntryPoint: []string{"sh", "-c"}, Command: []string{"echo migration failed >&2; exit 3"}},
	}})
	if err == nil || !strings.Contains(err.Error(), "init exited with code 3") || !strings.Contains(err.Error(), "migration failed") {
		t.Errorf("Start with a failing SUCCESS dependency: %v, want init exited with code 3 and its output", err)
	}
	if left := engTaskContainers(t, e, id2); len(left) != 0 {
		t.Errorf("containers left after the failed start: %v", left)
	}
}
