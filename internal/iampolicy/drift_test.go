package iampolicy

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/hackforla/ctjdeploy/internal/config"
)

// The drift-proof test: the AWS operations the binary calls are derived from
// its source, and each must be allowed by the policy (or need no permission).
//
// What counts as a call, in every non-test file of every package of this
// module except the test helpers listed in testHelpers (a new helper that
// creates clusters or repositories must be listed there, or the test asks
// the policy to allow what it calls):
//   - any reference to an SDK input type, svc.XxxInput (svc an import of
//     github.com/aws/aws-sdk-go-v2/service/SVC): a method of a narrow
//     interface taking it, a direct client call, a paginator;
//   - svc.NewXxxPaginator;
//   - a call x.Xxx(ctx, nil, ...) where Xxx is an operation of the ecs, ecr
//     or sts client (an operation called with no input);
//   - go-containerregistry's remote.F: mapped to the ECR actions behind the
//     registry API by registryActions; an unmapped F fails the test.

const sdkServicePrefix = "github.com/aws/aws-sdk-go-v2/service/"
const remotePath = "github.com/google/go-containerregistry/pkg/v1/remote"

// registryActions maps go-containerregistry remote functions to the ECR
// actions the registry API calls they make are authorized by.
var registryActions = map[string][]string{
	"Head":       {"ecr:BatchGetImage"},
	"Get":        {"ecr:BatchGetImage"},
	"Image":      concat(ECRPull),
	"Index":      concat(ECRPull),
	"Layer":      {"ecr:GetDownloadUrlForLayer"},
	"List":       {"ecr:ListImages"},
	"Write":      concat(ECRPush, ECRPull), // HEADs blobs, mounts across repositories, checks the manifest
	"WriteIndex": concat(ECRPush, ECRPull),
	"WriteLayer": concat(ECRPush),
	"MultiWrite": concat(ECRPush, ECRPull),
	"Put":        {"ecr:PutImage", "ecr:BatchGetImage"},
	"Tag":        {"ecr:PutImage", "ecr:BatchGetImage"},
	"NewPusher":  concat(ECRPush, ECRPull),
	"NewPuller":  concat(ECRPull),
}

// iamPrefix maps SDK service packages to their IAM action prefix where the
// two differ.
var iamPrefix = map[string]string{"cloudwatchlogs": "logs"}

// remoteNonCalls are identifiers of package remote that make no request.
var remoteNonCalls = map[string]bool{
	"Option": true, "Backoff": true, "DefaultTransport": true, "Descriptor": true,
	"Pusher": true, "Puller": true, "Taggable": true, "ErrSchema1": true,
	// A layer wrapped as mountable: the mount itself is made by Write
	// (POST ?mount=&from=, ECR's push actions plus the pull of the source
	// repository, both within ECRPushPullOwnRepositories).
	"MountableLayer": true,
}

// sdkClients are the clients whose method sets tell which names are
// operations (for calls with a nil input).
var sdkClients = map[string]reflect.Type{
	"ecs": reflect.TypeOf(&ecs.Client{}),
	"ecr": reflect.TypeOf(&ecr.Client{}),
	"sts": reflect.TypeOf(&sts.Client{}),
}

func isOperation(svc, name string) bool {
	t, ok := sdkClients[svc]
	if !ok {
		return false
	}
	m, ok := t.MethodByName(name)
	return ok && m.Type.NumIn() >= 3 && m.Type.In(2).Kind() == reflect.Pointer && m.Type.In(2).Elem().Name() == name+"Input"
}

// use is an AWS action the code needs, and where.
type use struct {
	action string
	pos    string
}

