// Package taskdef renders the task definition template, converts between ECS
// API JSON and the SDK's RegisterTaskDefinition input, normalizes task
// definitions and compares them (Equal, Diff). Everything here is pure.
//
// # Template
//
// The template is a RegisterTaskDefinition request in ECS API JSON (the
// shape `aws ecs register-task-definition --cli-input-json` takes) with Go
// text/template actions:
//
//	{{ image "django" }}  the image reference chosen for this deploy (REGISTRY/REPO@sha256:...)
//	{{ tf "sql_port" }}   Terraform output sql_port (string, number or bool)
//	{{ env "NAME" }}      environment variable NAME, which must be set
//
// Each function returns its value JSON-string-escaped without the quotes: a
// quote or backslash in a value comes out as \" or \\, so a value can never
// break or inject JSON. Use the functions inside quotes ("{{ tf "x" }}");
// numbers and bools may also stand bare (`"memory": {{ tf "mem" }}`).
// A missing image, output or variable, a non-scalar output, and any
// reference to data (`{{ .x }}`) are errors that carry the template's name
// and line (template: NAME:LINE:COL: ...).
//
// A value of a sensitive Terraform output may only appear in a
// `secrets[].valueFrom`, `secretOptions[].valueFrom` or
// `repositoryCredentials.credentialsParameter` (references to a secret,
// never the secret itself); anywhere else Render refuses it. The same holds
// for anything the template derives from one (printf, urlquery, slice, a
// variable, a {{ template }}, ...: see Render), and every such value is
// masked in every output. Rendering is bounded in time and size (Execute).
package taskdef

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/internal/tmplbudget"
	"github.com/hackforla/ctjdeploy/tfvars"
)

// Inputs are the values a template may use.
type Inputs struct {
	// Images maps an image name (the key under images: in the config) to the
	// reference to deploy, REGISTRY/REPOSITORY@sha256:....
	Images map[string]string
	// Outputs are the Terraform outputs.
	Outputs tfvars.Outputs
	// Env looks up environment variables; nil means os.LookupEnv.
	Env func(string) (string, bool)
	// SecretEnv names more environment variables whose values are secret
	// (masked in every output, with whatever the template derives from
	// them), besides DefaultSecretEnv: names or path.Match patterns,
	// compared case-insensitively.
	SecretEnv []string
}

// DefaultSecretEnv are the environment variables whose values are secret
// whatever the config says (path.Match patterns, case-insensitive).
// Besides secret-looking names, it always holds the credentials a CI runner
// carries: the AWS SDK's credential variables ("Environment variables to
// configure the AWS CLI", AWS CLI User Guide), GITHUB_TOKEN and the runner's
// ACTIONS_* variables (ACTIONS_ID_TOKEN_REQUEST_TOKEN, ACTIONS_RUNTIME_TOKEN).
// The config's secret_env: adds names; it cannot remove these.
var DefaultSecretEnv = []string{"*SECRET*", "*TOKEN*", "*PASSWORD*", "*_KEY",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN*", "AWS_BEARER_TOKEN_*", "GITHUB_TOKEN", "GH_TOKEN", "ACTIONS_*"}

// SecretEnvName reports whether the environment variable name is secret by
// DefaultSecretEnv or extra.
func SecretEnvName(name string, extra []string) bool {
	up := strings.ToUpper(name)
	for _, pats := range [][]string{DefaultSecretEnv, extra} {
		for _, p := range pats {
			if ok, _ := path.Match(strings.ToUpper(p), up); ok {
				return true
			}
		}
	}
	return false
}

// Render executes the template tmpl (name is its file name, used in every
// error) with in, and decodes the result strictly into a
// RegisterTaskDefinition input (see Decode). Every error has exit code 2
// (invalid) and never shows a sensitive output's value, nor anything the
// template derived from one.
//
// # Sensitivity follows the value
//
// Whatever the template derives from a sensitive Terraform output (through
// printf, urlquery, slice, index, a variable, a pipeline, a {{ template }},
// an {{ if }}) is sensitive too. Render finds it by rendering the template
// again for each sensitive output it used, with that output replaced by
// another value of the same type and length (every byte different): each
// part of the document that changes depends on the output. Such a part may
// only be a secret reference (secrets[].valueFrom, ...): anywhere else
// Render refuses it, naming the output. Every string that changes is
// registered with report.AddSecret (masked in every output), and so is
// what changes in an error message. Secret environment variables
// (SecretEnvName: AWS credentials, GITHUB_TOKEN and ACTIONS_* among them)
// are followed and refused the same way: a value ctjdeploy masks is never
// registered in plain.
//
// A secret reference is located by the decoded document's structure
// (containerDefinitions[i].secrets[j].valueFrom,
// containerDefinitions[i].logConfiguration.secretOptions[j].valueFrom,
// containerDefinitions[i].repositoryCredentials.credentialsParameter: see
// pos.isSecretRef), never by the text of a key; and its value must look
// like a reference (an SSM or Secrets Manager ARN, or an SSM parameter
// name), or the secret itself would be registered as one.
func Render(name string, tmpl []byte, in Inputs) (*ecs.RegisterTaskDefinitionInput, error) {
	r := &renderer{name: name, in: in, used: map[string]source{}}
	if r.in.Env == nil {
		r.in.Env = os.LookupEnv
	}
	out, err := r.render(tmpl)
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Invalid, r.mask(err))
	}
	return out, nil
}

