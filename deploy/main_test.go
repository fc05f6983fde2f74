package deploy

import (
	"os"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// TestMain lays the stack's environment over the process once, so that the
// stack tests (each with its own cluster, service, repositories and
// simulator) can run side by side.
func TestMain(m *testing.M) { os.Exit(teststack.Main(m)) }
