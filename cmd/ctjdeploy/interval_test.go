package main

import (
	"strings"
	"testing"
	"time"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

func TestPollInterval(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want time.Duration
		err  bool
	}{
		{"", 0, false},
		{"200ms", 200 * time.Millisecond, false},
		{"3s", 3 * time.Second, false},
		{"1m", time.Minute, false},
		{"99ms", 0, true},
		{"2m", 0, true},
		{"-1s", 0, true},
		{"3", 0, true},
		{"fast", 0, true},
	} {
		t.Run(tc.v, func(t *testing.T) {
			t.Setenv(PollIntervalEnv, tc.v)
			got, err := pollInterval()
			if tc.err {
				if exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), PollIntervalEnv) {
					t.Fatalf("%q: %v (exit %d), want exit 2 naming %s", tc.v, err, exitcode.Of(err), PollIntervalEnv)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("%q: %s, %v; want %s", tc.v, got, err, tc.want)
			}
		})
	}
}