type renderer struct {
	name string
	in   Inputs
	used map[string]source // sensitive value rendered → where it came from
}

// source is a secret a template can derive values from.
type source struct {
	kind string // "tf" (a sensitive Terraform output) or "env" (a secret variable)
	name string
}

// run is one execution of the template. Each has its own state: an
// execution that ran out of time may still be going on in its goroutine.
type run struct {
	r        *renderer
	override map[source]string // values replaced for this run
	mu       sync.Mutex
	sources  map[source]bool   // secrets the template used
	used     map[string]source // sensitive value rendered → where it came from
}

func (r *renderer) newRun(override map[source]string) *run {
	return &run{r: r, override: override, sources: map[source]bool{}, used: map[string]source{}}
}

func (x *run) execute(tmpl []byte) ([]byte, error) {
	return Execute(x.r.name, string(tmpl), Funcs(Lookup{Image: x.r.image, TF: x.tf, Env: x.env}))
}

// Lookup finds the values of a template's functions, one field per
// function: the deploy's renderer reads images, Terraform outputs and
// environment variables; iam-policy's probe leaves what it cannot know
// unresolved. Every field must be set.
type Lookup struct {
	Image func(name string) (string, error) // {{ image "NAME" }}: the image reference
	TF    func(name string) (string, error) // {{ tf "NAME" }}: a Terraform output
	Env   func(name string) (string, error) // {{ env "NAME" }}: an environment variable
}

// Funcs is the task definition template's function map, built from l: each
// function's value is escaped for a JSON string. It is the one list of
// template functions; a function added here needs a field in Lookup, so
// every renderer of the template (deploy, iam-policy) has to supply it.
func Funcs(l Lookup) template.FuncMap {
	esc := func(f func(string) (string, error)) func(string) (string, error) {
		return func(name string) (string, error) {
			v, err := f(name)
			if err != nil {
				return "", err
			}
			return jsonEscape(v), nil
		}
	}
	return template.FuncMap{
		"image": esc(l.Image),
		"tf":    esc(l.TF),
		"env":   esc(l.Env),
	}
}

// usedSources returns the secrets the run used, sorted.
func (x *run) usedSources() []source {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make([]source, 0, len(x.sources))
	for s := range x.sources {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].kind != out[j].kind {
			return out[i].kind > out[j].kind // tf first
		}
		return out[i].name < out[j].name
	})
	return out
}

