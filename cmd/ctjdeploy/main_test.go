package main

import (
	"os"
	"testing"

	"github.com/hackforla/ctjdeploy/push"
)

// TestMain lets the test binary answer as docker-credential-ctjdeploy, as
// the real binary does: deploys under test give os.Executable() to docker
// build --cache-from as the credential helper.
func TestMain(m *testing.M) {
	if push.IsCredentialHelper() {
		os.Exit(push.RunCredentialHelper(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
