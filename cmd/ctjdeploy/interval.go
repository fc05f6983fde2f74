package main

import (
	"os"
	"time"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// PollIntervalEnv sets how often a deploy or a rollback polls ECS while it
// follows a rollout (default rollout.DefaultInterval, 3 s, as against ECS,
// whose rollouts take minutes). The local stack's simulator ends a rollout
// in a fraction of a second, so its environment (`scripts/stack env`) and
// the tests poll faster.
const PollIntervalEnv = "CTJDEPLOY_POLL_INTERVAL"

// Bounds of PollIntervalEnv: faster than 100 ms only adds DescribeServices
// calls to the account's API rate; slower than a minute misses a rollback
// by that long.
const (
	minPollInterval = 100 * time.Millisecond
	maxPollInterval = time.Minute
)

// pollInterval is PollIntervalEnv's value, 0 (the default) when it is
// unset; a value that is not a duration within the bounds is exit 2.
func pollInterval() (time.Duration, error) {
	v := os.Getenv(PollIntervalEnv)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < minPollInterval || d > maxPollInterval {
		return 0, exitcode.Invalidf("%s=%q: give a duration from %s to %s (e.g. 3s), or unset it for the default 3s", PollIntervalEnv, v, minPollInterval, maxPollInterval)
	}
	return d, nil
}