func (r *renderer) render(tmpl []byte) (*ecs.RegisterTaskDefinitionInput, error) {
	first := r.newRun(nil)
	out, err := first.execute(tmpl)
	sources := first.usedSources()
	if err != nil {
		var budget *tmplbudget.Error
		if errors.As(err, &budget) {
			return nil, err // our own message: no value in it
		}
		return nil, r.maskDerived(err, r.perturb(tmpl, sources), func(p *perturbed) error { return p.execErr })
	}
	first.mu.Lock()
	for v, name := range first.used {
		r.used[v] = name
	}
	first.mu.Unlock()
	perts := r.perturb(tmpl, sources)
	v, err := parseJSON(out)
	if err != nil {
		err = fmt.Errorf("%s:%w (line:column of the rendered template; the template must render RegisterTaskDefinition JSON)", r.name, err)
		return nil, r.maskDerived(err, perts, func(p *perturbed) error {
			if p.execErr != nil {
				return p.execErr
			}
			return p.parseErr
		})
	}
	// Derived values are registered as secrets first, whatever is refused;
	// a direct use is named as such.
	derivedErr := r.checkDerived(tmpl, v, perts)
	if err := r.checkSensitive(v); err != nil {
		return nil, err
	}
	if derivedErr != nil {
		return nil, derivedErr
	}
	td, err := decodeValue(v)
	if err == nil {
		err = validate(td)
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", r.name, err)
		return nil, r.maskDerived(err, perts, func(p *perturbed) error {
			if p.execErr != nil {
				return p.execErr
			}
			if p.parseErr != nil {
				return p.parseErr
			}
			ptd, err := decodeValue(p.v)
			if err == nil {
				err = validate(ptd)
			}
			if err != nil {
				err = fmt.Errorf("%s: %w", r.name, err)
			}
			return err
		})
	}
	return td, nil
}

// MaxTemplate bounds the template file: a task definition template is a
// few kilobytes (ECS takes at most 64 KiB of task definition).
const MaxTemplate = 1 << 20

// ReadTemplate reads the template file at path, refusing (exit 2) one of
// more than MaxTemplate bytes before reading it whole.
func ReadTemplate(path string) ([]byte, error) {
	return config.ReadBounded(path, MaxTemplate, "task definition template")
}

// MaxRendered bounds the rendered template's size (ECS itself takes far
// less), so a runaway template fails fast instead of eating memory.
const MaxRendered = 1 << 20

// MaxRenderTime bounds the time a template may take to render.
const MaxRenderTime = 2 * time.Second

// Execute renders the template text (name is its file name, used in every
// error) with funcs and no data, under the budgets every command shares
// (internal/tmplbudget: at most MaxRendered bytes of output and of any
// string built, MaxRenderTime, no {{ range }}, no recursive {{ template }},
// a bounded number of actions). Every error has exit code 2. It is the one
// renderer of task definition templates: iam-policy uses it too.
func Execute(name, text string, funcs template.FuncMap) ([]byte, error) {
	lim := tmplbudget.Default
	lim.MaxBytes = MaxRendered
	lim.MaxTime = MaxRenderTime
	return tmplbudget.Execute(name, text, funcs, map[string]any{}, lim)
}

func (r *renderer) image(name string) (string, error) {
	ref, ok := r.in.Images[name]
	if !ok {
		return "", fmt.Errorf("no image %q; the images are: %s (images: in the config file)", name, listOrNone(sortedKeys(r.in.Images)))
	}
	return ref, nil
}

func (x *run) tf(name string) (string, error) {
	v, err := x.r.in.Outputs.Scalar(name)
	if err != nil {
		return "", err
	}
	if x.r.in.Outputs[name].Sensitive {
		src := source{"tf", name}
		if o, ok := x.override[src]; ok {
			return o, nil
		}
		x.mu.Lock()
		x.sources[src] = true
		x.used[v] = src
		x.mu.Unlock()
		report.AddSecret(v)
	}
	return v, nil
}

