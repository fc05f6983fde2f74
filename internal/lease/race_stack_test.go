package lease

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// The lock never has two holders, on the stack's SSM (moto, through
// AWS_ENDPOINT_URL): 500 rounds of two runs taking over one stale lock at
// once, and 500 of a run taking over a stale lock while its holder
// releases it. Each round has a parameter of its own; rounds run 16 at a
// time. Exactly one holder each round, by Acquire's word and by the
// parameter's versions (raceRound).
func TestLockRacesOnStack(t *testing.T) {
	st := teststack.Start(t)
	n := teststack.NewNames(t)
	s := ssm.NewFromConfig(st.AWSConfig(t))
	start := time.Now()
	t.Run("two takeovers of a stale lock", func(t *testing.T) {
		runRounds(t, s, "/"+n.Prefix+"takeovers/", 500, 16, false, false)
	})
	t.Run("a takeover racing a release", func(t *testing.T) {
		runRounds(t, s, "/"+n.Prefix+"release/", 500, 16, true, false)
	})
	t.Logf("1000 rounds in %s", time.Since(start).Round(time.Millisecond))
}
