package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"gopkg.in/yaml.v3"

	"github.com/hackforla/ctjdeploy/deploy/doctor"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/iampolicy"
)

// docs/adopting.md promises that every snippet in it is real. These tests
// read its fenced code blocks and hold each one to the code and the example:
//
//   - yaml with environments: is a config file: internal/config accepts it,
//     and its keys are the example's (example/ctjdeploy.yaml), except the
//     optional keys listed in docOnlyKeys and the local stack's in
//     exampleOnlyKeys;
//   - yaml with jobs: is the caller workflow: it calls the reusable
//     deploy-stage.yml with inputs that workflow declares;
//   - json is the task definition template: example/stage/ecs-task-def.json;
//   - hcl declares the Terraform outputs the template reads;
//   - sh lines starting with ctjdeploy are commands the CLI accepts.

// docOnlyKeys are optional config keys the guide shows and the example does
// not set (a real stage has a URL and smoke checks, and reads a remote state).
var docOnlyKeys = map[string]bool{
	"environments.stage.url":                 true,
	"environments.stage.smoke":               true,
	"environments.stage.smoke[].url":         true,
	"environments.stage.smoke[].status":      true,
	"environments.stage.smoke[].contains":    true,
	"environments.stage.smoke[].timeout":     true,
	"environments.stage.terraform.init":      true,
	"environments.stage.terraform.workspace": true,
	"environments.stage.secret_env":          true,
	"environments.stage.ephemeral_database":  true,
}

// exampleOnlyKeys are keys of the example the guide leaves out on purpose.
var exampleOnlyKeys = map[string]bool{
	"environments.stage.registry": true, // the local stack's registry; real ECR is the default
}

type mdBlock struct {
	lang string
	text string
	line int // of the opening fence
}

// mdBlocks returns the fenced code blocks of a Markdown document.
func mdBlocks(t *testing.T, md string) []mdBlock {
	t.Helper()
	var out []mdBlock
	var cur *mdBlock
	var body []string
	for i, ln := range strings.Split(md, "\n") {
		if strings.HasPrefix(ln, "```") {
			if cur == nil {
				cur = &mdBlock{lang: strings.TrimSpace(strings.TrimPrefix(ln, "```")), line: i + 1}
				body = nil
				continue
			}
			cur.text = strings.Join(body, "\n") + "\n"
			out = append(out, *cur)
			cur = nil
			continue
		}
		if cur != nil {
			body = append(body, ln)
		}
	}
	if cur != nil {
		t.Fatalf("docs/adopting.md:%d: code block never closed", cur.line)
	}
	return out
}

// adoptingDoc reads docs/adopting.md and sorts its blocks by what they are.
type adoptingDoc struct {
	configs, workflows, json, hcl, sh []mdBlock
}

func readAdopting(t *testing.T) adoptingDoc {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "adopting.md"))
	if err != nil {
		t.Fatal(err)
	}
	var d adoptingDoc
	for _, bl := range mdBlocks(t, string(b)) {
		switch bl.lang {
		case "yaml":
			var top map[string]any
			if err := yaml.Unmarshal([]byte(bl.text), &top); err != nil {
				t.Fatalf("docs/adopting.md:%d: yaml block does not parse: %v", bl.line, err)
			}
			switch {
			case top["environments"] != nil:
				d.configs = append(d.configs, bl)
			case top["jobs"] != nil:
				d.workflows = append(d.workflows, bl)
			default:
				t.Errorf("docs/adopting.md:%d: a yaml block that is neither a config (environments:) nor a workflow (jobs:): untested", bl.line)
			}
		case "json":
			d.json = append(d.json, bl)
		case "hcl":
			d.hcl = append(d.hcl, bl)
		case "sh":
			d.sh = append(d.sh, bl)
		default:
			t.Errorf("docs/adopting.md:%d: code block of language %q: no test checks it (use yaml, json, hcl or sh)", bl.line, bl.lang)
		}
	}
	if len(d.configs) == 0 || len(d.workflows) != 1 || len(d.json) != 1 || len(d.hcl) == 0 || len(d.sh) == 0 {
		t.Fatalf("docs/adopting.md: %d config, %d workflow, %d json, %d hcl, %d sh blocks; want at least one config, one workflow, one template, hcl and sh",
			len(d.configs), len(d.workflows), len(d.json), len(d.hcl), len(d.sh))
	}
	return d
}