func (x *run) env(name string) (string, error) {
	v, ok := x.r.in.Env(name)
	if !ok {
		return "", fmt.Errorf("environment variable %s is not set: set it (it may be empty) or remove {{ env %q }} from the template", name, name)
	}
	if SecretEnvName(name, x.r.in.SecretEnv) {
		src := source{"env", name}
		if o, ok := x.override[src]; ok {
			return o, nil
		}
		x.mu.Lock()
		x.sources[src] = true
		if v != "" {
			x.used[v] = src
		}
		x.mu.Unlock()
		report.AddSecret(v)
	}
	return v, nil
}

// jsonEscape returns s as the content of a JSON string, without the quotes.
func jsonEscape(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return string(b[1 : len(b)-1])
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// checkSensitive refuses a rendered document that holds a sensitive value
// anywhere but in the value of a secret reference, and there when it is
// not shaped like a reference. It runs before decoding, so no later error
// message (an unknown key, a wrong type) can carry the value.
func (r *renderer) checkSensitive(v any) error {
	if len(r.used) == 0 {
		return nil
	}
	return r.walk(nil, v)
}

func (r *renderer) holds(s string) (source, bool) {
	// Longest first, so the message names the most specific source.
	vals := make([]string, 0, len(r.used))
	for v := range r.used {
		vals = append(vals, v)
	}
	sort.Slice(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) })
	for _, v := range vals {
		if v == "" {
			continue
		}
		// A very short value would match inside unrelated text; only an
		// exact match counts for those.
		if s == v || (len(v) >= 4 && strings.Contains(s, v)) {
			return r.used[v], true
		}
	}
	return source{}, false
}

func (r *renderer) walk(p pos, v any) error {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(v) {
			if src, ok := r.holds(k); ok {
				return r.refuse(p, true, src, "holds the value of")
			}
			if err := r.walk(p.key(k), v[k]); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range v {
			if err := r.walk(p.at(i), e); err != nil {
				return err
			}
		}
	case string:
		if src, ok := r.holds(v); ok {
			return r.placed(p, v, src, "holds the value of")
		}
	case json.Number:
		if src, ok := r.holds(v.String()); ok {
			return r.placed(p, nil, src, "holds the value of")
		}
	case bool:
		if src, ok := r.holds(fmt.Sprint(v)); ok {
			return r.placed(p, nil, src, "holds the value of")
		}
	}
	return nil
}

// placed checks a sensitive value (or one derived from src) at p: only the
// value of a secret reference may hold one, and only a string that names a
// secret (looksLikeRef).
func (r *renderer) placed(p pos, leaf any, src source, how string) error {
	if !p.isSecretRef() {
		return r.refuse(p, false, src, how)
	}
	if s, ok := leaf.(string); ok && looksLikeRef(s) {
		return nil
	}
	return fmt.Errorf("%s: %s %s %s but is neither an SSM parameter or Secrets Manager ARN (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME, arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME) nor an SSM parameter name: a secret reference names the secret, ECS would register the value itself; store the value in SSM Parameter Store (SecureString) or Secrets Manager and reference it by ARN",
		r.name, p, how, src.describe())
}

// describe names a secret source in messages.
func (s source) describe() string {
	if s.kind == "env" {
		return fmt.Sprintf("the secret environment variable %s (ctjdeploy masks it: a secret-looking name, secret_env:, AWS credentials, GITHUB_TOKEN or ACTIONS_*)", s.name)
	}
	return fmt.Sprintf("the sensitive Terraform output %q", s.name)
}

