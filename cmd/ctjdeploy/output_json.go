package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/hackforla/ctjdeploy/internal/ecsread"

	"github.com/hackforla/ctjdeploy/deploy"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
)

// deployDoc is the --output json document of a deploy: the pipeline's
// result (tag, images with digests and bytes, task definition ARN, whether
// one was registered, deployment id, outcome, guards, diff, timings per
// phase) with the exit code and the error.
type deployDoc struct {
	*deploy.Result
	Exit  int    `json:"exitCode"`
	Error string `json:"error,omitempty"`
}

// writeDeployResult prints the plan and the outcome (text on stdout, or the
// one JSON document), and the GitHub step outputs and job summary.
//
// It also closes rep (after telling the text renderers what the end prints,
// so they leave it out of what they still hold) and, in text, prints the
// error with what was said already left out; the error it returns is then
// marked as reported.
func writeDeployResult(g *globals, rep report.Reporter, res *deploy.Result, err error) error {
	code := exitcode.Of(err)
	errText := "" // the error as the text end prints it ("": not printed here)
	if once := onceOf(rep); once != nil && g.output != "json" {
		plan := ""
		if res != nil && (!planShown(rep) || res.DryRun) {
			var b strings.Builder
			_ = deploy.WritePlan(&b, res)
			plan = b.String()
		}
		if err != nil && !isReported(err) {
			errText = err.Error()
		}
		errText = once.finish(plan, errText)
	}
	closeReporter(rep)
	if g.output == "json" {
		doc := deployDoc{Result: res, Exit: code}
		if doc.Result == nil {
			doc.Result = &deploy.Result{Outcome: outcomeName(code), Timings: []deploy.Timing{}}
		}
		if err != nil {
			doc.Error = err.Error()
		}
		_ = writeJSON(g.stdout, doc)
	} else if res != nil {
		// The whole plan only when the run did not show it before its first
		// write (a dry run, a refusal); else a short result.
		_ = writeDeployText(g.stdout, res, err, planShown(rep))
	}
	if errText != "" {
		fmt.Fprintf(g.stderr, "ctjdeploy: %s\n", errText)
		err = reportedError{err}
	}
	writeDeployGitHub(res, rep, err)
	return err
}

// outcomeName is the outcome of a deploy that ended with exit code code.
func outcomeName(code int) string {
	if code == exitcode.OK {
		return "deployed"
	}
	return exitcode.Name(code)
}

func writeDeployGitHub(res *deploy.Result, rep report.Reporter, err error) {
	r := ghResult{Outcome: outcomeName(exitcode.Of(err)), Phases: ghPhases(rep), Timeline: ghTimeline(rep)}
	if err != nil {
		r.Message = err.Error()
	}
	if res != nil {
		r.Env, r.Tag, r.Commit, r.Diff, r.Outcome = res.Env, res.Tag, res.Tag, res.Diff, res.Outcome
		r.TaskDefinitionARN, r.Registered, r.Events = res.TaskDefARN, res.Registered, res.Events
		for _, im := range res.Images {
			r.Images = append(r.Images, ghImage{Name: im.Name, Ref: im.Ref, Digest: im.Digest, PushedBytes: im.Uploaded, ReusedBytes: im.Reused})
		}
		r.URL = res.URL
		for _, t := range res.Stopped {
			for _, c := range t.Containers {
				if c.ExitCode == nil && len(c.Logs) == 0 {
					continue
				}
				exit := ""
				if c.ExitCode != nil {
					exit = fmt.Sprintf("exit %d", *c.ExitCode)
				}
				r.Stopped = append(r.Stopped, ghStopped{Task: ecsread.ID(t.TaskArn), Container: c.Name, Exit: exit, Reason: c.Reason, Logs: c.Logs})
			}
		}
		for _, c := range res.Smoke {
			r.Smoke = append(r.Smoke, ghSmoke{URL: c.URL, OK: c.OK, Status: c.Status, Tries: c.Tries, Seconds: c.Elapsed.Seconds(), Error: c.Error})
		}
	}
	_ = writeGitHubResult(os.Getenv, r)
}
