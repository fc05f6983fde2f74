package rollout

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/awserr"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
)

// PinnedDigests maps each container of a definition whose image is pinned
// by digest (REPO@sha256:...) to that digest. Pure.
func PinnedDigests(containers []ecstypes.ContainerDefinition) map[string]string {
	out := map[string]string{}
	for _, c := range containers {
		img := aws.ToString(c.Image)
		if i := strings.LastIndex(img, "@"); i >= 0 {
			out[aws.ToString(c.Name)] = img[i+1:]
		}
	}
	return out
}

// Verification is what Verify found.
type Verification struct {
	Tasks    int      `json:"tasks"`              // running tasks of the revision checked
	Problems []string `json:"problems,omitempty"` // one line per mismatch
}

// CheckDigests compares the running tasks of revision taskDef with want
// (container name → digest). Pure: every running task of the revision must
// run each wanted container with exactly the wanted digest; tasks of other
// revisions are ignored. wantTasks > 0 and no task of the revision running is
// a problem too.
func CheckDigests(tasks []ecstypes.Task, taskDef string, want map[string]string, wantTasks int32) Verification {
	var v Verification
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, t := range tasks {
		if aws.ToString(t.TaskDefinitionArn) != taskDef || aws.ToString(t.LastStatus) != "RUNNING" {
			continue
		}
		v.Tasks++
		id := aws.ToString(t.TaskArn)
		id = ecsread.ID(id)
		got := map[string]string{}
		for _, c := range t.Containers {
			got[aws.ToString(c.Name)] = aws.ToString(c.ImageDigest)
		}
		for _, n := range names {
			g, ok := got[n]
			switch {
			case !ok:
				v.Problems = append(v.Problems, fmt.Sprintf("task %s has no container %q", id, n))
			case g == "":
				v.Problems = append(v.Problems, fmt.Sprintf("task %s: ECS reports no image digest for container %q (want %s)", id, n, want[n]))
			case g != want[n]:
				v.Problems = append(v.Problems, fmt.Sprintf("task %s: container %q runs %s, not the pushed %s", id, n, g, want[n]))
			}
		}
	}
	if v.Tasks == 0 && wantTasks > 0 {
		v.Problems = append(v.Problems, fmt.Sprintf("no running task of %s found", ecsread.ShortARN(taskDef)))
	}
	return v
}

// Verify reads the service's running tasks (ListTasks + DescribeTasks, two
// calls) and checks that those of taskDef run the digests pinned in it
// (want: container → digest). Mismatches are an error (exit 1) listing each.
func Verify(ctx context.Context, api ECS, cluster, service, taskDef string, want map[string]string, wantTasks int32) (Verification, error) {
	lt, err := api.ListTasks(ctx, &ecs.ListTasksInput{
		Cluster: aws.String(cluster), ServiceName: aws.String(service), DesiredStatus: ecstypes.DesiredStatusRunning,
	})
	if err != nil {
		return Verification{}, awserr.Wrap(fmt.Sprintf("listing the running tasks of service %s (ecs:ListTasks)", service), err)
	}
	var tasks []ecstypes.Task
	for arns := lt.TaskArns; len(arns) > 0; {
		n := min(len(arns), 100)
		dt, err := api.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns[:n]})
		if err != nil {
			return Verification{}, awserr.Wrap(fmt.Sprintf("reading the running tasks of service %s (ecs:DescribeTasks)", service), err)
		}
		tasks = append(tasks, dt.Tasks...)
		arns = arns[n:]
	}
	v := CheckDigests(tasks, taskDef, want, wantTasks)
	if len(v.Problems) > 0 {
		return v, fmt.Errorf("the running tasks of service %s do not run the pushed images:\n  %s\nthe deployment completed, but what runs is not what was pushed; check the images in the task definition and the registry (`ctjdeploy ENV status`)",
			service, strings.Join(v.Problems, "\n  "))
	}
	return v, nil
}
