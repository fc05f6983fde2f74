package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/push"
)

// pushImages is the push phase: every image is pushed under its commit tag
// first; the environment's tag (ENV, e.g. "stage") of every image moves only
// once all of them are in the registry. A push failing between two images
// then leaves ENV where it was on every repository (never the tags of two
// commits), and if moving ENV itself fails part way, the tags already moved
// are put back where they were.
func (r *run) pushImages(ctx context.Context, p *report.Phase) error {
	env, res := r.o.Env, r.res
	tagger, _ := r.d.Pusher.(push.Tagger)
	for i := range res.Images {
		im := &res.Images[i]
		t := r.target(env.Images[im.Name])
		if tagger != nil {
			t.MoveLater = []string{env.Name}
		}
		if im.MissingBytes == 0 && (containsStr(im.ExistingTags, r.o.Tag) || len(im.ExistingTags) == len(t.Tags)) {
			p.Infof("%s: already in the registry under %s", im.Name, r.o.Tag)
			im.Reused = sumLayers(r.images[im.Name].plan)
			continue
		}
		out, err := r.d.Pusher.Push(ctx, r.images[im.Name].built, t)
		if err != nil {
			return fmt.Errorf("%w%s", err, r.tagsUnmoved(i))
		}
		if out.Digest != im.Digest {
			return fmt.Errorf("image %s: the registry holds %s, not the planned %s; nothing was registered%s", im.Name, out.Digest, im.Digest, r.tagsUnmoved(i))
		}
		im.Pushed, im.Uploaded, im.Reused = true, out.UploadedBytes, out.ReusedBytes
	}
	if tagger == nil {
		return nil
	}
	return r.moveEnvTags(ctx, p, tagger)
}

// keepCommitTag makes im the image its commit tag already names (was)
// instead of this run's rebuild: a commit tag never moves. It may be pinned
// by an ACTIVE revision (the one a previous deploy of this commit
// registered, a rollback target): moved, that digest would be left untagged,
// where ECR lifecycle rules on untagged images delete it, and the revision
// could no longer start a task. Nothing of the rebuild is pushed.
func keepCommitTag(im *Image, was, tag, env string, tagged map[string]string) {
	im.Rebuilt = im.Digest
	repo, _, _ := strings.Cut(im.Ref, "@")
	im.Digest, im.Ref = was, repo+"@"+was
	im.MissingBytes, im.Missing, im.MissingList = 0, 0, nil
	im.ExistingTags = []string{tag}
	if tagged[env] == was {
		im.ExistingTags = append(im.ExistingTags, env)
	}
}

// tagsUnmoved is what a failure of the i-th image's push leaves: the images
// before it are under TAG, and no ENV tag moved.
func (r *run) tagsUnmoved(i int) string {
	if _, ok := r.d.Pusher.(push.Tagger); !ok {
		return ""
	}
	var done []string
	for _, im := range r.res.Images[:i] {
		done = append(done, im.Name)
	}
	s := fmt.Sprintf("; tag %s was not moved on any repository", r.o.Env.Name)
	if len(done) > 0 {
		s += fmt.Sprintf(" (%s pushed under %s only)", strings.Join(done, ", "), r.o.Tag)
	}
	return s
}

// moveEnvTags points ENV at each image's pushed digest. If one fails, the
// ENV tags moved before it go back to the digests they named before (read
// first); an image whose ENV tag did not exist keeps the new one, which is
// said in the error.
func (r *run) moveEnvTags(ctx context.Context, p *report.Phase, tagger push.Tagger) error {
	env, res := r.o.Env, r.res
	if err := r.lease.Err(); err != nil {
		// Another run may hold the deploy lock now (lock.go): stop before moving ENV.
		return fmt.Errorf("%w; the images are pushed under %s, no %s tag was moved and the service was not changed", err, r.o.Tag, env.Name)
	}
	var done []movedTag
	for _, im := range res.Images {
		if containsStr(im.ExistingTags, env.Name) {
			continue // ENV names this image already
		}
		repo := env.Images[im.Name].Repository
		was := ""
		if ref, err := r.d.Pusher.Resolve(ctx, r.d.Registry, repo, env.Name); err == nil {
			_, was, _ = strings.Cut(ref, "@")
		}
		if err := tagger.Tag(ctx, r.d.Registry, repo, im.Digest, env.Name); err != nil {
			return fmt.Errorf("%w%s", err, r.restoreEnvTags(context.WithoutCancel(ctx), tagger, done))
		}
		done = append(done, movedTag{im.Name, repo, was})
	}
	if len(done) > 0 {
		p.Infof("tag %s moved to this deploy's images (%d)", env.Name, len(done))
	}
	return nil
}

// movedTag is an ENV tag moved by this run: image name, repository, and the
// digest it named before ("" if it did not exist).
type movedTag struct{ name, repo, was string }

// restoreEnvTags puts back the ENV tags a failed move had moved already.
func (r *run) restoreEnvTags(ctx context.Context, tagger push.Tagger, done []movedTag) string {
	if len(done) == 0 {
		return fmt.Sprintf("; tag %s was not moved on any repository", r.o.Env.Name)
	}
	var back, kept, failed []string
	var errs []error
	for _, m := range done {
		if m.was == "" {
			kept = append(kept, m.name)
			continue
		}
		if err := tagger.Tag(ctx, r.d.Registry, m.repo, m.was, r.o.Env.Name); err != nil {
			errs = append(errs, err)
			failed = append(failed, m.name)
			continue
		}
		back = append(back, m.name)
	}
	env := r.o.Env.Name
	s := ""
	if len(back) > 0 {
		s += fmt.Sprintf("; tag %s was put back where it was on %s", env, strings.Join(back, ", "))
	}
	if len(kept) > 0 {
		s += fmt.Sprintf("; tag %s, new on %s, names this deploy's image there", env, strings.Join(kept, ", "))
	}
	if len(failed) > 0 {
		s += fmt.Sprintf("; tag %s of %s names this deploy's image and could not be put back (%v): push it again or retag it by hand", env, strings.Join(failed, ", "), errors.Join(errs...))
	}
	return s
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
