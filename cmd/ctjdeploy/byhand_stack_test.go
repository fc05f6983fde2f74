package main

// The README's "deploy by hand" steps, run verbatim against the local stack:
// scripts/stack up, eval "$(scripts/stack env)", make build, ctjdeploy stage
// in a copy of example/ (exit 0), then a bad commit (exit 3). The stack's
// simulator (scripts/stack starts it) plays ECS's rollout, so this is what a
// person gets who follows the README.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// readmeByHand returns the shell blocks of README.md between the by-hand
// markers, in order.
func readmeByHand(t *testing.T, root string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "<!-- by-hand: begin")
	j := strings.Index(s, "<!-- by-hand: end -->")
	if i < 0 || j < i {
		t.Fatal("README.md has no <!-- by-hand: begin ... end --> section")
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(s[i:j], -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) != 3 {
		t.Fatalf("README.md's by-hand section has %d sh blocks, want 3 (setup, deploy, bad commit)", len(blocks))
	}
	return blocks
}

// TestReadmeByHand takes about 60-90 s: two builds of the example's images
// (the second only django's last layers) and two rollouts whose tasks run as
// containers, the bad one until the circuit breaker counts three failures.
func TestReadmeByHand(t *testing.T) {
	st := teststack.Start(t)
	blocks := readmeByHand(t, st.RepoRoot)

	// The example's config names the default stack's registry; on a stack
	// with other ports (CTJDEPLOY_REGISTRY_PORT) the copy is pointed at its
	// registry. This is the only line run that is not in the README.
	fixRegistry := `if [ "$CTJDEPLOY_REGISTRY" != 127.0.0.1:5055 ]; then
  sed -i "s|127.0.0.1:5055|$CTJDEPLOY_REGISTRY|" ctjdeploy.yaml && git commit -qam "this stack's registry"
fi
`
	script := "set -u\n" + blocks[0] + fixRegistry + blocks[1] + blocks[2]

	tmp := t.TempDir()
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = st.RepoRoot
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "HOME="+tmp, "NO_COLOR=1", "GITHUB_ACTIONS=",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_NOSYSTEM=1",
		// go's caches stay where they were (HOME moved)
		"GOCACHE="+goEnv(t, "GOCACHE"), "GOMODCACHE="+goEnv(t, "GOMODCACHE"), "GOPATH="+goEnv(t, "GOPATH"))
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("the README's by-hand steps took %s", time.Since(start).Round(time.Second))
	if err != nil {
		t.Fatalf("the by-hand steps failed: %v\n%s", err, out)
	}
	exits := regexp.MustCompile(`(?m)^exit (\d+)$`).FindAllStringSubmatch(string(out), -1)
	if len(exits) != 2 || exits[0][1] != "0" || exits[1][1] != "3" {
		t.Fatalf("exits %v, want 0 then 3\n%s", exits, out)
	}
	text := string(out)
	for _, want := range []string{"django exit 1", "SECRET_KEY must not be empty", "ROLLBACK_SUCCESSFUL"} {
		if !strings.Contains(text, want) {
			t.Errorf("the bad commit's output lacks %q\n%s", want, text)
		}
	}

	// The stack's state: each deploy registered a revision, and the service
	// runs the first (good) one again, with the image the first deploy
	// pushed for django.
	reg := regexp.MustCompile(`(?m)^registered (`+regexp.QuoteMeta(teststack.ExampleFamily)+`:\d+)$`).FindAllStringSubmatch(text, -1)
	pushed := regexp.MustCompile(`(?m)^django: (\S+@sha256:[0-9a-f]{64}) \(`).FindAllStringSubmatch(text, -1)
	if len(reg) != 2 || len(pushed) != 2 || pushed[0][1] == pushed[1][1] {
		t.Fatalf("want two registered revisions and two different django digests pushed, got %v and %v\n%s", reg, pushed, text)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := st.ECS(t)
	ds, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(teststack.ExampleCluster), Services: []string{teststack.ExampleService}})
	if err != nil || len(ds.Services) != 1 {
		t.Fatalf("DescribeServices: %v", err)
	}
	live := aws.ToString(ds.Services[0].TaskDefinition)
	if !strings.HasSuffix(live, "/"+reg[0][1]) {
		t.Errorf("the service runs %s after the rollback, want the good commit's %s", live, reg[0][1])
	}
	td, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(live)})
	if err != nil {
		t.Fatal(err)
	}
	var image string
	for _, cd := range td.TaskDefinition.ContainerDefinitions {
		if aws.ToString(cd.Name) == "django" {
			image = aws.ToString(cd.Image)
		}
	}
	if image != pushed[0][1] {
		t.Errorf("the live revision's django image is %s, want the good commit's %s", image, pushed[0][1])
	}
}

func goEnv(t *testing.T, k string) string {
	out, err := exec.Command("go", "env", k).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", k, err)
	}
	return strings.TrimSpace(string(out))
}
