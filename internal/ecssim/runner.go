package ecssim

import "strings"

// fate is what a deployment's tasks do once started, in the emulated runner.
type fate int

const (
	fateHealthy     fate = iota // the task stays up: healthy
	fateExit1                   // the essential containers exit 1 at start
	fateUnplaceable             // no container instance can take the task
	fateWrongDigest             // healthy, but reports other image digests
)

// taskExit is how a task's essential container ended.
type taskExit struct {
	Container string
	ExitCode  int
	Reason    string
}

// taskRunner is the seam between the rollout model and what runs a task:
// start begins running the task's containers, poll reports (without
// blocking) the exit of an essential container once there is one, stop ends
// the task. The clock calls them under the simulator's lock, once per step.
//
// The emulated runner below decides exits from the deployment's fate; a
// Docker runner (engine.go's Engine, when it is wired behind Options) would
// start real containers and report their real exits.
type taskRunner interface {
	start(t *task) error
	poll(t *task) *taskExit
	stop(t *task)
}

// emulated runs nothing: a task of a failing deployment "exits" one step
// after it started (failAfter steps), every other task stays up.
type emulated struct{ failAfter int }

func (emulated) start(*task) error { return nil }

func (e emulated) poll(t *task) *taskExit {
	if t.fate != fateExit1 || t.age < e.failAfter {
		return nil
	}
	name := ""
	for _, c := range t.Containers {
		if !isDatabase(c) {
			name = c.Name
			break
		}
	}
	return &taskExit{Container: name, ExitCode: 1, Reason: "Essential container in task exited"}
}

func (emulated) stop(*task) {}

// isDatabase tells the example's task-local postgres container, which the
// emulated failures leave alone (it exits 0 when ECS stops the task).
func isDatabase(c container) bool {
	return strings.HasPrefix(c.Name, "pg") || strings.Contains(c.Image, "postgres")
}