// collect returns the actions the files need, and the remote functions it
// cannot map.
func collect(fset *token.FileSet, files []*ast.File) (uses []use, unmapped []string) {
	for _, f := range files {
		svcs := map[string]string{} // local import name → service (ecs)
		remoteName := ""
		for _, im := range f.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			local := path[strings.LastIndex(path, "/")+1:]
			if im.Name != nil {
				local = im.Name.Name
			}
			if svc, ok := strings.CutPrefix(path, sdkServicePrefix); ok && !strings.Contains(svc, "/") {
				if p, ok := iamPrefix[svc]; ok {
					svc = p
				}
				svcs[local] = svc
			}
			if path == remotePath {
				remoteName = local
			}
		}
		add := func(n ast.Node, action string) {
			uses = append(uses, use{action, fset.Position(n.Pos()).String()})
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				pkg, ok := n.X.(*ast.Ident)
				if !ok {
					return true
				}
				name := n.Sel.Name
				if svc, ok := svcs[pkg.Name]; ok {
					if op, ok := strings.CutSuffix(name, "Input"); ok && op != "" {
						add(n, svc+":"+op)
					} else if op, ok := strings.CutPrefix(name, "New"); ok && strings.HasSuffix(op, "Paginator") {
						add(n, svc+":"+strings.TrimSuffix(op, "Paginator"))
					}
				}
				if remoteName != "" && pkg.Name == remoteName {
					if acts, ok := registryActions[name]; ok {
						for _, a := range acts {
							add(n, a)
						}
					} else if !remoteNonCalls[name] && !strings.HasPrefix(name, "With") {
						unmapped = append(unmapped, fmt.Sprintf("%s: remote.%s", fset.Position(n.Pos()), name))
					}
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || len(n.Args) < 2 {
					return true
				}
				if id, ok := n.Args[1].(*ast.Ident); !ok || id.Name != "nil" {
					return true
				}
				for _, svc := range svcs {
					if isOperation(svc, sel.Sel.Name) {
						add(n, svc+":"+sel.Sel.Name)
					}
				}
			}
			return true
		})
	}
	return uses, unmapped
}

// missing returns the uses whose action the document does not allow.
func missing(d Document, uses []use) []use {
	allowed := map[string]bool{}
	for _, a := range d.Actions() {
		allowed[a] = true
	}
	for _, a := range NoPermissionNeeded {
		allowed[a] = true
	}
	for _, a := range DoctorOnly {
		allowed[a] = true
	}
	var out []use
	for _, u := range uses {
		if !allowed[u.action] {
			out = append(out, u)
		}
	}
	return out
}

// testHelpers are the module's packages that only tests use: they create
// and delete clusters, services and repositories, which ctjdeploy never does.
var testHelpers = []string{
	"github.com/hackforla/ctjdeploy/internal/teststack",
	"github.com/hackforla/ctjdeploy/internal/ecssim",
	"github.com/hackforla/ctjdeploy/bench",
	"github.com/hackforla/ctjdeploy/example",
}

func isTestHelper(importPath string) bool {
	for _, h := range testHelpers {
		if importPath == h || strings.HasPrefix(importPath, h+"/") {
			return true
		}
	}
	return false
}

