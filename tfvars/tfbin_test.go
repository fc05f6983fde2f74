package tfvars

import (
	"os"
	"path/filepath"
	"testing"
)

// terraformBinary returns the stack's Terraform 1.5.7 (TF_BINARY, as
// `scripts/stack env` sets it, or the stack's cache). Skipped under -short.
func terraformBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Terraform (the local stack's 1.5.7); skipped with -short")
	}
	if b := os.Getenv("TF_BINARY"); b != "" {
		return b
	}
	home, _ := os.UserHomeDir()
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		cache = filepath.Join(home, ".cache")
	}
	b := filepath.Join(cache, "ctjdeploy", "tf-1.5.7", "terraform")
	if _, err := os.Stat(b); err != nil {
		t.Fatalf("Terraform 1.5.7 not found at %s and TF_BINARY unset: run `scripts/stack up` (it installs it)", b)
	}
	return b
}
