package rollback

import (
	"sort"
	"strings"

	"github.com/hackforla/ctjdeploy/deploy/inspect"
	"github.com/hackforla/ctjdeploy/internal/config"
)

// MinPrefix is the shortest commit prefix --to accepts.
const MinPrefix = 7

// Match is the outcome of matching --to against the tags that exist.
type Match struct {
	Tag        string   // the one tag meant ("" when none or ambiguous)
	Candidates []string // every tag matching (sorted); >1 means ambiguous
}

// MatchTag finds the tag meant by to among tags: to itself if present,
// otherwise the tags that start with to (only when to has at least
// MinPrefix characters). Pure.
func MatchTag(to string, tags []string) Match {
	for _, t := range tags {
		if t == to {
			return Match{Tag: to, Candidates: []string{to}}
		}
	}
	if len(to) < MinPrefix {
		return Match{}
	}
	seen := map[string]bool{}
	var c []string
	for _, t := range tags {
		if strings.HasPrefix(t, to) && !seen[t] {
			seen[t] = true
			c = append(c, t)
		}
	}
	sort.Strings(c)
	m := Match{Candidates: c}
	if len(c) == 1 {
		m.Tag = c[0]
	}
	return m
}

// Intersect returns the tags present in every list, sorted. Pure.
func Intersect(lists [][]string) []string {
	if len(lists) == 0 {
		return nil
	}
	count := map[string]int{}
	for _, l := range lists {
		seen := map[string]bool{}
		for _, t := range l {
			if !seen[t] {
				seen[t] = true
				count[t]++
			}
		}
	}
	var out []string
	for t, n := range count {
		if n == len(lists) {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// Union returns the tags present in any list, sorted and unique. Pure.
func Union(lists [][]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lists {
		for _, t := range l {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Nearest orders the available tags (those whose images all still exist)
// by how near they were deployed to tag: history is the family's revisions,
// newest first; commits deployed closest (in revision order) to the one
// carrying tag come first, then the other deployed commits newest first,
// then tags never deployed (sorted). tag itself is left out; at most n are
// returned. Pure.
func Nearest(tag string, history []inspect.Revision, available []string, n int) []string {
	avail := map[string]bool{}
	for _, t := range available {
		avail[t] = true
	}
	at := -1
	pos := map[string]int{}
	var deployed []string
	for i, r := range history {
		if r.Commit == "" {
			continue
		}
		if at < 0 && (r.Commit == tag || (len(tag) >= MinPrefix && strings.HasPrefix(r.Commit, tag))) {
			at = i
		}
		if _, ok := pos[r.Commit]; !ok {
			pos[r.Commit] = i
			if avail[r.Commit] && r.Commit != tag {
				deployed = append(deployed, r.Commit)
			}
		}
	}
	if at >= 0 {
		sort.SliceStable(deployed, func(i, j int) bool {
			return abs(pos[deployed[i]]-at) < abs(pos[deployed[j]]-at)
		})
	}
	out := deployed
	for _, t := range available {
		if _, ok := pos[t]; !ok && t != tag {
			out = append(out, t)
		}
	}
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// Containers maps each of env's image names to the names of rev's containers
// that run an image of that image's repository. Pure.
func Containers(env *config.Environment, rev inspect.Revision) map[string][]inspect.Container {
	out := map[string][]inspect.Container{}
	for _, name := range env.ImageNames() {
		repo := env.Images[name].Repository
		for _, c := range rev.Containers {
			if inspect.ParseImage(c.Image).Path == repo {
				out[name] = append(out[name], c)
			}
		}
	}
	return out
}

// RunsDigests says whether rev runs exactly the digests want (image name →
// sha256:...) in every container of each image's repository. Pure.
func RunsDigests(env *config.Environment, rev inspect.Revision, want map[string]string) bool {
	byName := Containers(env, rev)
	for name, d := range want {
		cs := byName[name]
		if len(cs) == 0 {
			return false
		}
		for _, c := range cs {
			if c.Digest != d {
				return false
			}
		}
	}
	return len(want) > 0
}
