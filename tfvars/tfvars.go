// Package tfvars reads Terraform outputs (`terraform output -json`) through
// terraform-exec, keeping each output's sensitive flag.
package tfvars

// Output is one Terraform output.
type Output struct {
	Value     any  // decoded JSON: string, float64/json.Number, bool, []any, map[string]any
	Sensitive bool
}

// Outputs maps output names to outputs.
type Outputs map[string]Output
