package main

import (
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/hackforla/ctjdeploy/build"
	"github.com/hackforla/ctjdeploy/deploy"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/gitinfo"
	"github.com/hackforla/ctjdeploy/push"

	"github.com/spf13/cobra"
)

// deployFlags are the contract's deploy flags.
type deployFlags struct {
	dryRun  bool
	tag     string
	noBuild bool
	noWait  bool
	noSmoke bool
	timeout time.Duration
	force   bool
	// forceUnlock: --force-unlock
	forceUnlock bool
}

const deployLong = `Deploy ENV: build both images, push them tagged TAG and ENV and pinned by
digest, read Terraform outputs, render the task definition, register it if it
changed, update the service, follow the deployment this update started until
it completes, fails or is rolled back by ECS, and check that the running tasks
run the pushed digests.

TAG defaults to the full commit SHA of HEAD of the git repository holding the
config file.

Guards refuse (exit 5, nothing changed) when another deployment is in
progress, when TAG is older than the commit deployed now (a late CI run must
not roll stage back), or when the postgres container would lose its data.
--force bypasses the first two, never the data guard.`

func newDeployCmd(g *globals) *cobra.Command {
	f := &deployFlags{}
	cmd := &cobra.Command{
		Use:   "deploy ENV",
		Short: "Deploy ENV (the same as `ctjdeploy ENV`)",
		Long:  deployLong,
		Example: `  ctjdeploy stage --dry-run
  ctjdeploy stage
  ctjdeploy stage --tag 1a2b3c4d... --no-build   # images already pushed under that tag`,
		Args:              envArg,
		ValidArgsFunction: g.completeEnvs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDeploy(cmd, g, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.dryRun, "dry-run", false, "build locally, read everything, write nothing; print the plan")
	fl.StringVar(&f.tag, "tag", "", "image tag to build and deploy (default: full SHA of HEAD of the config's git repository)")
	fl.BoolVar(&f.noBuild, "no-build", false, "deploy images already in the registry under --tag")
	fl.BoolVar(&f.noWait, "no-wait", false, "stop after updating the service; do not follow the deployment")
	fl.BoolVar(&f.noSmoke, "no-smoke", false, "skip the environment's smoke checks after the rollout")
	fl.DurationVar(&f.timeout, "timeout", 15*time.Minute, "how long to follow the deployment before exiting 4")
	fl.BoolVar(&f.force, "force", false, "bypass the in-progress and stale-commit guards (never the data guard)")
	fl.BoolVar(&f.forceUnlock, "force-unlock", false, "take the deploy lock over from a run that died without releasing it (before it expires)")
	return cmd
}

func runDeploy(cmd *cobra.Command, g *globals, f *deployFlags, envName string) (err error) {
	env, err := g.loadEnv(envName)
	if err != nil {
		return err
	}
	if err := env.CheckFiles(!f.noBuild); err != nil {
		return err
	}
	rep := g.reporter()
	var res *deploy.Result
	defer func() {
		if r, ok := rep.(*eventRecorder); ok {
			r.end(res, err)
		}
		err = writeDeployResult(g, rep, res, err)
	}()
	if f.timeout <= 0 {
		return exitcode.Invalidf("--timeout %s: give a positive duration, e.g. 15m", f.timeout)
	}
	interval, err := pollInterval()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	cfgDir := filepath.Dir(env.TaskDefinition)
	if abs, aerr := filepath.Abs(g.configPath); aerr == nil {
		cfgDir = filepath.Dir(abs)
	}
	gitDir := cfgDir
	tag := f.tag
	if head, herr := gitinfo.Head(ctx, cfgDir); herr != nil {
		gitDir = ""
		if tag == "" {
			return exitcode.Invalidf("no --tag given and the config's folder %s is not in a git repository (%v): pass --tag TAG", cfgDir, herr)
		}
	} else if tag == "" {
		tag = head
	}
	// The tag goes into registry paths: check it before any call or build.
	if err := config.ValidTag(tag); err != nil {
		return err
	}
	cfg, registry, pusher, err := registryClients(ctx, env, rep)
	if err != nil {
		return err
	}
	defer pusher.Close()
	deps := deploy.Deps{ECS: ecs.NewFromConfig(cfg), Pusher: pusher, Registry: registry, Logs: cloudwatchlogs.NewFromConfig(cfg),
		SSM:       ssm.NewFromConfig(cfg), // the deploy lock (not taken by a dry run)
		Preflight: preflightCheck(cfg, env, registry)}
	if !f.noBuild {
		// The cache images' configs are read with the push's registry client.
		bopts := []build.Option{build.WithReporter(rep), build.WithCacheConfig(pusher.ImageConfig)}
		if self, serr := os.Executable(); serr == nil {
			// docker build --cache-from reads the registry through ctjdeploy
			// itself as a credential helper: no credential is written to disk.
			bopts = append(bopts, build.WithCredentialHelper(self, push.HelperName, []string{registry}, push.HelperEnv(env.Region, registry)...))
		}
		b, berr := build.NewDocker(bopts...)
		if berr != nil {
			return berr
		}
		deps.Builder = b
	}
	res, err = deploy.Run(ctx, deploy.Options{Env: env, Tag: tag, GitDir: gitDir, DryRun: f.dryRun, NoBuild: f.noBuild,
		NoWait: f.noWait, NoSmoke: f.noSmoke, Force: f.force, ForceUnlock: f.forceUnlock, Timeout: f.timeout, Interval: interval, Color: g.color() && g.output != "json", Reporter: rep}, deps)
	return err
}
