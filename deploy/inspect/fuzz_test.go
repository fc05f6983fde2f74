package inspect

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

// FuzzParseImage: ParseImage never panics, its parts put back together are
// the reference, and wherever go-containerregistry (the library that pushes
// the images) accepts a registry-qualified reference strictly, both agree on
// registry, repository path, tag and digest. rollback and status decide from
// these parts whether a revision pins ctjdeploy's images by digest, so a
// mis-split reference would pass a mutable tag as pinned.
//
//	go test -run '^$' -fuzz '^FuzzParseImage$' -fuzztime 30s ./deploy/inspect/
func FuzzParseImage(f *testing.F) {
	for _, s := range []string{
		"123456789012.dkr.ecr.us-west-2.amazonaws.com/civic-tech-jobs-backend@sha256:" + strings.Repeat("a", 64),
		"123456789012.dkr.ecr.us-west-2.amazonaws.com/civic-tech-jobs-backend:stage",
		"127.0.0.1:5055/team/web:v1@sha256:" + strings.Repeat("0", 64),
		"localhost/app", "localhost:5000/a/b/c:tag", "postgres:18", "postgres", "library/postgres:18.1",
		"[::1]:5000/x:y", "host:notaport/x", "a/b:c/d", "@", ":", "/", "a@b@c", "a:b:c", "",
		"public.ecr.aws/docker/library/postgres:18@sha256:" + strings.Repeat("f", 64),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		r := ParseImage(ref)
		back := r.Repository
		if r.Tag != "" || strings.Contains(ref, ":") && strings.HasSuffix(strings.SplitN(ref, "@", 2)[0], ":") {
			back += ":" + r.Tag
		}
		if r.Digest != "" || strings.Contains(ref, "@") {
			back += "@" + r.Digest
		}
		if back != ref {
			t.Fatalf("%q: parts %+v put back together are %q", ref, r, back)
		}
		if r.Registry != "" && r.Repository != r.Registry+"/"+r.Path {
			t.Fatalf("%q: repository %q is not registry %q / path %q", ref, r.Repository, r.Registry, r.Path)
		}
		if r.Registry == "" && r.Repository != r.Path {
			t.Fatalf("%q: no registry, but repository %q differs from path %q", ref, r.Repository, r.Path)
		}
		if r.Registry == "" {
			return // Docker Hub: ggcr adds index.docker.io and library/
		}
		if d, err := name.NewDigest(ref, name.StrictValidation); err == nil {
			if d.DigestStr() != r.Digest || d.RegistryStr() != r.Registry || d.RepositoryStr() != r.Path {
				t.Fatalf("%q: ggcr reads registry %q path %q digest %q; ParseImage %+v", ref, d.RegistryStr(), d.RepositoryStr(), d.DigestStr(), r)
			}
			return
		}
		if tg, err := name.NewTag(ref, name.StrictValidation); err == nil {
			if tg.TagStr() != r.Tag || tg.RegistryStr() != r.Registry || tg.RepositoryStr() != r.Path || r.Digest != "" {
				t.Fatalf("%q: ggcr reads registry %q path %q tag %q; ParseImage %+v", ref, tg.RegistryStr(), tg.RepositoryStr(), tg.TagStr(), r)
			}
		}
	})
}
