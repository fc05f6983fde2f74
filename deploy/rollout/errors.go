package rollout

import (
	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

func refusedf(format string, args ...any) error { return exitcode.Refusedf(format, args...) }
