package rollback

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/hackforla/ctjdeploy/internal/ecsread"
)

// WritePlan writes p as text: where the service goes, why, which images,
// the diff when a revision is registered, and the guards' verdicts.
func WritePlan(w io.Writer, p *Plan) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "rollback %s: service %s in cluster %s\n", p.Env, p.Service, p.Cluster)
	fmt.Fprintf(b, "  live now:  %s\n", describe(p.Live))
	switch {
	case p.Stop != "":
		fmt.Fprintf(b, "  stop:      deployment %s (service deployment %s), in progress: ECS rolls it back to %s\n",
			p.StopDeploymentID, ecsread.ID(p.Stop), describe(p.Target))
	case p.Unchanged:
		fmt.Fprintf(b, "  target:    %s: the service already runs it; nothing to do\n", describe(p.Target))
	case p.Register != nil:
		fmt.Fprintf(b, "  target:    a new revision of %s for tag %s (registered first, tagged %s=%s, %s=%s)\n",
			p.Target.Family, p.Tag, ecsread.TagCommit, p.Tag, ecsread.TagPrevious, ecsread.ShortARN(p.Live.ARN))
	default:
		fmt.Fprintf(b, "  target:    %s (reused, nothing registered)\n", describe(p.Target))
	}
	if p.Why != "" {
		fmt.Fprintf(b, "  why:       %s\n", p.Why)
	}
	names := make([]string, 0, len(p.Images))
	for n := range p.Images {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(b, "  image %-8s %s\n", n+":", p.Images[n])
	}
	for _, n := range p.Notes {
		fmt.Fprintf(b, "  note: %s\n", n)
	}
	if p.Diff != "" {
		fmt.Fprintf(b, "task definition diff:\n%s", p.Diff)
		if !strings.HasSuffix(p.Diff, "\n") {
			b.WriteString("\n")
		}
	}
	for _, v := range p.Verdicts {
		fmt.Fprintf(b, "  guard %s: %s: %s\n", v.Guard, v.Outcome, v.Message)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
