package deploy

import (
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/hackforla/ctjdeploy/deploy/rollout"

	"github.com/hackforla/ctjdeploy/internal/report"
)

// WritePlan writes the plan as text: the images and what pushing them
// uploads, the service change, the diff, and the guards' verdicts.
func WritePlan(w io.Writer, res *Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "deploy %s (tag %s) to service %s in cluster %s\n", res.Env, res.Tag, res.Service, res.Cluster)
	if len(res.Images) > 0 {
		b.WriteString("images:\n")
		for _, im := range res.Images {
			fmt.Fprintf(&b, "  %-8s %s\n", im.Name, im.Ref)
			if im.Rebuilt != "" {
				fmt.Fprintf(&b, "           kept: the image commit tag %s already names (this build, %s, differs: not reproducible); nothing to push\n", res.Tag, shortDigest(im.Rebuilt))
			} else if im.Layers > 0 {
				if im.Missing == 0 {
					fmt.Fprintf(&b, "           push %s: nothing to upload (the registry has all %d layers)\n", im.Name, im.Layers)
				} else {
					fmt.Fprintf(&b, "           push %s: %d of %d layers missing, %s to upload\n", im.Name, im.Missing, im.Layers, report.HumanBytes(im.MissingBytes))
				}
				// Which layers, in a dry run (the contract's push plan); a
				// deploy's push lines say what each image uploaded, and the
				// JSON document lists the layers in both.
				if res.DryRun {
					for _, l := range im.MissingList {
						fmt.Fprintf(&b, "             %s  %s\n", shortDigest(l.Digest), report.HumanBytes(l.Size))
					}
				}
			}
		}
	}
	if res.Change != "" {
		fmt.Fprintf(&b, "service change: %s\n", res.Change)
	}
	if res.Diff != "" {
		diff, imagesOnly := compactDiff(res.Diff)
		if imagesOnly {
			b.WriteString("task definition diff (only images change; the JSON document and the GitHub summary have the whole diff):\n")
		} else {
			b.WriteString("task definition diff:\n")
		}
		b.WriteString(diff)
		if !strings.HasSuffix(diff, "\n") {
			b.WriteString("\n")
		}
	}
	writeGuards(&b, res)
	if res.DryRun && rollout.Refusal(res.Guards) == nil && res.Error == "" {
		b.WriteString("dry run: nothing was changed\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeGuards writes the guards' verdicts: each with its reason in a dry
// run (the contract's verdicts) and wherever one does not pass; a deploy
// whose guards all pass says so in one line.
func writeGuards(b *strings.Builder, res *Result) {
	if len(res.Guards) == 0 {
		return
	}
	var passed []string
	for _, v := range res.Guards {
		if v.Outcome == rollout.Pass {
			passed = append(passed, v.Guard)
		}
	}
	if !res.DryRun && len(passed) == len(res.Guards) {
		fmt.Fprintf(b, "guards: %s pass\n", strings.Join(passed, ", "))
		return
	}
	b.WriteString("guards:\n")
	for _, v := range res.Guards {
		fmt.Fprintf(b, "  %-12s %-8s %s\n", v.Guard, v.Outcome, v.Message)
	}
}

// Summary is the one line a successful run ends with.
func Summary(res *Result) string {
	switch res.Outcome {
	case "dry-run":
		return ""
	case "unchanged":
		return fmt.Sprintf("unchanged: service %s already runs %s (no new revision)", res.Service, shortARN(res.TaskDefARN))
	case "updated":
		return fmt.Sprintf("service %s is deploying %s (deployment %s); not waiting (--no-wait): follow it with `ctjdeploy %s status`",
			res.Service, shortARN(res.TaskDefARN), res.DeploymentID, res.Env)
	}
	return fmt.Sprintf("deployed: service %s runs %s (deployment %s), running tasks verified", res.Service, shortARN(res.TaskDefARN), res.DeploymentID)
}

// shortDigest is sha256: and the first 12 hex digits.
func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

var (
	ansiRE      = regexp.MustCompile("\x1b\\[[0-9;]*m")
	imageLineRE = regexp.MustCompile(`^[-+]\s*"image": `)
)

// compactDiff shortens a unified diff whose changed lines are all "image"
// lines (a deploy of new digests, the usual case) to its header and those
// lines: the context around them says nothing a reader needs. Any other diff
// is returned whole.
func compactDiff(diff string) (string, bool) {
	var keep []string
	changed := 0
	for _, ln := range strings.Split(strings.TrimRight(diff, "\n"), "\n") {
		plain := ansiRE.ReplaceAllString(ln, "")
		switch {
		case strings.HasPrefix(plain, "--- ") || strings.HasPrefix(plain, "+++ "):
			keep = append(keep, ln)
		case strings.HasPrefix(plain, "-") || strings.HasPrefix(plain, "+"):
			if !imageLineRE.MatchString(plain) {
				return diff, false
			}
			changed++
			keep = append(keep, ln)
		}
	}
	if changed == 0 {
		return diff, false
	}
	return strings.Join(keep, "\n") + "\n", true
}