// yamlKeys flattens a YAML document's mapping keys into dotted paths
// (list items as []) with their scalar values ("" for a collection).
func yamlKeys(n *yaml.Node, prefix string, out map[string]string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			yamlKeys(c, prefix, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if prefix != "" {
				p = prefix + "." + p
			}
			v := n.Content[i+1]
			out[p] = ""
			if v.Kind == yaml.ScalarNode {
				out[p] = v.Value
			}
			yamlKeys(v, p, out)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			yamlKeys(c, prefix+"[]", out)
		}
	}
}

func keysOf(t *testing.T, name string, data []byte) map[string]string {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	out := map[string]string{}
	yamlKeys(&n, "", out)
	return out
}

// TestAdoptingConfig: the guide's config is accepted by internal/config and
// has the example's keys, with the example's values, give or take the
// optional keys listed above. On a mismatch it prints the diff.
func TestAdoptingConfig(t *testing.T) {
	root := repoRoot(t)
	d := readAdopting(t)
	examplePath := filepath.Join(root, "example", "ctjdeploy.yaml")
	example, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse(examplePath, example); err != nil {
		t.Fatalf("the example config itself: %v", err)
	}
	want := keysOf(t, examplePath, example)
	for _, bl := range d.configs {
		// Parsed as if it stood where the example does, so that its
		// relative paths name the example's files.
		f, err := config.Parse(examplePath, []byte(bl.text))
		if err != nil {
			t.Errorf("docs/adopting.md:%d: internal/config refuses the guide's config: %v", bl.line, err)
			continue
		}
		for _, name := range f.Names() {
			env, _ := f.Env(name)
			if err := env.CheckFiles(true); err != nil {
				t.Errorf("docs/adopting.md:%d: environment %s names files the example lacks: %v", bl.line, name, err)
			}
		}
		got := keysOf(t, "docs/adopting.md", []byte(bl.text))
		var diff []string
		for k, v := range want {
			gv, ok := got[k]
			switch {
			case !ok && !exampleOnlyKeys[k]:
				diff = append(diff, fmt.Sprintf("- %s: %s   (in example/ctjdeploy.yaml, not in the guide)", k, v))
			case ok && gv != v:
				diff = append(diff, fmt.Sprintf("- %s: %s\n+ %s: %s   (the values differ)", k, v, k, gv))
			}
		}
		for k, v := range got {
			if _, ok := want[k]; !ok && !docOnlyKeys[k] {
				diff = append(diff, fmt.Sprintf("+ %s: %s   (in the guide, not in example/ctjdeploy.yaml nor in docOnlyKeys)", k, v))
			}
		}
		sort.Strings(diff)
		if len(diff) > 0 {
			t.Errorf("docs/adopting.md:%d: the guide's config and example/ctjdeploy.yaml differ (- example, + guide):\n%s", bl.line, strings.Join(diff, "\n"))
		}
	}
}

// TestAdoptingTemplate: the guide's task definition template is the
// example's, and its Terraform outputs are the ones that template reads,
// each declared by the example's Terraform.
func TestAdoptingTemplate(t *testing.T) {
	root := repoRoot(t)
	d := readAdopting(t)
	tmplPath := filepath.Join(root, "example", "stage", "ecs-task-def.json")
	tmpl, err := os.ReadFile(tmplPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.json[0].text; strings.TrimSpace(got) != strings.TrimSpace(string(tmpl)) {
		t.Errorf("docs/adopting.md:%d: the template differs from example/stage/ecs-task-def.json:\n%s", d.json[0].line, lineDiff(string(tmpl), got))
	}

	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\{\{\s*tf\s+"([^"]+)"\s*\}\}`).FindAllStringSubmatch(string(tmpl), -1) {
		used[m[1]] = true
	}
	outputRE := regexp.MustCompile(`(?m)^output\s+"([^"]+)"`)
	declared := map[string]bool{}
	for _, bl := range d.hcl {
		for _, m := range outputRE.FindAllStringSubmatch(bl.text, -1) {
			declared[m[1]] = true
		}
	}
	tf, err := os.ReadFile(filepath.Join(root, "example", "infra", "stage", "outputs.tf"))
	if err != nil {
		t.Fatal(err)
	}
	inExample := map[string]bool{}
	for _, m := range outputRE.FindAllStringSubmatch(string(tf), -1) {
		inExample[m[1]] = true
	}
	for n := range used {
		if !declared[n] {
			t.Errorf("docs/adopting.md: the template reads {{ tf %q }} but the guide's Terraform does not declare output %q", n, n)
		}
	}
	for n := range declared {
		if !used[n] {
			t.Errorf("docs/adopting.md: the guide declares output %q, which the template does not read", n)
		}
		if !inExample[n] {
			t.Errorf("docs/adopting.md: output %q is not in example/infra/stage/outputs.tf", n)
		}
	}
	hcl := strings.Join(func() []string {
		var s []string
		for _, bl := range d.hcl {
			s = append(s, bl.text)
		}
		return s
	}(), "\n")
	for _, want := range []string{"deployment_maximum_percent         = 100", "deployment_circuit_breaker {", "rollback = true", "ignore_changes = [container_definitions]"} {
		if !strings.Contains(hcl, want) {
			t.Errorf("docs/adopting.md: the Terraform snippets lack %q", want)
		}
	}
}

