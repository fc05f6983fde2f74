package main

import (
	"testing"

	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// TestMain lets the test binary answer as docker-credential-ctjdeploy, as
// the real binary does: deploys under test give os.Executable() to docker
// build --cache-from as the credential helper.
func TestMain(m *testing.M) { teststack.Main(m) }
