package main

import (
	"os"
	"testing"

	"github.com/hackforla/ctjdeploy/push"
)

// TestMain lets the test binary answer as docker-credential-ctjdeploy, as
// the real binary does: deploys under test give os.Executable() to docker
// build --cache-from as the credential helper. With CTJDEPLOY_TEST_AS_MAIN=1
// it is ctjdeploy itself, main() and all: the process tests
// (process_stack_test.go) start it as a real process without a second build.
func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		main()
	}
	if push.IsCredentialHelper() {
		os.Exit(push.RunCredentialHelper(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

const asMainEnv = "CTJDEPLOY_TEST_AS_MAIN"
