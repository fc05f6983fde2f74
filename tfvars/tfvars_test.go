package tfvars

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
)

func out(value, typ string, sensitive bool) Output {
	return Output{Value: json.RawMessage(value), Type: json.RawMessage(typ), Sensitive: sensitive}
}

func TestScalar(t *testing.T) {
	outs := Outputs{
		"s":      out(`"hello \"world\""`, `"string"`, false),
		"int":    out(`5432`, `"number"`, false),
		"intdot": out(`5432.0`, `"number"`, false),
		"exp":    out(`5.432e3`, `"number"`, false),
		"frac":   out(`0.1`, `"number"`, false),
		"neg":    out(`-12.50`, `"number"`, false),
		"big":    out(`123456789012345678901234567890`, `"number"`, false),
		"t":      out(`true`, `"bool"`, false),
		"f":      out(`false`, `"bool"`, false),
		"empty":  out(`""`, `"string"`, false),
		"list":   out(`["a","b"]`, `["tuple",["string","string"]]`, false),
		"map":    out(`{"a":"b"}`, `["map","string"]`, false),
		"obj":    out(`{"a":1}`, `["object",{"a":"number"}]`, false),
		"null":   out(`null`, `"string"`, false),
	}
	tests := []struct {
		name    string
		want    string
		wantErr []string // substrings of the error; nil: no error
	}{
		{"s", `hello "world"`, nil},
		{"int", "5432", nil},
		{"intdot", "5432", nil},
		{"exp", "5432", nil},
		{"frac", "0.1", nil},
		{"neg", "-12.5", nil},
		{"big", "123456789012345678901234567890", nil},
		{"t", "true", nil},
		{"f", "false", nil},
		{"empty", "", nil},
		{"list", "", []string{`"list"`, "tuple", "not a string, number or bool"}},
		{"map", "", []string{`"map"`, "is a map"}},
		{"obj", "", []string{`"obj"`, "is a object"}},
		{"null", "", []string{`"null"`, "is null"}},
		{"nope", "", []string{`no output "nope"`, "big, empty, exp, f, frac, int, intdot, list, map, neg, null, obj, s, t"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := outs.Scalar(tc.name)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Scalar(%q) error: %v", tc.name, err)
				}
				if got != tc.want {
					t.Fatalf("Scalar(%q) = %q, want %q", tc.name, got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Scalar(%q) = %q, want an error", tc.name, got)
			}
			if exitcode.Of(err) != exitcode.Invalid {
				t.Errorf("exit code %d, want %d", exitcode.Of(err), exitcode.Invalid)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestScalarMissingWithNoOutputs(t *testing.T) {
	_, err := Outputs{}.Scalar("x")
	if err == nil || !strings.Contains(err.Error(), "the outputs are: none") {
		t.Fatalf("err = %v", err)
	}
}

func TestTypeNameWithoutType(t *testing.T) {
	for v, want := range map[string]string{`"x"`: "string", `1`: "number", `true`: "bool", `[1]`: "list", `{}`: "object", `null`: "null"} {
		if got := (Output{Value: json.RawMessage(v)}).TypeName(); got != want {
			t.Errorf("TypeName(%s) = %s, want %s", v, got, want)
		}
	}
}

func TestRegisterSecretNonString(t *testing.T) {
	registerSecret(json.RawMessage(`{"user": "admin-user-x", "pin": 98765}`))
	for _, s := range []string{"admin-user-x", "98765", `{"user":"admin-user-x","pin":98765}`} {
		if got := report.Mask("<" + s + ">"); got != "<***>" {
			t.Errorf("Mask(%q) = %q: not registered", s, got)
		}
	}
}

func TestFindBinaryMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("TF_BINARY", "")
	_, err := FindBinary("")
	if err == nil {
		t.Fatal("FindBinary found a binary on an empty PATH")
	}
	if exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "install Terraform") || !strings.Contains(err.Error(), "TF_BINARY") {
		t.Fatalf("err = %v (code %d)", err, exitcode.Of(err))
	}
	t.Setenv("TF_BINARY", "/nonexistent/terraform")
	_, err = FindBinary("")
	if err == nil || exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "/nonexistent/terraform") {
		t.Fatalf("err = %v", err)
	}
	// Read reports the same before running anything.
	_, err = Read(context.Background(), Options{Dir: t.TempDir()})
	if err == nil || exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "install Terraform") {
		t.Fatalf("Read err = %v", err)
	}
}

func TestFindBinaryOrder(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("shell scripts")
	}
	dir := t.TempDir()
	for _, n := range []string{"tofu", "terraform"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	t.Setenv("TF_BINARY", "")
	if p, err := FindBinary(""); err != nil || p != filepath.Join(dir, "terraform") {
		t.Fatalf("FindBinary = %q, %v; want terraform first", p, err)
	}
	os.Remove(filepath.Join(dir, "terraform"))
	if p, err := FindBinary(""); err != nil || p != filepath.Join(dir, "tofu") {
		t.Fatalf("FindBinary = %q, %v; want tofu", p, err)
	}
	t.Setenv("TF_BINARY", filepath.Join(dir, "tofu"))
	if p, err := FindBinary("/explicit/wins"); err == nil {
		t.Fatalf("explicit binary ignored: %q", p)
	}
}

func TestReadMissingDir(t *testing.T) {
	_, err := Read(context.Background(), Options{Dir: filepath.Join(t.TempDir(), "nope")})
	if err == nil || exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v", err)
	}
}