// moduleFiles parses the non-test Go files of the module's packages, test
// helpers excepted.
func moduleFiles(t *testing.T) (*token.FileSet, []*ast.File) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	cmd := exec.Command("go", "list", "-e", "-f", `{{.ImportPath}} {{.Dir}}{{range .GoFiles}} {{.}}{{end}}`, "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 3 || isTestHelper(fields[0]) {
			continue
		}
		for _, name := range fields[2:] {
			f, err := parser.ParseFile(fset, filepath.Join(fields[1], name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
	}
	if len(files) < 5 {
		t.Fatalf("found only %d files: go list output:\n%s", len(files), out)
	}
	return fset, files
}

func testEnv() *config.Environment {
	return &config.Environment{
		Name: "stage", Region: "us-west-2", Cluster: "incubator-prod", Service: "civic-tech-jobs-fullstack-stage",
		Images: map[string]*config.Image{
			"django": {Name: "django", Repository: "civic-tech-jobs-backend"},
			"next":   {Name: "next", Repository: "civic-tech-jobs-frontend"},
		},
	}
}

func TestPolicyCoversEveryOperationTheCodeCalls(t *testing.T) {
	fset, files := moduleFiles(t)
	uses, unmapped := collect(fset, files)
	for _, u := range unmapped {
		t.Errorf("%s: a registry call this test cannot map to ECR actions; add it to registryActions (or remoteNonCalls)", u)
	}
	d := Policy(testEnv(), "123456789012", "fam", []string{"arn:aws:iam::123456789012:role/x"}, "/ecs/civic-tech-jobs-fullstack-stage")
	for _, u := range missing(d, uses) {
		t.Errorf("%s calls %s, which the IAM policy does not allow: add it to iampolicy.Policy", u.pos, u.action)
	}
	called := map[string]bool{}
	for _, u := range uses {
		called[u.action] = true
	}
	var names []string
	for a := range called {
		names = append(names, a)
	}
	sort.Strings(names)
	t.Logf("operations the code calls: %s", strings.Join(names, " "))
	for _, a := range d.Actions() {
		if !called[a] && a != "iam:PassRole" {
			t.Logf("the policy allows %s, which no code calls yet", a)
		}
	}
	if !called["ecr:GetAuthorizationToken"] {
		t.Errorf("the scan found no ecr:GetAuthorizationToken; the push package calls it, so the scan is broken")
	}
}

// TestDriftCheckFailsOnNewCall proves the check above can fail: a synthetic
// package that calls operations the policy lacks, in each of the shapes the
// scan recognizes.
func TestDriftCheckFailsOnNewCall(t *testing.T) {
	const src = `package synthetic

import (
	"context"

	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

type ecsAPI interface {
	DescribeServices(ctx context.Context, in *awsecs.DescribeServicesInput, opts ...func(*awsecs.Options)) (*awsecs.DescribeServicesOutput, error)
	DeleteService(ctx context.Context, in *awsecs.DeleteServiceInput, opts ...func(*awsecs.Options)) (*awsecs.DeleteServiceOutput, error)
}

func f(ctx context.Context, c *ecr.Client, s *ssm.Client) {
	c.DescribeRegistry(ctx, nil)
	s.GetParameters(ctx, &ssm.GetParametersInput{})
	_ = awsecs.NewListServicesPaginator
	_ = remote.Delete
	_ = remote.WithAuth
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "synthetic.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	uses, unmapped := collect(fset, []*ast.File{f})
	d := Policy(testEnv(), "123456789012", "fam", nil)
	var got []string
	for _, u := range missing(d, uses) {
		got = append(got, u.action)
	}
	sort.Strings(got)
	want := []string{"ecr:DescribeRegistry", "ecs:DeleteService", "ecs:ListServices", "ssm:GetParameters"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("missing = %v, want %v", got, want)
	}
	if len(unmapped) != 1 || !strings.HasSuffix(unmapped[0], "remote.Delete") {
		t.Errorf("unmapped = %v, want remote.Delete only", unmapped)
	}
	// ecs:DescribeServices is in the policy: not reported.
	for _, u := range uses {
		if u.action == "ecs:DescribeServices" {
			return
		}
	}
	t.Error("the interface method taking *ecs.DescribeServicesInput was not seen")
}

// TestEveryUpdateServiceNamesATaskDefinition: the policy allows
// ecs:UpdateService only with the ecs:task-definition condition key (a
// revision of the family); an UpdateService without a taskDefinition has no
// such key and would be denied. Every ecs.UpdateServiceInput the code
// builds must set TaskDefinition.
func TestEveryUpdateServiceNamesATaskDefinition(t *testing.T) {
	fset, files := moduleFiles(t)
	n := 0
	for _, f := range files {
		ecsName := ""
		for _, im := range f.Imports {
			if p, _ := strconv.Unquote(im.Path.Value); p == sdkServicePrefix+"ecs" {
				ecsName = "ecs"
				if im.Name != nil {
					ecsName = im.Name.Name
				}
			}
		}
		if ecsName == "" {
			continue
		}
		ast.Inspect(f, func(node ast.Node) bool {
			lit, ok := node.(*ast.CompositeLit)
			if !ok {
				return true
			}
			sel, ok := lit.Type.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "UpdateServiceInput" {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); !ok || id.Name != ecsName {
				return true
			}
			n++
			for _, el := range lit.Elts {
				if kv, ok := el.(*ast.KeyValueExpr); ok {
					if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "TaskDefinition" {
						return true
					}
				}
			}
			t.Errorf("%s: an ecs.UpdateServiceInput without TaskDefinition: the printed policy (condition ecs:task-definition) would deny it; set it, or change iampolicy.Policy", fset.Position(lit.Pos()))
			return true
		})
	}
	if n == 0 {
		t.Error("found no ecs.UpdateServiceInput: the scan is broken (deploy/rollout builds one)")
	}
}
