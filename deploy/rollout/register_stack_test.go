package rollout

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// lostAnswer passes RegisterTaskDefinition through to the simulator, then
// loses the first answers (applied: a timeout after ECS registered; not
// applied: a 503 before it did), as a black-holed response would.
type lostAnswer struct {
	ECS
	applied, refused int // how many calls lose their answer / fail unapplied
	calls            int
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "read tcp: i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var _ net.Error = timeoutErr{}

func (l *lostAnswer) RegisterTaskDefinition(ctx context.Context, in *ecs.RegisterTaskDefinitionInput, opts ...func(*ecs.Options)) (*ecs.RegisterTaskDefinitionOutput, error) {
	l.calls++
	if l.refused > 0 {
		l.refused--
		return nil, &smithy.GenericAPIError{Code: "ServiceUnavailable", Message: "injected"}
	}
	out, err := l.ECS.RegisterTaskDefinition(ctx, in, opts...)
	if err == nil && l.applied > 0 {
		l.applied--
		return nil, &smithyhttp.RequestSendError{Err: timeoutErr{}}
	}
	return out, err
}

func TestRegisterAdoptsTheRevisionOfATimedOutCall(t *testing.T) {
	e := newSimEnv(t, "")
	ctx := context.Background()
	live, err := ReadLive(ctx, e.api, e.names.Cluster, e.names.Service)
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		out, err := e.moto.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(e.names.Family)})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.TaskDefinitionArns)
	}
	defer func(b time.Duration) { RegisterBackoff = b }(RegisterBackoff)
	RegisterBackoff = 10 * time.Millisecond

	for _, c := range []struct {
		name             string
		applied, refused int
		calls            int
	}{
		{"answer lost after ECS registered", 1, 0, 1},
		{"two 503s before, then an answer lost", 1, 2, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := count()
			api := &lostAnswer{ECS: e.api, applied: c.applied, refused: c.refused}
			arn, err := Register(ctx, api, e.pinned(t, live, c.name), RegisterTags{Commit: "abc", Env: "stage"})
			if err != nil {
				t.Fatal(err)
			}
			if got := count() - before; got != 1 {
				t.Fatalf("%d new revisions, want 1 (a blind retry registers twice)", got)
			}
			if api.calls != c.calls {
				t.Fatalf("%d RegisterTaskDefinition calls, want %d", api.calls, c.calls)
			}
			td, err := e.moto.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(e.names.Family)})
			if err != nil || aws.ToString(td.TaskDefinition.TaskDefinitionArn) != arn {
				t.Fatalf("Register returned %s, the family's latest is %v (%v)", arn, td, err)
			}
		})
	}

	t.Run("every answer lost: gives up, says how many attempts", func(t *testing.T) {
		defer func(a int) { RegisterAttempts = a }(RegisterAttempts)
		RegisterAttempts = 3
		api := &lostAnswer{ECS: e.api, refused: 100}
		_, err := Register(ctx, api, e.pinned(t, live, "never"), RegisterTags{Commit: "abc", Env: "stage"})
		if err == nil || api.calls != 3 {
			t.Fatalf("err %v after %d calls, want an error after 3", err, api.calls)
		}
	})
}