// --- with real Terraform -----------------------------------------------------

// exampleDir is the example's outputs-only Terraform configuration.
var exampleDir = filepath.Join("..", "example", "infra", "stage")

// tfWorkdir copies the example's outputs-only configuration into a fresh
// directory (so tests never touch the shared example state), and sets up a
// hermetic Terraform environment.
func tfWorkdir(t *testing.T, files map[string]string) string {
	t.Helper()
	bin := terraformBinary(t)
	t.Setenv("TF_BINARY", bin)
	t.Setenv("CHECKPOINT_DISABLE", "1")
	rc := filepath.Join(t.TempDir(), "empty.tfrc")
	if err := os.WriteFile(rc, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TF_CLI_CONFIG_FILE", rc)
	dir := t.TempDir()
	if files == nil {
		data, err := os.ReadFile(filepath.Join(exampleDir, "outputs.tf"))
		if err != nil {
			t.Fatal(err)
		}
		files = map[string]string{"outputs.tf": string(data)}
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func terraform(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(os.Getenv("TF_BINARY"), args...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("terraform %s: %v\n%s", strings.Join(args, " "), err, b)
	}
}

func TestReadExample(t *testing.T) {
	dir := tfWorkdir(t, nil)
	terraform(t, dir, "init", "-input=false")
	terraform(t, dir, "apply", "-auto-approve", "-input=false")

	outs, err := Read(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"sql_port":             "5432",
		"debug":                "false",
		"sql_host":             "localhost",
		"django_allowed_hosts": "stage.civictechjobs.org localhost",
		"db_password":          "s3cr3t-example-password-do-not-print",
	}
	for n, w := range want {
		got, err := outs.Scalar(n)
		if err != nil || got != w {
			t.Errorf("Scalar(%s) = %q, %v; want %q", n, got, err, w)
		}
	}
	if !outs["db_password"].Sensitive || outs["db_name"].Sensitive {
		t.Errorf("sensitive flags wrong: db_password %v, db_name %v", outs["db_password"].Sensitive, outs["db_name"].Sensitive)
	}
	if got := outs["sql_port"].TypeName(); got != "number" {
		t.Errorf("sql_port type %s", got)
	}
	if got := outs["allowed_hosts_list"].TypeName(); got != "tuple" {
		t.Errorf("allowed_hosts_list type %s", got)
	}
	_, err = outs.Scalar("allowed_hosts_list")
	if err == nil || exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), `"allowed_hosts_list" is a tuple`) {
		t.Errorf("non-scalar misuse: %v", err)
	}
	_, err = outs.Scalar("db_pasword")
	if err == nil || !strings.Contains(err.Error(), `no output "db_pasword"`) || !strings.Contains(err.Error(), "db_password, db_password_ssm_arn") {
		t.Errorf("missing output: %v", err)
	}
	// The sensitive value was registered as a secret.
	if got := report.Mask("pw=s3cr3t-example-password-do-not-print"); got != "pw=***" {
		t.Errorf("sensitive output not registered: %q", got)
	}
}

func TestReadEveryType(t *testing.T) {
	dir := tfWorkdir(t, map[string]string{"main.tf": `
output "str"   { value = "a \"quoted\" \\ value" }
output "num"   { value = 8000 }
output "frac"  { value = 0.25 }
output "big"   { value = 10000000000000000 }
output "yes"   { value = true }
output "lst"   { value = tolist(["a", "b"]) }
output "st"    { value = toset(["a"]) }
output "mp"    { value = tomap({a = "b"}) }
output "obj"   { value = {a = 1, b = "x"} }
output "sobj" {
  value     = {user = "sensitive-user-name", port = 6543}
  sensitive = true
}
`})
	terraform(t, dir, "init", "-input=false")
	terraform(t, dir, "apply", "-auto-approve", "-input=false")
	outs, err := Read(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	scalars := map[string]string{"str": `a "quoted" \ value`, "num": "8000", "frac": "0.25", "big": "10000000000000000", "yes": "true"}
	for n, w := range scalars {
		if got, err := outs.Scalar(n); err != nil || got != w {
			t.Errorf("Scalar(%s) = %q, %v; want %q", n, got, err, w)
		}
	}
	for n, typ := range map[string]string{"lst": "list", "st": "set", "mp": "map", "obj": "object", "sobj": "object"} {
		_, err := outs.Scalar(n)
		if err == nil || !strings.Contains(err.Error(), "is a "+typ) {
			t.Errorf("Scalar(%s) err = %v, want 'is a %s'", n, err, typ)
		}
		if strings.Contains(err.Error(), "sensitive-user-name") {
			t.Errorf("error shows a sensitive value: %v", err)
		}
	}
	for _, s := range []string{"sensitive-user-name", "6543"} {
		if report.Mask(s) != "***" {
			t.Errorf("sensitive object member %q not registered as a secret", s)
		}
	}
}

func TestReadEmptyState(t *testing.T) {
	dir := tfWorkdir(t, nil)
	terraform(t, dir, "init", "-input=false")
	_, err := Read(context.Background(), Options{Dir: dir})
	if err == nil || exitcode.Of(err) != exitcode.Invalid {
		t.Fatalf("err = %v (code %d), want exit 2", err, exitcode.Of(err))
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "terraform apply") {
		t.Errorf("error names neither the directory nor the fix: %v", err)
	}
}

func TestReadInitAndWorkspace(t *testing.T) {
	dir := tfWorkdir(t, nil)
	// Never initialized; Init runs terraform init, the workspace exists but
	// has no state yet: exit 2 naming the workspace.
	terraform(t, dir, "init", "-input=false")
	terraform(t, dir, "workspace", "new", "review")
	terraform(t, dir, "workspace", "select", "default")
	terraform(t, dir, "apply", "-auto-approve", "-input=false")
	if err := os.RemoveAll(filepath.Join(dir, ".terraform")); err != nil {
		t.Fatal(err)
	}
	outs, err := Read(context.Background(), Options{Dir: dir, Init: true})
	if err != nil {
		t.Fatalf("with Init: %v", err)
	}
	if _, ok := outs["db_name"]; !ok {
		t.Fatalf("outputs: %v", outs.Names())
	}
	_, err = Read(context.Background(), Options{Dir: dir, Workspace: "review"})
	if err == nil || exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "workspace review") {
		t.Fatalf("empty workspace: %v", err)
	}
	_, err = Read(context.Background(), Options{Dir: dir, Workspace: "nope"})
	if err == nil || !strings.Contains(err.Error(), "workspace select nope") {
		t.Fatalf("missing workspace: %v", err)
	}
}

// fakeTerraform writes a shell script standing in for terraform.
func fakeTerraform(t *testing.T, script string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("shell scripts")
	}
	p := filepath.Join(t.TempDir(), "terraform")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadPassesCallerEnv(t *testing.T) {
	dump := filepath.Join(t.TempDir(), "env")
	bin := fakeTerraform(t, `env > "`+dump+`"
echo '{"x":{"sensitive":false,"type":"string","value":"y"}}'
`)
	t.Setenv("CHECKPOINT_DISABLE", "1")
	t.Setenv("TF_CLI_CONFIG_FILE", "/some/empty.tfrc")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5056")
	t.Setenv("TF_LOG", "TRACE") // terraform-exec must not let Terraform log (it could log values)
	outs, err := Read(context.Background(), Options{Dir: t.TempDir(), Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := outs.Scalar("x"); v != "y" {
		t.Fatalf("x = %q", v)
	}
	env, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CHECKPOINT_DISABLE=1\n", "TF_CLI_CONFIG_FILE=/some/empty.tfrc\n", "AWS_ENDPOINT_URL=http://127.0.0.1:5056\n", "TF_LOG=\n"} {
		if !strings.Contains(string(env), want) {
			t.Errorf("terraform's environment lacks %q", want)
		}
	}
}

func TestReadTerraformFails(t *testing.T) {
	bin := fakeTerraform(t, `echo "Error: backend credentials expired" >&2; exit 1`)
	dir := t.TempDir()
	_, err := Read(context.Background(), Options{Dir: dir, Binary: bin})
	if err == nil || exitcode.Of(err) != exitcode.Failed {
		t.Fatalf("err = %v (code %d), want exit 1", err, exitcode.Of(err))
	}
	for _, want := range []string{"terraform output in " + dir, "backend credentials expired", "terraform init"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// hangingTerraform is a fake terraform that never ends and ignores SIGINT
// (so only the kill after the wait delay ends it); it writes its pid to
// the returned file.
func hangingTerraform(t *testing.T) (bin, pidFile string) {
	pidFile = filepath.Join(t.TempDir(), "pid")
	return fakeTerraform(t, `echo $$ > "`+pidFile+`"
trap '' INT
exec sleep 600
`), pidFile
}

// checkGone fails unless the process whose pid is in pidFile has ended
// (and was reaped: a zombie is still there for kill -0).
func checkGone(t *testing.T, pidFile string) {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the fake terraform never ran: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("terraform (pid %d) is still there after Read returned (kill -0: %v)", pid, err)
	}
}

func TestReadTimeout(t *testing.T) {
	bin, pidFile := hangingTerraform(t)
	dir := t.TempDir()
	start := time.Now()
	_, err := Read(context.Background(), Options{Dir: dir, Binary: bin, Timeout: time.Second})
	took := time.Since(start)
	if took > time.Second+5*time.Second {
		t.Errorf("Read took %s with a 1 s timeout", took)
	}
	if err == nil || exitcode.Of(err) != exitcode.Failed {
		t.Fatalf("err = %v (code %d), want exit 1", err, exitcode.Of(err))
	}
	for _, want := range []string{"`terraform output -json` in " + dir, "did not end within 1s", TimeoutEnv, "state lock", "backend", "force-unlock", "deploy again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	checkGone(t, pidFile)
}

func TestReadTimeoutFromEnv(t *testing.T) {
	bin, pidFile := hangingTerraform(t)
	t.Setenv(TimeoutEnv, "500ms")
	start := time.Now()
	_, err := Read(context.Background(), Options{Dir: t.TempDir(), Binary: bin, Init: true})
	if took := time.Since(start); took > 500*time.Millisecond+5*time.Second {
		t.Errorf("Read took %s with a 500 ms timeout", took)
	}
	if err == nil || !strings.Contains(err.Error(), "`terraform init` in ") || !strings.Contains(err.Error(), "did not end within 500ms") {
		t.Fatalf("err = %v, want terraform init's timeout", err)
	}
	checkGone(t, pidFile)

	t.Setenv(TimeoutEnv, "soon")
	_, err = Read(context.Background(), Options{Dir: t.TempDir(), Binary: bin})
	if exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), TimeoutEnv+`="soon"`) {
		t.Fatalf("err = %v (code %d), want exit 2 naming %s", err, exitcode.Of(err), TimeoutEnv)
	}
}

// An interrupt (the caller's context) is not reported as a timeout.
func TestReadCancelledIsNotTimeout(t *testing.T) {
	bin, pidFile := hangingTerraform(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := Read(ctx, Options{Dir: t.TempDir(), Binary: bin, Timeout: time.Minute})
	if err == nil || strings.Contains(err.Error(), "did not end within") {
		t.Fatalf("err = %v, want the interrupt's error, not a timeout", err)
	}
	checkGone(t, pidFile)
}

// A context already cancelled when `terraform output` starts: terraform-exec
// then returns an error that holds no error (its Error() panics); Read says
// it was stopped instead (the fault suite's SIGINT while reading outputs).
func TestReadContextCancelledBeforeStart(t *testing.T) {
	dir := tfWorkdir(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Read(ctx, Options{Dir: dir})
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("err = %v, want a stopped error wrapping context.Canceled", err)
	}
}
