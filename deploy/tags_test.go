package deploy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hackforla/ctjdeploy/build"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/push"
)

// tagRegistry is a Pusher and Tagger over an in-memory map of
// repository:tag → digest; pushes and tag moves of failRepo fail.
type tagRegistry struct {
	tags     map[string]string
	failPush string
	failTag  string
	pushed   []push.Target
}

func (g *tagRegistry) Plan(context.Context, build.Image, push.Target) (push.Plan, error) {
	return push.Plan{}, nil
}

func (g *tagRegistry) Push(_ context.Context, img build.Image, t push.Target) (push.Result, error) {
	if t.Repository == g.failPush {
		return push.Result{}, errors.New("manifest PUT refused")
	}
	g.pushed = append(g.pushed, t)
	for _, tag := range t.Tags {
		if !containsStr(t.MoveLater, tag) {
			g.tags[t.Repository+":"+tag] = img.ID
		}
	}
	return push.Result{Digest: img.ID}, nil
}

func (g *tagRegistry) Resolve(_ context.Context, registry, repo, tag string) (string, error) {
	d, ok := g.tags[repo+":"+tag]
	if !ok {
		return "", push.ErrTagNotFound
	}
	return registry + "/" + repo + "@" + d, nil
}

func (g *tagRegistry) Tag(_ context.Context, _, repo, digest string, tags ...string) error {
	if repo == g.failTag {
		return errors.New("tag PUT refused")
	}
	for _, t := range tags {
		g.tags[repo+":"+t] = digest
	}
	return nil
}

func tagRun(g *tagRegistry) *run {
	env := &config.Environment{Name: "stage", Images: map[string]*config.Image{
		"django": {Name: "django", Repository: "back"}, "next": {Name: "next", Repository: "front"}}}
	res := &Result{Images: []Image{
		{Name: "django", Digest: "sha256:newd", MissingBytes: 1},
		{Name: "next", Digest: "sha256:newn", MissingBytes: 1}}}
	images := map[string]imageWork{"django": {built: build.Image{ID: "sha256:newd"}}, "next": {built: build.Image{ID: "sha256:newn"}}}
	return &run{o: Options{Env: env, Tag: "c2"}, d: Deps{Pusher: g, Registry: "127.0.0.1:5000"}, res: res, rep: report.Discard, images: images}
}

func TestEnvTagsMoveAfterEveryPush(t *testing.T) {
	g := &tagRegistry{tags: map[string]string{"back:stage": "sha256:oldd", "front:stage": "sha256:oldn"}, failPush: "front"}
	r := tagRun(g)
	err := r.pushImages(context.Background(), report.Begin(report.Discard, "push"))
	if err == nil || !strings.Contains(err.Error(), "tag stage was not moved on any repository (django pushed under c2 only)") {
		t.Fatalf("err %v", err)
	}
	if g.tags["back:stage"] != "sha256:oldd" || g.tags["back:c2"] != "sha256:newd" {
		t.Errorf("after next's push failed: %v", g.tags)
	}
	if len(g.pushed) != 1 || !containsStr(g.pushed[0].MoveLater, "stage") || !containsStr(g.pushed[0].Tags, "stage") {
		t.Errorf("push targets %+v: ENV must be read for known layers and moved later", g.pushed)
	}
	// Both pushed: both ENV tags move.
	g = &tagRegistry{tags: map[string]string{"back:stage": "sha256:oldd"}}
	if err := tagRun(g).pushImages(context.Background(), report.Begin(report.Discard, "push")); err != nil {
		t.Fatal(err)
	}
	if g.tags["back:stage"] != "sha256:newd" || g.tags["front:stage"] != "sha256:newn" {
		t.Errorf("after both pushes: %v", g.tags)
	}
}

func TestEnvTagMoveFailurePutsBackTheOthers(t *testing.T) {
	g := &tagRegistry{tags: map[string]string{"back:stage": "sha256:oldd", "front:stage": "sha256:oldn"}, failTag: "front"}
	err := tagRun(g).pushImages(context.Background(), report.Begin(report.Discard, "push"))
	if err == nil || !strings.Contains(err.Error(), "tag stage was put back where it was on django") {
		t.Fatalf("err %v", err)
	}
	if g.tags["back:stage"] != "sha256:oldd" || g.tags["front:stage"] != "sha256:oldn" {
		t.Errorf("ENV tags after a failed move: %v", g.tags)
	}
}
