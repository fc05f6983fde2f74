package push_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/hackforla/ctjdeploy/build"
	"github.com/hackforla/ctjdeploy/internal/registrytest"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/internal/teststack"
	"github.com/hackforla/ctjdeploy/push"
)

func TestMain(m *testing.M) {
	if push.IsCredentialHelper() {
		os.Exit(push.RunCredentialHelper(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// buildExample builds the example's django and next images with tags unique
// to the test.
func buildExample(t *testing.T, st *teststack.Stack, prefix string, rec report.Reporter) []build.Image {
	t.Helper()
	ex := st.ExampleDir()
	d, err := build.NewDocker(build.WithReporter(rec))
	if err != nil {
		t.Fatal(err)
	}
	specs := []build.Spec{
		{Name: "django", Context: filepath.Join(ex, "backend"), Dockerfile: filepath.Join(ex, "stage", "django.dockerfile"),
			Labels: map[string]string{"org.opencontainers.image.revision": prefix}, Tag: "ctjdeploy-test/" + prefix + "django:latest"},
		{Name: "next", Context: filepath.Join(ex, "frontend"), Dockerfile: filepath.Join(ex, "stage", "next.dockerfile"),
			Labels: map[string]string{"org.opencontainers.image.revision": prefix}, Tag: "ctjdeploy-test/" + prefix + "next:latest"},
	}
	imgs, err := build.BuildAll(context.Background(), d, specs, rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range specs {
			_ = st.Command("/usr/bin/docker", "rmi", s.Tag).Run()
		}
	})
	return imgs
}

func createRepo(t *testing.T, st *teststack.Stack, name string, mut ecrtypes.ImageTagMutability) {
	t.Helper()
	st.CreateRepository(t, name, mut)
}

// noToken fails if the registry password appears in s.
func noToken(t *testing.T, where, s string) {
	t.Helper()
	if strings.Contains(s, teststack.RegistryPassword) {
		t.Errorf("the registry password appears in %s", where)
	}
}

func eventsText(evs []report.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%s %s %s %s %v %v\n", e.Kind, e.Phase, e.Subject, e.Message, e.Err, e.Fields)
	}
	return b.String()
}

func TestPushExampleImages(t *testing.T) {
	st := teststack.Start(t)
	st.Setenv(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	tmp := t.TempDir() // every temporary file of the build and the push goes here
	t.Setenv("TMPDIR", tmp)
	ctx := context.Background()
	n := teststack.NewNames(t)
	createRepo(t, st, n.BackendRepo, "")
	createRepo(t, st, n.FrontendRepo, "")
	var rec report.Recorder
	imgs := buildExample(t, st, n.Prefix, &rec)
	repos := map[string]string{"django": n.BackendRepo, "next": n.FrontendRepo}

	proxy := registrytest.Start(t, st.Registry)
	cacheDir := t.TempDir()
	p, err := push.New(ctx, st.AWSConfig(t), push.WithReporter(&rec), push.WithCacheDir(cacheDir))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	// Plan on the empty repositories: every layer missing, nothing written.
	for _, img := range imgs {
		pl, err := p.Plan(ctx, img, push.Target{Registry: proxy.Addr, Repository: repos[img.Name], Tags: []string{"c1", "stage"}})
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, l := range pl.Layers {
			if !l.Missing {
				t.Errorf("%s: layer %s present in an empty repository", img.Name, l.Digest)
			}
			sum += l.Size
		}
		if pl.MissingBytes == 0 || pl.MissingBytes > sum || len(pl.ExistingTags) != 0 {
			t.Errorf("%s: plan %+v", img.Name, pl)
		}
	}
	// A plan writes nothing: it HEADs blobs and reads what the registry
	// holds under the target's tags (manifest and config) to know layers.
	for _, r := range proxy.Requests() {
		if !strings.HasPrefix(r, "HEAD ") && !strings.HasPrefix(r, "GET ") || strings.HasPrefix(r, "GET upload") {
			t.Errorf("plan made a writing request: %s", r)
		}
	}

	// Cold push: TAG carries the upload, ENV is a manifest write.
	proxy.Reset()
	pushed := map[string]push.Result{}
	for _, img := range imgs {
		res, err := p.Push(ctx, img, push.Target{Registry: proxy.Addr, Repository: repos[img.Name], Tags: []string{"c1", "stage"}})
		if err != nil {
			t.Fatal(err)
		}
		if res.UploadedBytes == 0 || !strings.HasPrefix(res.Ref, proxy.Addr+"/"+repos[img.Name]+"@sha256:") {
			t.Errorf("%s: result %+v", img.Name, res)
		}
		pushed[img.Name] = res
	}
	if proxy.UploadedBytes() == 0 {
		t.Error("the registry received no blob bytes on a cold push")
	}
	// Digests resolve under TAG and ENV, straight from the registry.
	for name, res := range pushed {
		for _, tag := range []string{"c1", "stage"} {
			ref, err := p.Resolve(ctx, st.Registry, repos[name], tag)
			if err != nil {
				t.Fatal(err)
			}
			if want := st.Registry + "/" + repos[name] + "@" + res.Digest; ref != want {
				t.Errorf("%s:%s resolves to %s, want %s", name, tag, ref, want)
			}
		}
	}
	if _, err := p.Resolve(ctx, st.Registry, n.BackendRepo, "no-such-tag"); !errors.Is(err, push.ErrTagNotFound) {
		t.Errorf("Resolve(no-such-tag) = %v, want ErrTagNotFound", err)
	}

	// Unchanged re-push under a new commit tag: no blob upload at all.
	proxy.Reset()
	for _, img := range imgs {
		res, err := p.Push(ctx, img, push.Target{Registry: proxy.Addr, Repository: repos[img.Name], Tags: []string{"c2", "stage"}})
		if err != nil {
			t.Fatal(err)
		}
		if res.UploadedBytes != 0 || res.Digest != pushed[img.Name].Digest {
			t.Errorf("%s: re-push %+v, want 0 bytes and digest %s", img.Name, res, pushed[img.Name].Digest)
		}
	}
	if b := proxy.UploadedBytes(); b != 0 {
		t.Errorf("re-push uploaded %d bytes to the registry", b)
	}
	if c := proxy.Count("POST upload"); c != 0 {
		t.Errorf("re-push started %d blob uploads: %v", c, proxy.Requests())
	}
	// The plan now says nothing is missing and both tags name the image.
	for _, img := range imgs {
		pl, err := p.Plan(ctx, img, push.Target{Registry: st.Registry, Repository: repos[img.Name], Tags: []string{"c2", "stage"}})
		if err != nil {
			t.Fatal(err)
		}
		if pl.MissingBytes != 0 || len(pl.ExistingTags) != 2 || pl.Digest != pushed[img.Name].Digest {
			t.Errorf("%s: plan after push %+v", img.Name, pl)
		}
	}

	// The token: in no event, no file we or docker may have written.
	noToken(t, "events", eventsText(rec.All()))
	for _, dir := range []string{cacheDir, home, st.Env["DOCKER_CONFIG"], tmp} {
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !d.Type().IsRegular() {
				return nil
			}
			if info, err := d.Info(); err != nil || info.Size() > 1<<20 {
				return nil
			}
			if b, err := os.ReadFile(path); err == nil {
				noToken(t, path, string(b))
			}
			return nil
		})
	}
	// Credentials went to the registry (basic auth) but never appear decoded.
	if len(proxy.AuthHeaders()) == 0 {
		t.Error("no request carried credentials")
	}
}

func TestPushWrongPassword(t *testing.T) {
	st := teststack.Start(t)
	st.Setenv(t)
	ctx := context.Background()
	n := teststack.NewNames(t)
	createRepo(t, st, n.BackendRepo, "")
	imgs := buildExample(t, st, n.Prefix, report.Discard)
	proxy := registrytest.Start(t, st.Registry)
	proxy.WrongPassword(true)
	p, err := push.New(ctx, st.AWSConfig(t), push.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.Push(ctx, imgs[0], push.Target{Registry: proxy.Addr, Repository: n.BackendRepo, Tags: []string{"c1"}})
	if err == nil {
		t.Fatal("push with a wrong password succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"rejected the credentials", "401", "ecr:GetAuthorizationToken", proxy.Addr} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	noToken(t, "the error", msg)
}

func TestPushRepositoryNotFound(t *testing.T) {
	st := teststack.Start(t)
	st.Setenv(t)
	ctx := context.Background()
	n := teststack.NewNames(t)
	p, err := push.New(ctx, st.AWSConfig(t), push.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	img := build.Image{Name: "django", LocalRef: "python:3.13-alpine"}
	for _, f := range []func() error{
		func() error {
			_, err := p.Push(ctx, img, push.Target{Registry: st.Registry, Repository: n.BackendRepo, Tags: []string{"c1"}})
			return err
		},
		func() error {
			_, err := p.Plan(ctx, img, push.Target{Registry: st.Registry, Repository: n.BackendRepo, Tags: []string{"c1"}})
			return err
		},
	} {
		err := f()
		if err == nil || !strings.Contains(err.Error(), "repository "+n.BackendRepo+" not found") || !strings.Contains(err.Error(), "Terraform") {
			t.Errorf("error = %v, want repository not found, owned by Terraform", err)
		}
	}
}

func TestPushImmutableTagsSkipsEnv(t *testing.T) {
	st := teststack.Start(t)
	st.Setenv(t)
	ctx := context.Background()
	n := teststack.NewNames(t)
	createRepo(t, st, n.BackendRepo, ecrtypes.ImageTagMutabilityImmutable)
	imgs := buildExample(t, st, n.Prefix, report.Discard)
	var rec report.Recorder
	p, err := push.New(ctx, st.AWSConfig(t), push.WithReporter(&rec), push.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	first, err := p.Push(ctx, imgs[0], push.Target{Registry: st.Registry, Repository: n.BackendRepo, Tags: []string{"c1", "stage"}})
	if err != nil {
		t.Fatal(err)
	}
	// Another image (next) into the same repository: its commit tag is
	// written, the environment tag stays where it was, with a warning.
	second, err := p.Push(ctx, imgs[1], push.Target{Registry: st.Registry, Repository: n.BackendRepo, Tags: []string{"c2", "stage"}})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := p.Resolve(ctx, st.Registry, n.BackendRepo, "stage")
	if err != nil {
		t.Fatal(err)
	}
	if ref != first.Ref {
		t.Errorf("stage = %s, want it kept on %s", ref, first.Ref)
	}
	if ref, _ := p.Resolve(ctx, st.Registry, n.BackendRepo, "c2"); ref != second.Ref {
		t.Errorf("c2 = %s, want %s", ref, second.Ref)
	}
	warned := false
	for _, e := range rec.All() {
		if e.Kind == report.Warn && strings.Contains(e.Message, "immutable") && strings.Contains(e.Message, "stage") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no warning about the immutable stage tag: %s", eventsText(rec.All()))
	}
	// Re-pushing c1 (same image) is fine; moving c1 to another image is not.
	if _, err := p.Push(ctx, imgs[0], push.Target{Registry: st.Registry, Repository: n.BackendRepo, Tags: []string{"c1"}}); err != nil {
		t.Errorf("re-push of the same image under an immutable tag: %v", err)
	}
	if _, err := p.Push(ctx, imgs[1], push.Target{Registry: st.Registry, Repository: n.BackendRepo, Tags: []string{"c1"}}); err == nil || !strings.Contains(err.Error(), "immutable") {
		t.Errorf("moving an immutable tag: err = %v", err)
	}
}
