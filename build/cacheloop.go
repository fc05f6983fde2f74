package build

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/hackforla/ctjdeploy/internal/report"
)

// A Dockerfile whose stages fork and merge (Next.js's deps -> builder ->
// runner, each on the same base and WORKDIR) gives an inline build cache
// whose graph loops once its records are merged by cache key: two edges
// with one key, because the steps that changed nothing have no layer.
// BuildKit before v0.9 (the one Docker Engine 20.10 vendors, Debian's and
// Ubuntu's docker.io) follows that loop while exporting the next build's
// inline cache and the whole engine dies of a stack overflow in
// remotecache/v1.marshalItem: every build on it fails, and the engine
// answers nothing until it is started again.
// moby/buildkit#2024 ("remotecache: check loops on marshaling cache
// config", BuildKit v0.9, in Docker Engine 23.0 and later) fixed it; see
// also moby/buildkit#1609 and #1902. Measured here on docker.io 20.10.24:
// four builds at once of the example's next image, with the image as
// --cache-from, killed the engine in the first round, twice out of two
// (the stack tests' builds side by side did the same, once in several
// runs); one build at a time survived ten rounds, and builds with no
// --cache-from 45 rounds of four.
//
// So on an engine before 23.0, a --cache-from image whose inline cache
// loops is left out of the build (with a warning that says why and what
// to do); a loop-free one, or any cache on a newer engine, is used as
// before. The cache image's config is read through WithCacheConfig (the
// push's registry client: its credentials and trust rules); without it
// nothing is checked.

// firstLoopCheckingEngine is the first Docker Engine major version whose
// BuildKit checks the cache graph for loops (moby/buildkit#2024).
const firstLoopCheckingEngine = 23

// engineChecksCacheLoops reports whether the engine of version v (the
// server's `docker version`) survives a looping imported cache. An
// unknown or unreadable version counts as a new engine: nothing changes.
func engineChecksCacheLoops(v string) bool {
	major, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(v), "v"), ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return true
	}
	// Docker's versions went 1.13 (no BuildKit) -> 17.03 -> ... -> 20.10
	// -> 23.0.
	return n >= firstLoopCheckingEngine || n < 17
}

// inlineCacheLoops reports whether the image config raw carries an inline
// build cache (moby.buildkit.cache.v0) whose records, merged by cache key
// as BuildKit merges them on import, link in a loop.
func inlineCacheLoops(raw []byte) (bool, error) {
	var cfg struct {
		Cache []byte `json:"moby.buildkit.cache.v0"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return false, fmt.Errorf("reading the image config: %w", err)
	}
	if len(cfg.Cache) == 0 {
		return false, nil
	}
	var records []struct {
		Digest string `json:"digest"`
		Inputs [][]struct {
			Link int `json:"link"`
		} `json:"inputs"`
	}
	if err := json.Unmarshal(cfg.Cache, &records); err != nil {
		return false, fmt.Errorf("reading the inline build cache: %w", err)
	}
	links := map[string][]string{}
	for _, r := range records {
		for _, in := range r.Inputs {
			for _, l := range in {
				if l.Link >= 0 && l.Link < len(records) {
					links[r.Digest] = append(links[r.Digest], records[l.Link].Digest)
				}
			}
		}
	}
	const (
		unseen = iota
		open
		done
	)
	state := map[string]int{}
	var loops func(d string) bool
	loops = func(d string) bool {
		switch state[d] {
		case open:
			return true
		case done:
			return false
		}
		state[d] = open
		for _, next := range links[d] {
			if loops(next) {
				return true
			}
		}
		state[d] = done
		return false
	}
	for d := range links {
		if loops(d) {
			return true, nil
		}
	}
	return false, nil
}

// dropLoopingCaches returns spec.CacheFrom with only the images whose
// inline cache is known not to loop, when the engine cannot import a
// looping one (see above). An image the registry does not have is left out
// without a word: it has no cache to give, and one pushed between this
// check and the build (by a deploy beside this one) would be imported
// unchecked. One that cannot be read or checked is left out with a warning.
func (d *Docker) dropLoopingCaches(ctx context.Context, spec Spec, ph *report.Phase) []string {
	if len(spec.CacheFrom) == 0 || d.cacheConfig == nil {
		return spec.CacheFrom
	}
	v := d.engineVersion(ctx)
	if engineChecksCacheLoops(v) {
		return spec.CacheFrom
	}
	var keep []string
	for _, ref := range spec.CacheFrom {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		raw, err := d.cacheConfig(rctx, ref)
		cancel()
		loops := false
		if err == nil && raw != nil {
			loops, err = inlineCacheLoops(raw)
		}
		switch {
		case err != nil:
			ph.Warnf("%s: building without the registry cache %s: it could not be checked for a looping cache graph (%v), which Docker Engine %s can die importing (moby/buildkit#2024)",
				spec.Name, ref, err, v)
		case raw == nil: // no such image: no cache to give
		case loops:
			ph.Warnf("%s: building without the registry cache %s: its cache graph loops (the Dockerfile's stages fork and merge), and Docker Engine %s can die importing such a cache (moby/buildkit#2024); Docker Engine 23.0 or later uses it",
				spec.Name, ref, v)
		default:
			keep = append(keep, ref)
		}
	}
	return keep
}

// engineVersion is the engine's version (`docker version`), "" if unknown;
// asked once per Docker.
func (d *Docker) engineVersion(ctx context.Context) string {
	d.versionOnce.Do(func() {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, d.bin, "version", "--format", "{{.Server.Version}}").Output()
		if err == nil {
			d.version = strings.TrimSpace(string(out))
		}
	})
	return d.version
}
