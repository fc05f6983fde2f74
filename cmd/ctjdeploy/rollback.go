package main

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/spf13/cobra"

	"github.com/hackforla/ctjdeploy/deploy/inspect"
	"github.com/hackforla/ctjdeploy/deploy/rollback"
	"github.com/hackforla/ctjdeploy/deploy/rollout"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
)

type rollbackFlags struct {
	to      string
	dryRun  bool
	noWait  bool
	timeout time.Duration
	// forceUnlock: --force-unlock
	forceUnlock bool
}

const rollbackLong = `Roll ENV back. Nothing is built or pushed.

Without --to, the service returns to the revision that was live before the
current deployment (recorded when ctjdeploy deployed; not "revision - 1").
With --to TAG (a full tag, or a commit prefix of at least 7 characters) it
deploys the images pushed under TAG, after checking they still exist in the
registry: an ACTIVE revision that already runs those digests is reused;
otherwise the current template is rendered with them and the current
Terraform outputs, and registered.

Rollback bypasses the stale-commit guard (that is its purpose) but not the
data guard. It follows and verifies the deployment exactly as a deploy does.
Nothing is ever deregistered.

It holds the deploy lock, the one a deploy takes (config lock:): while
another deploy or rollback holds it, rollback is exit 5 naming the holder;
--force-unlock takes it over from a run that died. --dry-run takes no lock.`

func newRollbackCmd(g *globals) *cobra.Command {
	f := &rollbackFlags{}
	cmd := &cobra.Command{
		Use:   "rollback ENV",
		Short: "Return ENV to the previous revision, or to the images of an earlier tag",
		Long:  rollbackLong,
		Example: `  ctjdeploy stage rollback --dry-run
  ctjdeploy stage rollback
  ctjdeploy stage rollback --to 1a2b3c4`,
		Args:              envArg,
		ValidArgsFunction: g.completeEnvs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.loadEnv(args[0])
			if err != nil {
				return err
			}
			if f.to != "" && len(f.to) < rollback.MinPrefix {
				return exitcodeInvalidf("--to %q: give a full tag or a commit prefix of at least 7 characters", f.to)
			}
			return runRollback(cmd, g, f, env)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.to, "to", "", "tag (or commit prefix of at least 7 characters) whose images to deploy")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the plan; write nothing")
	fl.BoolVar(&f.noWait, "no-wait", false, "stop after updating the service")
	fl.DurationVar(&f.timeout, "timeout", 15*time.Minute, "how long to follow the deployment before exiting 4")
	fl.BoolVar(&f.forceUnlock, "force-unlock", false, "take the deploy lock over from a run that died without releasing it (before it expires)")
	return cmd
}

// rollbackDoc is the JSON document of `--output json rollback`.
type rollbackDoc struct {
	Plan   *rollback.Plan   `json:"plan,omitempty"`
	Result *rollback.Result `json:"result,omitempty"`
	DryRun bool             `json:"dryRun"`
	Exit   int              `json:"exitCode"`
	Error  string           `json:"error,omitempty"`
}

func runRollback(cmd *cobra.Command, g *globals, f *rollbackFlags, env *config.Environment) (err error) {
	ctx := cmd.Context()
	rep := g.reporter()
	doc := rollbackDoc{DryRun: f.dryRun}
	defer func() {
		closeReporter(rep)
		if g.output == "json" {
			doc.Exit = exitcode.Of(err)
			if err != nil {
				doc.Error = err.Error()
			}
			if werr := writeJSON(g.stdout, doc); werr != nil && err == nil {
				err = werr
			}
		}
		writeRollbackGitHub(doc, rep, err)
	}()
	interval, err := pollInterval()
	if err != nil {
		return err
	}

	cfg, registry, pusher, err := registryClients(ctx, env, rep)
	if err != nil {
		return err
	}
	defer pusher.Close()
	client := ecs.NewFromConfig(cfg)

	ph := report.Begin(rep, "plan")
	plan, err := rollback.MakePlan(ctx, rollback.Deps{ECS: client, Registry: pusher, Preflight: preflightCheck(cfg, env, registry)}, env,
		rollback.Options{To: f.to, Registry: registry, Color: g.color() && g.output != "json"})
	if err != nil {
		return ph.End(err)
	}
	ph.End(nil)
	doc.Plan = plan
	if g.output != "json" {
		var b bytes.Buffer
		_ = rollback.WritePlan(&b, plan)
		fmt.Fprint(g.stdout, b.String())
	}
	if f.dryRun {
		if err := rollout.Refusal(plan.Verdicts); err != nil {
			return err
		}
		if g.output != "json" {
			fmt.Fprintln(g.stdout, "dry run: nothing was changed")
		}
		return nil
	}
	// The deploy lock (not taken by a dry run, which returned above).
	res, err := rollback.Run(ctx, client, env, plan, rollback.RunOptions{NoWait: f.noWait, Timeout: f.timeout, Interval: interval, Reporter: rep,
		SSM: ssm.NewFromConfig(cfg), ForceUnlock: f.forceUnlock})
	doc.Result = &res
	if err != nil {
		return err
	}
	if g.output != "json" {
		switch res.Outcome {
		case "unchanged":
			fmt.Fprintf(g.stdout, "nothing to do: %s already runs %s\n", env.Service, ecsread.ShortARN(res.TaskDefinitionARN))
		case "updated":
			fmt.Fprintf(g.stdout, "service %s is deploying %s (deployment %s); not waiting (--no-wait): follow it with `ctjdeploy %s status`\n",
				env.Service, ecsread.ShortARN(res.TaskDefinitionARN), res.DeploymentID, env.Name)
		default:
			fmt.Fprintf(g.stdout, "rolled back: service %s runs %s, verified\n", env.Service, ecsread.ShortARN(res.TaskDefinitionARN))
		}
	}
	return nil
}

// writeRollbackGitHub writes the step outputs and job summary when running
// in GitHub Actions (writeGitHubResult does nothing elsewhere).
func writeRollbackGitHub(doc rollbackDoc, rep report.Reporter, err error) {
	r := ghResult{Outcome: exitcode.Name(exitcode.Of(err)), Phases: ghPhases(rep), Timeline: ghTimeline(rep)}
	if err != nil {
		r.Message = err.Error()
	}
	if p := doc.Plan; p != nil {
		r.Env, r.Tag, r.Commit, r.Diff = p.Env, p.Tag, p.Tag, p.Diff
		r.TaskDefinitionARN = p.Target.ARN
		names := make([]string, 0, len(p.Images))
		for n := range p.Images {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			r.Images = append(r.Images, ghImage{Name: n, Ref: p.Images[n], Digest: inspect.ParseImage(p.Images[n]).Digest})
		}
		if doc.DryRun && err == nil {
			r.Outcome = "dry-run"
		}
	}
	if res := doc.Result; res != nil {
		r.Outcome = res.Outcome
		r.TaskDefinitionARN = res.TaskDefinitionARN
		r.Registered = res.Registered
	}
	_ = writeGitHubResult(os.Getenv, r)
}
