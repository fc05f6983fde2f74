package main

import (
	"fmt"
	"regexp"
	"strings"
)

// buildFold folds BuildKit's plain progress output (`docker build
// --progress=plain`, one Line event per line, per image) for a log: an
// image whose build succeeded is its "built" line with how many of its
// Dockerfile steps were cached, and the steps that ran with their times;
// every line of the build only when it failed.
//
// BuildKit's plain output numbers each vertex: "#7 [3/6] COPY pyproject.toml
// ./" names it, "#7 CACHED", "#7 DONE 0.1s" or "#7 ERROR: ..." end it.
type buildFold struct {
	images map[string]*buildLog
	order  []string
}

type buildLog struct {
	lines   []string
	dropped int
	steps   map[string]*buildStep
	order   []string
	done    bool
}

type buildStep struct {
	name   string
	cached bool
	took   string
	err    bool
}

// maxBuildLines is how many lines of one image's build are kept for a
// failure (the last ones).
const maxBuildLines = 2000

var buildVertexRE = regexp.MustCompile(`^#(\d+) (.*)$`)

func newBuildFold() *buildFold { return &buildFold{images: map[string]*buildLog{}} }

func (f *buildFold) log(image string) *buildLog {
	b := f.images[image]
	if b == nil {
		b = &buildLog{steps: map[string]*buildStep{}}
		f.images[image] = b
		f.order = append(f.order, image)
	}
	return b
}

// add notes one line of image's build.
func (f *buildFold) add(image, line string) {
	b := f.log(image)
	if b.done {
		return
	}
	b.lines = append(b.lines, line)
	if len(b.lines) > maxBuildLines {
		b.dropped += len(b.lines) - maxBuildLines
		b.lines = b.lines[len(b.lines)-maxBuildLines:]
	}
	m := buildVertexRE.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		return
	}
	id, rest := m[1], m[2]
	st := b.steps[id]
	switch {
	case rest == "CACHED":
		if st != nil {
			st.cached = true
		}
	case strings.HasPrefix(rest, "DONE "):
		if st != nil {
			st.took = strings.TrimPrefix(rest, "DONE ")
		}
	case strings.HasPrefix(rest, "ERROR"):
		if st != nil {
			st.err = true
		}
	case strings.HasPrefix(rest, "[") && st == nil:
		// a Dockerfile step ("[3/6] COPY ...", "[runner 1/6] FROM ..."), not
		// BuildKit's own ("[internal] load ...", "[auth] ...")
		if strings.HasPrefix(rest, "[internal]") || strings.HasPrefix(rest, "[auth]") {
			return
		}
		if _, cmd, ok := strings.Cut(rest, "] "); ok && strings.HasPrefix(cmd, "FROM ") {
			return // the base image: nothing runs
		}
		b.steps[id] = &buildStep{name: rest}
		b.order = append(b.order, id)
	}
}

// built is what a log prints when image was built (msg is the build's
// "built IMAGE: ..." line): that line with the count of cached steps, and
// a line per step that ran, with its time.
func (f *buildFold) built(image, msg string) []string {
	b := f.log(image)
	b.done = true
	n, cached := len(b.order), 0
	var ran []string
	for _, id := range b.order {
		st := b.steps[id]
		if st.cached {
			cached++
			continue
		}
		line := "  " + image + " " + st.name
		if st.took != "" {
			line += "  " + st.took
		}
		ran = append(ran, line)
	}
	b.lines, b.steps, b.order = nil, nil, nil
	switch {
	case n == 0:
		return []string{msg}
	case cached == n:
		return []string{fmt.Sprintf("%s (all %d steps cached)", msg, n)}
	}
	return append([]string{fmt.Sprintf("%s (%d of %d steps cached; ran:)", msg, cached, n)}, ran...)
}

// failed is every line kept of the builds that did not finish.
func (f *buildFold) failed(string) []string {
	var out []string
	for _, image := range f.order {
		b := f.images[image]
		if b.done || len(b.lines) == 0 {
			continue
		}
		if b.dropped > 0 {
			out = append(out, fmt.Sprintf("[%s] (%d earlier lines left out)", image, b.dropped))
		}
		for _, l := range b.lines {
			out = append(out, "["+image+"] "+l)
		}
	}
	return out
}
