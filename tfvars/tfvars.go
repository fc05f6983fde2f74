// Package tfvars reads Terraform outputs (`terraform output -json`) through
// terraform-exec, keeping each output's sensitive flag.
//
// Read runs Terraform; everything else is pure. Every value of a sensitive
// output is registered with report.AddSecret as soon as it is read, so no
// renderer ever prints it.
//
// # Timeout
//
// Every Terraform command Read runs (init, workspace select, output) runs
// under a timeout: Options.Timeout, else the environment variable
// CTJDEPLOY_TERRAFORM_TIMEOUT (a Go duration such as 30s or 10m, for users
// whose backend is slow and for tests), else DefaultTimeout (3 minutes).
// A command still running then is interrupted (SIGINT), killed 3 s later
// if it has not ended, and Read fails with an error naming the directory,
// the command and the likely causes (a state lock held by another run, a
// backend it cannot reach).
package tfvars

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/terraform-exec/tfexec"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
)

// Output is one Terraform output, as `terraform output -json` prints it.
type Output struct {
	// Value is the output's value as JSON text.
	Value json.RawMessage
	// Type is Terraform's type constraint as JSON: "string", "number",
	// "bool", ["list","string"], ["object",{...}], ...
	Type      json.RawMessage
	Sensitive bool
}

// Outputs maps output names to outputs.
type Outputs map[string]Output

// Options says where and how to run Terraform.
type Options struct {
	Dir       string // the directory `terraform output` runs in (required)
	Workspace string // optional: `terraform workspace select WORKSPACE` first
	Init      bool   // run `terraform init` first
	// Binary is the terraform (or tofu) executable. Empty: $TF_BINARY, else
	// `terraform`, else `tofu` on PATH.
	Binary string
	// Timeout bounds each Terraform command. 0: $CTJDEPLOY_TERRAFORM_TIMEOUT,
	// else DefaultTimeout (see the package comment).
	Timeout time.Duration
}

// DefaultTimeout bounds each Terraform command when neither Options.Timeout
// nor CTJDEPLOY_TERRAFORM_TIMEOUT says otherwise.
const DefaultTimeout = 3 * time.Minute

// TimeoutEnv is the environment variable that overrides DefaultTimeout.
const TimeoutEnv = "CTJDEPLOY_TERRAFORM_TIMEOUT"

// waitDelay is how long an interrupted Terraform command has to end before
// it is killed.
const waitDelay = 3 * time.Second

// timeout resolves the timeout of each Terraform command (see Options).
func timeout(opts Options) (time.Duration, error) {
	if opts.Timeout > 0 {
		return opts.Timeout, nil
	}
	v := os.Getenv(TimeoutEnv)
	if v == "" {
		return DefaultTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, exitcode.Invalidf("%s=%q is not a positive duration (write it as Go does: 90s, 5m, 1h): fix or unset it", TimeoutEnv, v)
	}
	return d, nil
}

// installHelp says how to get a Terraform binary.
const installHelp = "install Terraform (https://developer.hashicorp.com/terraform/install) or OpenTofu (https://opentofu.org/docs/intro/install/) so that `terraform` or `tofu` is on PATH, or set TF_BINARY to the executable's path"

