package inspect

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hackforla/ctjdeploy/internal/ecsread"
)

// ShortDigest is the first 12 hex digits of a sha256 digest.
func ShortDigest(d string) string {
	h := strings.TrimPrefix(d, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// StatusWidth is the width the status text keeps within (the JSON document,
// --output json, has every value whole).
const StatusWidth = 100

// wrap writes text after prefix, folded at StatusWidth on spaces, the
// continuation lines indented as far as the prefix.
func wrap(b *strings.Builder, prefix, text string) {
	indent := strings.Repeat(" ", len(prefix))
	line := prefix
	for i, word := range strings.Fields(text) {
		if i > 0 && len(line)+1+len(word) > StatusWidth {
			b.WriteString(line + "\n")
			line = indent + word
			continue
		}
		if i > 0 {
			line += " "
		}
		line += word
	}
	b.WriteString(line + "\n")
}

// shortImage is an image reference as the status shows it: the repository
// without its registry host, and a digest cut to 12 hex digits.
func shortImage(ref string) string {
	name, digest, pinned := strings.Cut(ref, "@")
	if i := strings.Index(name, "/"); i >= 0 && strings.ContainsAny(name[:i], ".:") {
		name = name[i+1:] // the registry host
	}
	if pinned {
		return name + "@sha256:" + ShortDigest(digest)
	}
	return name
}

// WriteStatus writes s as text, within StatusWidth columns.
func WriteStatus(w io.Writer, s Status) error {
	b := &strings.Builder{}
	wrap(b, "", fmt.Sprintf("%s: service %s in cluster %s (%s), %s", s.Env, s.Service, s.Cluster, s.Region, strings.ToLower(s.ServiceStatus)))
	l := s.Live
	fmt.Fprintf(b, "live revision: %s\n", ecsread.ShortARN(l.ARN))
	switch {
	case l.ByCtjdeploy && l.Commit != "":
		fmt.Fprintf(b, "  commit:      %s\n", l.Commit)
	case l.ByCtjdeploy:
		fmt.Fprintf(b, "  commit:      unknown (no %s tag)\n", ecsread.TagCommit)
	default:
		fmt.Fprintf(b, "  commit:      unknown (not registered by ctjdeploy)\n")
	}
	reg := "by " + l.Who()
	if l.RegisteredAt != nil && !l.RegisteredAt.IsZero() {
		reg = when(l.RegisteredAt) + " " + reg
	}
	if l.RegisteredBy != "" {
		reg += " (" + l.RegisteredBy + ")"
	}
	wrap(b, "  registered:  ", reg)
	if l.Previous != "" {
		fmt.Fprintf(b, "  previous:    %s (what `rollback` returns to)\n", ecsread.ShortARN(l.Previous))
	}
	fmt.Fprintf(b, "  images:\n")
	tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
	for _, c := range l.Containers {
		extra := ""
		switch {
		case len(c.Tags) > 0:
			extra = "tags: " + strings.Join(c.Tags, ", ")
		case !c.Pinned():
			extra = "not pinned by digest"
		}
		if extra == "" {
			fmt.Fprintf(tw, "    %s\t%s\n", c.Name, shortImage(c.Image)) // no padding after the last column
		} else {
			fmt.Fprintf(tw, "    %s\t%s\t%s\n", c.Name, shortImage(c.Image), extra)
		}
	}
	tw.Flush()
	if d := s.Deployment; d != nil {
		line := fmt.Sprintf("%s (%s, %s", describeState(d), d.ID, ecsread.ShortARN(d.TaskDefinition))
		if d.Failed > 0 {
			line += fmt.Sprintf(", %d failed task%s", d.Failed, map[bool]string{true: "", false: "s"}[d.Failed == 1])
		}
		wrap(b, "deployment:    ", line+fmt.Sprintf(", started %s)", when(d.CreatedAt)))
		if d.RolloutReason != "" {
			wrap(b, "  reason:      ", d.RolloutReason)
		}
	} else {
		fmt.Fprintf(b, "deployment:    none\n")
	}
	for _, d := range s.Others {
		fmt.Fprintf(b, "  also %s:   %s (%s), running %d, pending %d\n", strings.ToLower(d.Status), ecsread.ShortARN(d.TaskDefinition), d.ID, d.Running, d.Pending)
	}
	fmt.Fprintf(b, "tasks:         desired %d, running %d, pending %d\n", s.Desired, s.Running, s.Pending)
	if len(s.Drift) > 0 {
		fmt.Fprintf(b, "drift:\n")
		for _, d := range s.Drift {
			wrap(b, "  - ", d)
		}
	} else {
		fmt.Fprintf(b, "drift:         none (the live revision is the one ctjdeploy registered)\n")
	}
	for _, n := range s.Notes {
		wrap(b, "note: ", n)
	}
	if len(s.Events) == 0 {
		fmt.Fprintf(b, "events:        none\n")
	} else {
		fmt.Fprintf(b, "last events (newest first):\n")
		for _, e := range s.Events {
			// ECS starts each event with "(service NAME)": the first line
			// names the service already
			msg := strings.TrimPrefix(e.Message, "(service "+s.Service+") ")
			wrap(b, "  "+when(e.Time)+"  ", msg)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteHistory writes h as a table, newest first.
func WriteHistory(w io.Writer, h History) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "%s: family %s (service %s in cluster %s), newest %d ACTIVE revisions at most\n", h.Env, h.Family, h.Service, h.Cluster, h.Limit)
	if len(h.Revisions) == 0 {
		fmt.Fprintf(b, "no ACTIVE revisions\n")
	}
	tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "REV\tLIVE\tCOMMIT\tREGISTERED\tBY\tIMAGES\n")
	for _, r := range h.Revisions {
		live := ""
		if r.Live {
			live = "live"
		}
		commit := ecsread.ShortCommit(r.Commit)
		if commit == "" {
			commit = "-"
		}
		var imgs []string
		for _, c := range r.Containers {
			switch {
			case c.Digest != "":
				imgs = append(imgs, c.Name+"@"+ShortDigest(c.Digest))
			case c.Tag != "":
				imgs = append(imgs, c.Name+":"+c.Tag)
			default:
				imgs = append(imgs, c.Name)
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", r.Revision, live, commit, when(r.RegisteredAt), r.Who(), strings.Join(imgs, " "))
	}
	tw.Flush()
	if _, ok := h.LiveRevision(); !ok && h.Live != "" {
		fmt.Fprintf(b, "the live revision %s is not among these\n", ecsread.ShortARN(h.Live))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
