package lease

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// counted counts the requests made to SSM.
type counted struct {
	SSM
	n atomic.Int64
}

func (c *counted) PutParameter(ctx context.Context, in *ssm.PutParameterInput, opts ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	c.n.Add(1)
	return c.SSM.PutParameter(ctx, in, opts...)
}

func (c *counted) GetParameterHistory(ctx context.Context, in *ssm.GetParameterHistoryInput, opts ...func(*ssm.Options)) (*ssm.GetParameterHistoryOutput, error) {
	c.n.Add(1)
	return c.SSM.GetParameterHistory(ctx, in, opts...)
}

// The lock never has two holders, on the stack's SSM (moto, through
// AWS_ENDPOINT_URL): 500 rounds of two runs taking over one stale lock at
// once, and 500 of a run taking over a stale lock while its holder
// releases it. Each round has a parameter of its own; rounds run 8 at a
// time. Exactly one holder each round, by Acquire's word and by the
// parameter's versions (raceRound). Its time is moto's: a round makes
// about 8 requests, and moto answers one in about 3 ms on an idle
// machine (more concurrency does not help: moto is one Python process).
func TestLockRacesOnStack(t *testing.T) {
	st := teststack.Start(t)
	n := teststack.NewNames(t)
	s := &counted{SSM: ssm.NewFromConfig(st.AWSConfig(t))}
	start := time.Now()
	t.Run("two takeovers of a stale lock", func(t *testing.T) {
		runRounds(t, s, "/"+n.Prefix+"takeovers/", 500, 8, false, false)
	})
	t.Run("a takeover racing a release", func(t *testing.T) {
		runRounds(t, s, "/"+n.Prefix+"release/", 500, 8, true, false)
	})
	t.Logf("1000 rounds in %s, %d SSM requests", time.Since(start).Round(time.Millisecond), s.n.Load())
}
