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

// WriteStatus writes s as text.
func WriteStatus(w io.Writer, s Status) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "%s: service %s in cluster %s (%s), %s\n", s.Env, s.Service, s.Cluster, s.Region, strings.ToLower(s.ServiceStatus))
	l := s.Live
	fmt.Fprintf(b, "live revision: %s (%s)\n", ecsread.ShortARN(l.ARN), l.ARN)
	switch {
	case l.ByCtjdeploy && l.Commit != "":
		fmt.Fprintf(b, "  commit:      %s\n", l.Commit)
	case l.ByCtjdeploy:
		fmt.Fprintf(b, "  commit:      unknown (no %s tag)\n", ecsread.TagCommit)
	default:
		fmt.Fprintf(b, "  commit:      unknown (not registered by ctjdeploy)\n")
	}
	fmt.Fprintf(b, "  registered:  %s by %s", when(l.RegisteredAt), l.Who())
	if l.RegisteredBy != "" {
		fmt.Fprintf(b, " (%s)", l.RegisteredBy)
	}
	fmt.Fprintln(b)
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
		fmt.Fprintf(tw, "    %s\t%s\t%s\n", c.Name, c.Image, extra)
	}
	tw.Flush()
	if d := s.Deployment; d != nil {
		fmt.Fprintf(b, "deployment:    %s (%s, %s", describeState(d), d.ID, ecsread.ShortARN(d.TaskDefinition))
		if d.Failed > 0 {
			fmt.Fprintf(b, ", %d failed tasks", d.Failed)
		}
		fmt.Fprintf(b, ", started %s)\n", when(d.CreatedAt))
		if d.RolloutReason != "" {
			fmt.Fprintf(b, "  reason:      %s\n", d.RolloutReason)
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
			fmt.Fprintf(b, "  - %s\n", d)
		}
	} else {
		fmt.Fprintf(b, "drift:         none (the live revision is the one ctjdeploy registered)\n")
	}
	for _, n := range s.Notes {
		fmt.Fprintf(b, "note: %s\n", n)
	}
	if len(s.Events) == 0 {
		fmt.Fprintf(b, "events:        none\n")
	} else {
		fmt.Fprintf(b, "last events (newest first):\n")
		for _, e := range s.Events {
			fmt.Fprintf(b, "  %s  %s\n", when(e.Time), e.Message)
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