// lineDiff lists the lines of want missing from got (-) and the reverse (+).
func lineDiff(want, got string) string {
	w, g := strings.Split(strings.TrimSpace(want), "\n"), strings.Split(strings.TrimSpace(got), "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n- %s\n+ %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}

// TestAdoptingWorkflow: the guide's caller workflow calls the reusable
// deploy-stage.yml with only inputs it declares, every required one, for an
// environment the guide's config defines, with the OIDC permission; inputs
// it forwards are declared by the caller; and actionlint accepts it.
func TestAdoptingWorkflow(t *testing.T) {
	root := repoRoot(t)
	d := readAdopting(t)
	var reusable struct {
		On struct {
			WorkflowCall struct {
				Inputs map[string]struct {
					Required bool   `yaml:"required"`
					Type     string `yaml:"type"`
				} `yaml:"inputs"`
			} `yaml:"workflow_call"`
		} `yaml:"on"`
	}
	readYAML(t, filepath.Join(root, ".github", "workflows", "deploy-stage.yml"), &reusable)
	declared := reusable.On.WorkflowCall.Inputs
	if len(declared) == 0 {
		t.Fatal("deploy-stage.yml declares no on.workflow_call.inputs")
	}
	bl := d.workflows[0]
	var caller struct {
		On struct {
			WorkflowDispatch struct {
				Inputs map[string]any `yaml:"inputs"`
			} `yaml:"workflow_dispatch"`
		} `yaml:"on"`
		Permissions map[string]string `yaml:"permissions"`
		Jobs        map[string]struct {
			Uses string            `yaml:"uses"`
			With map[string]string `yaml:"with"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal([]byte(bl.text), &caller); err != nil {
		t.Fatalf("docs/adopting.md:%d: %v", bl.line, err)
	}
	if caller.Permissions["id-token"] != "write" {
		t.Errorf("docs/adopting.md:%d: permissions %v: the OIDC credentials need id-token: write", bl.line, caller.Permissions)
	}
	envs := map[string]bool{}
	for _, c := range d.configs {
		f, err := config.Parse(filepath.Join(root, "example", "ctjdeploy.yaml"), []byte(c.text))
		if err == nil {
			for _, n := range f.Names() {
				envs[n] = true
			}
		}
	}
	calls := 0
	inputRef := regexp.MustCompile(`\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}`)
	for name, job := range caller.Jobs {
		if !strings.HasPrefix(job.Uses, "hackforla/ctjdeploy/.github/workflows/deploy-stage.yml@") {
			continue
		}
		calls++
		for k, v := range job.With {
			if _, ok := declared[k]; !ok {
				t.Errorf("docs/adopting.md:%d: job %s passes input %q, which deploy-stage.yml does not declare (it declares %v)", bl.line, name, k, sortedKeys(declared))
			}
			for _, m := range inputRef.FindAllStringSubmatch(v, -1) {
				if _, ok := caller.On.WorkflowDispatch.Inputs[m[1]]; !ok {
					t.Errorf("docs/adopting.md:%d: with.%s uses inputs.%s, which the caller's workflow_dispatch does not declare", bl.line, k, m[1])
				}
			}
		}
		for k, in := range declared {
			if _, ok := job.With[k]; in.Required && !ok {
				t.Errorf("docs/adopting.md:%d: job %s does not pass the required input %q", bl.line, name, k)
			}
		}
		if e := job.With["environment"]; e != "" && !envs[e] {
			t.Errorf("docs/adopting.md:%d: environment %q is not an environment of the guide's config (%v)", bl.line, e, envs)
		}
	}
	if calls != 1 {
		t.Errorf("docs/adopting.md:%d: %d jobs call hackforla/ctjdeploy/.github/workflows/deploy-stage.yml, want 1", bl.line, calls)
	}

	lint := filepath.Join(os.Getenv("HOME"), ".cache", "ctjdeploy", "bin", "actionlint")
	if _, err := os.Stat(lint); err != nil {
		if lint, err = exec.LookPath("actionlint"); err != nil {
			t.Log("actionlint not installed (make tools): the caller workflow was not linted")
			return
		}
	}
	dir := t.TempDir()
	wf := filepath.Join(dir, ".github", "workflows", "deploy-stage.yml")
	if err := os.MkdirAll(filepath.Dir(wf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wf, []byte(bl.text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(lint, "-no-color", wf)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("actionlint on the guide's caller workflow: %v\n%s", err, out)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestAdoptingCommands: every ctjdeploy command line of the guide names a
// command and flags the CLI has, with the arguments it takes, and an
// environment of the guide's config; the exit-code table lists every code.
func TestAdoptingCommands(t *testing.T) {
	root := repoRoot(t)
	d := readAdopting(t)
	envs := map[string]bool{}
	for _, c := range d.configs {
		if f, err := config.Parse(filepath.Join(root, "example", "ctjdeploy.yaml"), []byte(c.text)); err == nil {
			for _, n := range f.Names() {
				envs[n] = true
			}
		}
	}
	n := 0
	for _, bl := range d.sh {
		for i, ln := range strings.Split(bl.text, "\n") {
			ln = strings.TrimSpace(ln)
			if !strings.HasPrefix(ln, "ctjdeploy ") {
				continue
			}
			n++
			where := fmt.Sprintf("docs/adopting.md:%d: %s", bl.line+1+i, ln)
			if c, _, ok := strings.Cut(ln, " #"); ok {
				ln = c
			}
			if c, _, ok := strings.Cut(ln, " >"); ok { // an output redirection
				ln = c
			}
			args := strings.Fields(ln)[1:]
			var out, errb bytes.Buffer
			rootCmd := newRootCmd(&out, &errb, false)
			rewritten := rewriteArgs(args)
			cmd, rest, err := rootCmd.Find(rewritten)
			if err != nil {
				t.Errorf("%s: no such command: %v", where, err)
				continue
			}
			if err := cmd.ParseFlags(rest); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			pos := cmd.Flags().Args()
			if err := cmd.ValidateArgs(pos); err != nil {
				t.Errorf("%s: %v", where, err)
			}
			if cmd.Name() != "version" && (len(pos) == 0 || !envs[pos[0]]) {
				t.Errorf("%s: ENV %v is not an environment of the guide's config", where, pos)
			}
		}
	}
	if n < 5 {
		t.Errorf("docs/adopting.md: %d ctjdeploy command lines checked, want the install, dry run, status, deploy and iam-policy ones", n)
	}

	md, _ := os.ReadFile(filepath.Join(root, "docs", "adopting.md"))
	for _, code := range []string{"0", "1", "2", "3", "4", "5", "6", "130 / 143"} {
		if !strings.Contains(string(md), "\n| "+code+" |") {
			t.Errorf("docs/adopting.md: the exit-code table has no row for %s", code)
		}
	}
}

// incubatorContainerInputs are the inputs terraform/modules/container of
// hackforla/incubator declares today (variables.tf, read 2026-12); the
// guide's module call may set only these and the ones its own variable
// blocks add.
var incubatorContainerInputs = []string{"source", "project_name", "environment", "application_type", "container_image", "container_cpu",
	"container_memory", "container_port", "container_environment", "container_environment_secrets", "listener_priority",
	"hostname", "path", "health_check_path", "additional_host_urls", "launch_type"}

// incubatorCICDInputs are modules/cicd_integration's inputs today.
var incubatorCICDInputs = []string{"source", "project_name", "repository_name"}

// TestAdoptingIncubator: section 9's snippets against the incubator's real
// layout: every hcl block parses; the container module change is the text
// doctor prints as its fixes (deploy/doctor), so the guide and the tool
// cannot drift; the module calls set only inputs the module has today or
// that the guide declares; the CI policy is the data source iam-policy
// --format terraform prints; the OIDC trust is limited to the environment
// subject, and the environment to main.
func TestAdoptingIncubator(t *testing.T) {
	d := readAdopting(t)
	declared := map[string]bool{}
	var all strings.Builder
	for _, bl := range d.hcl {
		f, diags := hclsyntax.ParseConfig([]byte(bl.text), fmt.Sprintf("adopting.md:%d", bl.line), hcl.InitialPos)
		if diags.HasErrors() {
			t.Errorf("docs/adopting.md:%d: hcl does not parse: %v", bl.line, diags)
			continue
		}
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			if b.Type == "variable" && len(b.Labels) == 1 {
				declared[b.Labels[0]] = true
			}
		}
		all.WriteString(bl.text)
	}
	hclText := all.String()
	for name, want := range map[string]string{"ModuleVariables": doctor.ModuleVariables, "ModuleService": doctor.ModuleService,
		"ProjectInputs": doctor.ProjectInputs, "ProjectMoved": doctor.ProjectMoved} {
		if !strings.Contains(hclText, want) {
			t.Errorf("docs/adopting.md: no hcl block holds doctor.%s, the fix doctor prints:\n%s", name, want)
		}
	}
	// The module calls' inputs.
	for _, bl := range d.hcl {
		f, diags := hclsyntax.ParseConfig([]byte(bl.text), "x.tf", hcl.InitialPos)
		if diags.HasErrors() {
			continue
		}
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			if b.Type != "module" || len(b.Labels) != 1 {
				continue
			}
			known := incubatorContainerInputs
			if strings.HasSuffix(b.Labels[0], "_cicd") {
				known = incubatorCICDInputs
			}
			for name := range b.Body.Attributes {
				if !declared[name] && !containsAction(known, name) {
					t.Errorf("docs/adopting.md:%d: module %s sets %q, which the incubator's module lacks and the guide does not declare", bl.line, b.Labels[0], name)
				}
			}
		}
	}
	// The CI policy: the data source iam-policy --format terraform prints.
	env := &config.Environment{Name: "stage", Region: "us-west-2", Cluster: "incubator-prod", Service: "civic-tech-jobs-fullstack-stage",
		Images: map[string]*config.Image{"django": {Repository: "civic-tech-jobs-backend"}}}
	src := string(iampolicy.Policy(env, "035866691871", "civic-tech-jobs-fullstack-stage", nil).HCL("ctjdeploy_" + env.Name))
	m := regexp.MustCompile(`^data "aws_iam_policy_document" "([^"]+)"`).FindStringSubmatch(src)
	if m == nil || !strings.Contains(hclText, "data.aws_iam_policy_document."+m[1]+".json") {
		t.Errorf("docs/adopting.md: cicd.tf must use the data source iam-policy --format terraform prints (%v)", m)
	}
	var sh strings.Builder
	for _, bl := range d.sh {
		sh.WriteString(bl.text)
	}
	if !strings.Contains(sh.String(), "iam-policy --format terraform") {
		t.Error("docs/adopting.md: no iam-policy --format terraform command")
	}
	// OIDC and the GitHub environment.
	for _, want := range []string{`"repo:hackforla/${var.repository_name}:environment:${e}"`, `github_environments = ["stage"]`} {
		if !strings.Contains(hclText, want) {
			t.Errorf("docs/adopting.md: the OIDC snippets lack %s", want)
		}
	}
	for _, want := range []string{"environments/stage/deployment-branch-policies -f name=main -f type=branch", "deployment_branch_policy[custom_branch_policies]=true"} {
		if !strings.Contains(sh.String(), want) {
			t.Errorf("docs/adopting.md: the GitHub environment commands lack %q", want)
		}
	}
	md, _ := os.ReadFile(filepath.Join(repoRoot(t), "docs", "adopting.md"))
	for _, want := range []string{"repo:hackforla/CivicTechJobs:environment:stage", "ctjdeploy stage doctor", "ctjdeploy stage --dry-run"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("docs/adopting.md lacks %q", want)
		}
	}
}
