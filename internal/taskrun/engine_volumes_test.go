package taskrun

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hackforla/ctjdeploy/internal/teststack"

	cerrdefs "github.com/containerd/errdefs"
	dcli "github.com/moby/moby/client"
)

// A shared volume outlives its task and the service's next task reads what
// the first wrote; a task-scoped volume is fresh for each task and removed
// with it; a host sourcePath is a bind mount; a read-only mount refuses
// writes; a shared volume without autoprovision that does not exist fails
// the start.
func TestEngineVolumes(t *testing.T) {
	e, _, _ := engTestEngine(t)
	ctx := context.Background()
	group := "vcluster-" + teststack.RandHex(4) + "/svc"
	host := t.TempDir()
	t.Cleanup(func() { _, _ = e.RemoveSharedVolumes(context.Background(), group) })
	vols := []VolumeSpec{
		{Name: "data", Docker: &DockerVolumeSpec{Scope: "shared", Autoprovision: true, Driver: "local"}},
		{Name: "scratch", Docker: &DockerVolumeSpec{Scope: "task", Driver: "local"}},
		{Name: "hostdir", HostPath: filepath.Join(host, "sub")},
	}
	mounts := []MountSpec{
		{SourceVolume: "data", ContainerPath: "/data"},
		{SourceVolume: "scratch", ContainerPath: "/scratch"},
		{SourceVolume: "hostdir", ContainerPath: "/host"},
		{SourceVolume: "data", ContainerPath: "/ro", ReadOnly: true},
	}
	run := func(id, script string) *RunningTask {
		t.Helper()
		rt, err := e.Start(ctx, TaskSpec{ID: id, Group: group, Volumes: vols, Containers: []ContainerSpec{
			{Name: "app", Image: teststack.BaseImage, Essential: true, Mounts: mounts,
				Command: []string{"sh", "-c", script + "; echo DONE; exec sleep 1000"}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	a := run("vol-a-"+teststack.RandHex(4), `echo from-a > /data/f; echo from-a > /scratch/f; echo from-a > /host/f; echo x > /ro/g 2>&1 || echo RO-REFUSED`)
	lines := engWaitLogs(t, a, "app", "DONE", 30*time.Second)
	if !strings.Contains(strings.Join(lines, "|"), "RO-REFUSED") {
		t.Errorf("a write to the read-only mount did not fail: %q", lines)
	}
	if b, err := os.ReadFile(filepath.Join(host, "sub", "f")); err != nil || string(b) != "from-a\n" {
		t.Errorf("host sourcePath file: %q %v, want from-a (the bind mount)", b, err)
	}
	a.mu.Lock()
	taskVol := append([]string(nil), a.taskVols...)
	a.mu.Unlock()
	if len(taskVol) != 1 {
		t.Fatalf("task volumes of a: %v, want one", taskVol)
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cli.VolumeInspect(ctx, taskVol[0], dcli.VolumeInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("the task-scoped volume %s after its task stopped: %v, want it removed", taskVol[0], err)
	}
	shared := SharedVolume(group, "data")
	if _, err := e.cli.VolumeInspect(ctx, shared, dcli.VolumeInspectOptions{}); err != nil {
		t.Fatalf("the shared volume %s after its task stopped: %v, want it kept", shared, err)
	}

	b := run("vol-b-"+teststack.RandHex(4), `echo "data=$(cat /data/f)"; echo "scratch=$(ls /scratch | wc -l)"; echo "host=$(cat /host/f)"`)
	defer b.Stop(ctx)
	got := strings.Join(engWaitLogs(t, b, "app", "DONE", 30*time.Second), "|")
	for _, want := range []string{"data=from-a", "scratch=0", "host=from-a"} {
		if !strings.Contains(got, want) {
			t.Errorf("the second task's output %q lacks %q", got, want)
		}
	}
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	names, err := e.RemoveSharedVolumes(ctx, group)
	if err != nil || len(names) != 1 || names[0] != shared {
		t.Errorf("RemoveSharedVolumes = %v, %v, want [%s]", names, err, shared)
	}

	_, err = e.Start(ctx, TaskSpec{ID: "vol-c-" + teststack.RandHex(4), Group: group,
		Volumes: []VolumeSpec{{Name: "data", Docker: &DockerVolumeSpec{Scope: "shared"}}},
		Containers: []ContainerSpec{{Name: "app", Image: teststack.BaseImage, Essential: true,
			Mounts: []MountSpec{{SourceVolume: "data", ContainerPath: "/data"}}, Command: []string{"true"}}}})
	if err == nil || !strings.Contains(err.Error(), "does not exist and autoprovision is false") {
		t.Errorf("start with a missing shared volume and no autoprovision: %v", err)
	}
	_, err = e.Start(ctx, TaskSpec{ID: "vol-d-" + teststack.RandHex(4), Containers: []ContainerSpec{{Name: "app", Image: teststack.BaseImage, Essential: true,
		Mounts: []MountSpec{{SourceVolume: "nope", ContainerPath: "/x"}}}}})
	if err == nil || !strings.Contains(err.Error(), `mounts volume "nope", which the task definition does not declare`) {
		t.Errorf("start with an undeclared sourceVolume: %v", err)
	}
}
