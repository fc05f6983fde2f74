package tfvars

import (
	"testing"

	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// terraformBinary returns the local stack's Terraform (1.5 or newer) (skipped under
// -short, like every test that needs the stack).
func terraformBinary(t *testing.T) string {
	t.Helper()
	return teststack.Start(t).TerraformBinary
}
