package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/hackforla/ctjdeploy/internal/ecssim"
	"github.com/hackforla/ctjdeploy/internal/report"
)

// A rebuild of a deployed commit that does not give the same image (a
// non-reproducible build: here a file that differs) must not move the
// commit tag off the digest the commit's ACTIVE revision pins: the image
// already under the tag is deployed, nothing is pushed, and no new revision
// is registered.
func TestNonReproducibleRebuildKeepsTheCommitTag(t *testing.T) {
	t.Parallel() // its own cluster, service, repositories and simulator (TestMain: the stack's environment)
	f := newFixture(t, ecssim.Success, 100)
	ctx := context.Background()
	ctxDir := filepath.Join(t.TempDir(), "backend")
	if out, err := exec.Command("cp", "-a", f.env.Images["django"].Context, ctxDir).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	f.env.Images["django"].Context = ctxDir
	tag := f.c[1]
	first, err := Run(ctx, f.opts(tag), f.deps)
	if err != nil {
		t.Fatal(err)
	}
	pinned := first.Images[0].Digest // django
	regDigest := func(repo, ref string) string {
		e := &faultEnv{fixture: f}
		return e.manifestDigest(t, repo, ref)
	}
	if got := regDigest(f.n.BackendRepo, tag); got != pinned {
		t.Fatalf("commit tag after the first deploy: %s, want %s", got, pinned)
	}

	if err := os.WriteFile(filepath.Join(ctxDir, "built-at.txt"), []byte("a build that differs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var rec report.Recorder
	o := f.opts(tag)
	o.Reporter = &rec
	second, err := Run(ctx, o, f.deps)
	if err != nil {
		t.Fatal(err)
	}
	dj := second.Images[0]
	if dj.Rebuilt == "" || dj.Rebuilt == pinned || dj.Digest != pinned || dj.Pushed {
		t.Fatalf("the rebuild must be noticed and the tagged image kept: %+v", dj)
	}
	if got := regDigest(f.n.BackendRepo, tag); got != pinned {
		t.Fatalf("the commit tag moved from %s to %s", pinned, got)
	}
	if got := regDigest(f.n.BackendRepo, dj.Rebuilt); got != "" {
		t.Fatalf("the rebuild %s was pushed", dj.Rebuilt)
	}
	if got := regDigest(f.n.BackendRepo, f.env.Name); got != pinned {
		t.Fatalf("tag %s names %s, want the kept %s", f.env.Name, got, pinned)
	}
	if second.Registered || second.TaskDefARN != first.TaskDefARN {
		t.Fatalf("a new revision for the same images: %s (first %s)", second.TaskDefARN, first.TaskDefARN)
	}
	td, err := f.moto.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(first.TaskDefARN)})
	if err != nil || !strings.Contains(aws.ToString(td.TaskDefinition.ContainerDefinitions[0].Image)+aws.ToString(td.TaskDefinition.ContainerDefinitions[1].Image), pinned) {
		t.Fatalf("the ACTIVE revision %s does not pin %s: %v", first.TaskDefARN, pinned, err)
	}
	warned := false
	for _, e := range rec.Events {
		warned = warned || (e.Kind == report.Warn && strings.Contains(e.Message, "not reproducible") && strings.Contains(e.Message, "push a new commit"))
	}
	if !warned {
		t.Error("no warning about the non-reproducible rebuild")
	}
}