// refuse is the error for a sensitive value (how: "holds the value of", or
// "is derived from") at p (at one of its keys when isKey) outside a secret
// reference.
func (r *renderer) refuse(p pos, isKey bool, src source, how string) error {
	where := p.String()
	if isKey {
		where += " (a key in it)"
	}
	example := `"secrets": [{"name": "VAR", "valueFrom": "arn:aws:ssm:REGION:ACCOUNT:parameter/NAME"}]`
	if n := len(p); !isKey && n >= 3 && p[n-3].key == "environment" && p[n-2].isIdx && p[n-1].key == "value" {
		example = fmt.Sprintf(`remove the entry from %s and add "secrets": [{"name": "<its name>", "valueFrom": "arn:aws:ssm:REGION:ACCOUNT:parameter/NAME"}] to the container`, p[:n-2])
	}
	what := "a sensitive value may only be passed by reference: store it in SSM Parameter Store (SecureString) or Secrets Manager, export the parameter's ARN as a Terraform output, and use it in secrets[].valueFrom"
	if src.kind == "env" {
		what = "a value ctjdeploy masks may only be passed by reference: store it in SSM Parameter Store (SecureString) or Secrets Manager and use its ARN in secrets[].valueFrom"
	}
	return fmt.Errorf("%s: %s %s %s; %s: %s", r.name, where, how, src.describe(), what, example)
}

// mask replaces every sensitive output's value (rendered or not) in err's
// message with ***.
func (r *renderer) mask(err error) error {
	msg := err.Error()
	var vals []string
	for name, o := range r.in.Outputs {
		if !o.Sensitive {
			continue
		}
		vals = append(vals, string(o.Value))
		if s, e := r.in.Outputs.Scalar(name); e == nil {
			vals = append(vals, s, jsonEscape(s))
		}
	}
	sort.Slice(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) })
	masked := msg
	for _, v := range vals {
		if v != "" {
			masked = strings.ReplaceAll(masked, v, "***")
		}
	}
	masked = report.Mask(masked)
	if masked == msg {
		return err
	}
	return errors.New(masked)
}

// validate checks what RegisterTaskDefinition would reject and the tool
// relies on: a family, containers with names and images, unique names, and
// environment entries with a name and a value.
func validate(td *ecs.RegisterTaskDefinitionInput) error {
	if td.Family == nil || *td.Family == "" {
		return errors.New(`"family" is missing: name the task definition family`)
	}
	if len(td.ContainerDefinitions) == 0 {
		return errors.New(`"containerDefinitions" is empty: the task definition needs at least one container`)
	}
	seen := map[string]bool{}
	for i, c := range td.ContainerDefinitions {
		if c.Name == nil || *c.Name == "" {
			return fmt.Errorf("containerDefinitions[%d].name is missing", i)
		}
		if seen[*c.Name] {
			return fmt.Errorf("containerDefinitions[%d].name: two containers are named %q", i, *c.Name)
		}
		seen[*c.Name] = true
		if c.Image == nil || *c.Image == "" {
			return fmt.Errorf("containerDefinitions[%d].image is missing (container %q)", i, *c.Name)
		}
		if err := validateEnvironment(i, *c.Name, c.Environment); err != nil {
			return err
		}
	}
	return nil
}

// validateEnvironment refuses an environment entry without a name or a
// value. ECS drops an entry that has no value ("KeyValuePair", Amazon ECS API
// Reference: name and value are both what the variable is made of), so the
// variable would never be set in the container, and the live definition
// would never hold the entry: every deploy would register a new revision.
func validateEnvironment(ci int, container string, env []ecstypes.KeyValuePair) error {
	for j, kv := range env {
		at := fmt.Sprintf("containerDefinitions[%d].environment[%d] (container %q", ci, j, container)
		if kv.Name == nil || *kv.Name == "" {
			return fmt.Errorf(`%s) has no "name": name the variable, or remove the entry`, at)
		}
		if kv.Value == nil {
			return fmt.Errorf(`%s, variable %q) has no "value": ECS drops an entry without a value, so %s would never be set and every deploy would register a new revision; give it a value ("value": "..."), or remove the entry`,
				at, *kv.Name, *kv.Name)
		}
	}
	return nil
}
