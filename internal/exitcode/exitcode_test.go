package exitcode

import (
	"errors"
	"fmt"
	"testing"
)

func TestOf(t *testing.T) {
	base := errors.New("boom")
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, OK},
		{"plain", base, Failed},
		{"invalid", Invalidf("bad %s", "flag"), Invalid},
		{"wrapped invalid", fmt.Errorf("loading: %w", Invalidf("bad")), Invalid},
		{"refused", Refusedf("guard"), Refused},
		{"rolled back", Wrap(RolledBack, base), RolledBack},
		{"not recovered", Wrap(NotRecovered, base), NotRecovered},
		{"outermost wins", Wrap(TimedOut, Wrap(Failed, base)), TimedOut},
	}
	for _, c := range cases {
		if got := Of(c.err); got != c.want {
			t.Errorf("%s: Of = %d, want %d", c.name, got, c.want)
		}
	}
	if Wrap(Invalid, nil) != nil {
		t.Error("Wrap(nil) must stay nil")
	}
	if !errors.Is(Wrap(Refused, base), base) {
		t.Error("Wrap must keep the chain")
	}
}
