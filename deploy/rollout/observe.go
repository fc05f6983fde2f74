package rollout

import (
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/report"
)

// observer reports what Follow sees: each new service event once (oldest
// first, none older than Since), each new note of a deployment in
// progress, and the deployment's counts whenever they change.
type observer struct {
	ph       *report.Phase
	id       string    // the deployment followed
	since    time.Time // events older than this are not reported
	seen     map[string]bool
	all      []ecstypes.ServiceEvent // reported, oldest first (a failure repeats the last)
	note     string                  // the last state's reason
	progress string                  // the last counts reported
}

func newObserver(ph *report.Phase, o FollowOptions) *observer {
	return &observer{ph: ph, id: o.DeploymentID, since: o.Since, seen: map[string]bool{}}
}

// events reports the service's events not reported yet.
func (w *observer) events(svc *ecstypes.Service) {
	var fresh []ecstypes.ServiceEvent
	for _, e := range svc.Events {
		id := aws.ToString(e.Id)
		if w.seen[id] {
			continue
		}
		w.seen[id] = true
		if e.CreatedAt != nil && e.CreatedAt.Before(w.since.Add(-time.Second)) {
			continue
		}
		fresh = append(fresh, e)
	}
	sort.SliceStable(fresh, func(i, j int) bool {
		return aws.ToTime(fresh[i].CreatedAt).Before(aws.ToTime(fresh[j].CreatedAt))
	})
	for _, e := range fresh {
		w.ph.Line("event", aws.ToString(e.Message))
	}
	w.all = append(w.all, fresh...)
}

// state reports st's reason when it is new and the deployment goes on, and
// our deployment's counts when they changed. While ECS rolls back, a reason
// that differs only in its count of failed tasks is not new: the breaker
// has triggered, and more failures say nothing more.
func (w *observer) state(st State) {
	note := st.Reason
	if st.RollingBack {
		note = WithoutCounts(note)
	}
	if note != w.note && st.Phase == InProgress && st.Reason != "" {
		w.ph.Infof("%s", st.Reason)
	}
	w.note = note
	if d := st.Ours; d != nil {
		p := fmt.Sprintf("%d/%d %d %d", d.RunningCount, d.DesiredCount, d.PendingCount, d.FailedTasks)
		if p != w.progress {
			w.progress = p
			w.ph.Progress("deployment "+w.id, int64(d.RunningCount), int64(d.DesiredCount),
				fmt.Sprintf("running, %d pending, %d failed", d.PendingCount, d.FailedTasks))
		}
	}
}

var failedCountRE = regexp.MustCompile(`\b\d+ failed tasks?\b`)

// WithoutCounts is s with its counts of failed tasks ("3 failed tasks")
// made one ("N failed tasks"), to tell whether two messages say the same
// thing but for how many tasks have failed so far.
func WithoutCounts(s string) string {
	return failedCountRE.ReplaceAllString(s, "N failed tasks")
}