// FindBinary resolves the Terraform executable: explicit if set, else
// $TF_BINARY, else `terraform`, then `tofu` on PATH. A missing binary is an
// invalid-input error (exit 2) that says how to install one.
func FindBinary(explicit string) (string, error) {
	if explicit == "" {
		explicit = os.Getenv("TF_BINARY")
	}
	if explicit != "" {
		p, err := exec.LookPath(explicit)
		if err != nil {
			return "", exitcode.Invalidf("Terraform binary %q (from TF_BINARY) not found or not executable: %v; %s", explicit, err, installHelp)
		}
		return p, nil
	}
	for _, name := range []string{"terraform", "tofu"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", exitcode.Invalidf("neither `terraform` nor `tofu` is on PATH (needed to read Terraform outputs): %s", installHelp)
}

// Read runs `terraform output -json` in opts.Dir (after `terraform init` and
// `terraform workspace select` when asked) and returns its outputs. Errors:
// a missing binary or directory, and a directory with no outputs (no state),
// are invalid input (exit 2); a failing Terraform command is exit 1 with
// Terraform's own message.
//
// The subprocess inherits the caller's environment (CHECKPOINT_DISABLE,
// TF_CLI_CONFIG_FILE, credentials...), minus the variables terraform-exec
// reserves for itself (TF_LOG*, TF_WORKSPACE, TF_CLI_ARGS*, TF_VAR_*);
// terraform-exec's own logger is left discarding, and Terraform's stdout
// (which carries the values) is never logged.
func Read(ctx context.Context, opts Options) (Outputs, error) {
	if opts.Dir == "" {
		return nil, exitcode.Invalidf("no Terraform directory configured (terraform.dir)")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, exitcode.Invalidf("Terraform directory %s: %v", opts.Dir, err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, exitcode.Invalidf("Terraform directory %s does not exist or is not a directory: check terraform.dir in the config file", dir)
	}
	bin, err := FindBinary(opts.Binary)
	if err != nil {
		return nil, err
	}
	limit, err := timeout(opts)
	if err != nil {
		return nil, err
	}
	// run runs one Terraform command under the timeout; a command the
	// timeout ended is an error of its own (Terraform's, if any, is only
	// the interrupt's).
	run := func(command string, f func(context.Context) error) error {
		cctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		err := f(cctx)
		if err != nil && ctx.Err() != nil {
			// Interrupted: terraform-exec's error may then hold no error
			// at all (its cmdErr with a nil err panics on Error() when the
			// context ended before the command started), so say it here.
			return fmt.Errorf("`%s` in %s stopped: %w", command, dir, ctx.Err())
		}
		if err != nil && errors.Is(cctx.Err(), context.DeadlineExceeded) {
			return timeoutError{fmt.Errorf("`%s` in %s did not end within %s (the timeout of each Terraform command; %s=DURATION changes it): "+
				"it is most likely waiting for a state lock another Terraform run holds, or for a backend (S3, Terraform Cloud...) it cannot reach, or for input; "+
				"it was interrupted and then killed. Run `%s` in %s by hand to see what it waits for: wait for the other run to end "+
				"(`terraform force-unlock LOCK_ID` only if no run holds the lock), or fix the backend's network or credentials, then deploy again",
				command, dir, limit, TimeoutEnv, command, dir)}
		}
		return err
	}
	tf, err := tfexec.NewTerraform(dir, bin)
	if err != nil {
		return nil, exitcode.Invalidf("terraform in %s: %v", dir, err)
	}
	// On an interrupt terraform-exec sends terraform SIGINT and by default
	// waits 60 s before killing it; reading outputs writes nothing, so a
	// few seconds are enough (SetWaitDelay is not supported on Windows).
	_ = tf.SetWaitDelay(waitDelay)
	if opts.Init {
		if err := run("terraform init", func(ctx context.Context) error { return tf.Init(ctx, tfexec.Upgrade(false)) }); err != nil {
			if isTimeout(err) || ctx.Err() != nil {
				return nil, err
			}
			return nil, fmt.Errorf("terraform init in %s failed (fix the configuration or its backend credentials, then retry): %w", dir, trimErr(err))
		}
	}
	if opts.Workspace != "" {
		if err := run("terraform workspace select "+opts.Workspace, func(ctx context.Context) error { return tf.WorkspaceSelect(ctx, opts.Workspace) }); err != nil {
			if isTimeout(err) || ctx.Err() != nil {
				return nil, err
			}
			return nil, exitcode.Wrap(exitcode.Invalid, fmt.Errorf("terraform workspace select %s in %s failed (does the workspace exist? `terraform workspace list` shows them): %w", opts.Workspace, dir, trimErr(err)))
		}
	}
	var metas map[string]tfexec.OutputMeta
	err = run("terraform output -json", func(ctx context.Context) (err error) {
		metas, err = tf.Output(ctx)
		return err
	})
	if err != nil {
		if isTimeout(err) || ctx.Err() != nil {
			return nil, err
		}
		hint := ""
		if !opts.Init {
			hint = " (if the directory was never initialized, run `terraform init` there or set terraform.init: true)"
		}
		return nil, fmt.Errorf("terraform output in %s failed%s: %w", dir, hint, trimErr(err))
	}
	outs := make(Outputs, len(metas))
	for name, m := range metas {
		o := Output{Value: m.Value, Type: m.Type, Sensitive: m.Sensitive}
		if o.Sensitive {
			registerSecret(o.Value)
		}
		outs[name] = o
	}
	if len(outs) == 0 {
		ws := ""
		if opts.Workspace != "" {
			ws = fmt.Sprintf(" (workspace %s)", opts.Workspace)
		}
		return nil, exitcode.Invalidf("Terraform in %s%s has no outputs: there is no state there yet, or the configuration declares no outputs; run `terraform init && terraform apply` in %s, then deploy again", dir, ws, dir)
	}
	return outs, nil
}

// timeoutError is a Terraform command the timeout ended.
type timeoutError struct{ error }

func (e timeoutError) Unwrap() error { return e.error }

func isTimeout(err error) bool {
	var te timeoutError
	return errors.As(err, &te)
}

// trimErr drops trailing blank lines from a terraform-exec error (it appends
// Terraform's stderr).
func trimErr(err error) (out error) {
	defer func() {
		// terraform-exec's cmdErr panics on Error() when it holds no error.
		if recover() != nil {
			out = errors.New("terraform failed without a message")
		}
	}()
	msg := strings.TrimRight(err.Error(), "\n ")
	return errors.New(msg)
}

// registerSecret registers a sensitive value with report.AddSecret: the
// string itself for a string, and for anything else its JSON text, its
// scalar form and every string inside it.
func registerSecret(raw json.RawMessage) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		report.AddSecret(string(raw))
		return
	}
	if s, ok := v.(string); ok {
		report.AddSecret(s)
		return
	}
	report.AddSecret(string(raw))
	var compact bytes.Buffer
	if json.Compact(&compact, raw) == nil {
		report.AddSecret(compact.String())
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			report.AddSecret(v)
		case json.Number:
			if s, err := numberString(v); err == nil {
				report.AddSecret(s)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
}

// Names lists the outputs' names, sorted.
func (o Outputs) Names() []string {
	names := make([]string, 0, len(o))
	for n := range o {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// TypeName is a short name of the output's Terraform type: string, number,
// bool, list, set, tuple, map, object (or "unknown").
func (o Output) TypeName() string {
	var t any
	if err := json.Unmarshal(o.Type, &t); err == nil {
		switch t := t.(type) {
		case string:
			return t
		case []any:
			if len(t) > 0 {
				if s, ok := t[0].(string); ok {
					return s
				}
			}
		}
	}
	// No type given (hand-built Outputs): guess from the value.
	switch v := bytes.TrimSpace(o.Value); {
	case len(v) == 0:
		return "unknown"
	case v[0] == '"':
		return "string"
	case v[0] == '[':
		return "list"
	case v[0] == '{':
		return "object"
	case bytes.Equal(v, []byte("true")) || bytes.Equal(v, []byte("false")):
		return "bool"
	case bytes.Equal(v, []byte("null")):
		return "null"
	}
	return "number"
}

// Scalar returns output name as a string: a string as is, a number in plain
// decimal (5432, 0.5, never 5.432e+03), a bool as true/false. A missing
// output, or a list, map, object or null one, is an invalid-input error
// (exit 2) naming the output; a missing one lists the outputs that exist.
func (o Outputs) Scalar(name string) (string, error) {
	out, ok := o[name]
	if !ok {
		have := "none"
		if len(o) > 0 {
			have = strings.Join(o.Names(), ", ")
		}
		return "", exitcode.Invalidf("Terraform has no output %q; the outputs are: %s (add the output to the Terraform configuration and apply, or fix the name in the template)", name, have)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(out.Value))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", exitcode.Invalidf("Terraform output %q has a value that is not JSON", name)
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		if v {
			return "true", nil
		}
		return "false", nil
	case json.Number:
		s, err := numberString(v)
		if err != nil {
			return "", exitcode.Invalidf("Terraform output %q is not a number Go can read", name)
		}
		return s, nil
	case nil:
		return "", exitcode.Invalidf("Terraform output %q is null: give it a value in the Terraform configuration", name)
	}
	return "", exitcode.Invalidf("Terraform output %q is a %s, not a string, number or bool: a template can only insert scalars; export the element you need as its own output (e.g. output \"x\" { value = ...[0] } or join(\",\", ...))", name, out.TypeName())
}

// numberString formats a JSON number in plain decimal with no exponent and
// no trailing zeros: 5432, 5432.0 and 5.432e3 are all "5432".
func numberString(n json.Number) (string, error) {
	f, _, err := big.ParseFloat(string(n), 10, 512, big.ToNearestEven)
	if err != nil {
		return "", err
	}
	if f.IsInt() {
		i, _ := f.Int(nil)
		return i.String(), nil
	}
	s := f.Text('f', -1)
	return s, nil
}
