package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/spf13/cobra"

	"github.com/hackforla/ctjdeploy/build"
	"github.com/hackforla/ctjdeploy/deploy/local"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/gitinfo"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/push"
)

// The detached local load balancer is this binary, re-executed with
// local.HelperEnv set (see deploy/local StartHelper): it serves before any
// command line is read.
func init() {
	if os.Getenv(local.HelperEnv) != "" {
		os.Exit(local.ServeHelper())
	}
}

type localFlags struct {
	noBuild, detach, down, resetData, dryRun bool
	port                                     int
	tag                                      string
}

const localLong = `Run ENV's own task definition on the local Docker engine, behind a local
load balancer on 127.0.0.1:PORT (local.port, default 8080).

The images are built as a deploy builds them (nothing is pushed); the
template is the deploy's, with {{ image }} naming the local images, {{ tf }}
from local.values then Terraform's outputs, and each secrets[].name read from
local.env_file or the environment (never printed). The containers share one
network namespace (localhost, as in awsvpc), start in dependsOn order, and
mount named Docker volumes ctjdeploy-ENV-VOLUME that are kept between runs.
Every container is labelled ctjdeploy.env=ENV.

Without --detach the containers' output is streamed, prefixed by their
names, until Ctrl-C (exit 130) or SIGTERM (143): the containers are then
stopped and removed, the volumes kept. An essential container that exits
ends the run with exit 1.`

func newLocalCmd(g *globals) *cobra.Command {
	f := &localFlags{}
	cmd := &cobra.Command{
		Use:   "local ENV",
		Short: "Run ENV's own task definition on the local Docker engine, behind a local load balancer",
		Long:  localLong,
		Example: `  ctjdeploy stage local               # build, run, stream the output; Ctrl-C stops
  ctjdeploy stage local --detach      # return once healthy, print the URL
  ctjdeploy stage local --down        # stop and remove (volumes kept)
  ctjdeploy stage local --down --reset-data   # ... and remove the volumes
  ctjdeploy stage local --dry-run     # print the rendered local task`,
		Args:              envArg,
		ValidArgsFunction: g.completeEnvs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLocal(cmd, g, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.noBuild, "no-build", false, "pull the images pushed under --tag instead of building them")
	fl.BoolVar(&f.detach, "detach", false, "return once every essential container runs and every health check passes")
	fl.BoolVar(&f.down, "down", false, "stop and remove ENV's local containers (volumes kept)")
	fl.BoolVar(&f.resetData, "reset-data", false, "remove ENV's local volumes (with --down, or before a new run)")
	fl.IntVar(&f.port, "port", 0, "the local load balancer's port on 127.0.0.1 (default local.port, 8080)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the rendered local task (secrets masked) and run nothing")
	fl.StringVar(&f.tag, "tag", "", "image tag (default: full SHA of HEAD of the config's git repository)")
	return cmd
}

func runLocal(cmd *cobra.Command, g *globals, f *localFlags, envName string) error {
	env, err := g.loadEnv(envName)
	if err != nil {
		return err
	}
	if f.down && (f.detach || f.dryRun || f.noBuild) {
		return exitcode.Invalidf("--down takes no --detach, --dry-run or --no-build")
	}
	if err := env.CheckFiles(!f.noBuild && !f.down); err != nil {
		return err
	}
	ctx := cmd.Context()
	cfgDir := filepath.Dir(env.TaskDefinition)
	if abs, aerr := filepath.Abs(g.configPath); aerr == nil {
		cfgDir = filepath.Dir(abs)
	}
	gitDir, tag := cfgDir, f.tag
	if head, herr := gitinfo.Head(ctx, cfgDir); herr != nil {
		gitDir = ""
		if tag == "" {
			tag = "local"
		}
	} else if tag == "" {
		tag = head
	}
	if err := config.ValidTag(tag); err != nil {
		return err
	}
	rep := g.reporter()
	defer closeReporter(rep)
	d := local.Deps{Registry: env.Registry}
	if self, serr := os.Executable(); serr == nil {
		d.Helper = []string{self}
	}
	needRegistry := !f.down && !f.dryRun
	// The AWS config, loaded when first needed, once.
	var (
		cfg     aws.Config
		cfgErr  error
		cfgRead bool
	)
	awsConfig := func() (aws.Config, error) {
		if !cfgRead {
			cfg, cfgErr = loadAWSForEnv(ctx, env)
			cfgRead = true
		}
		return cfg, cfgErr
	}
	if needRegistry && (d.Registry == "" || f.noBuild) {
		cfg, cerr := awsConfig()
		if cerr == nil && d.Registry == "" {
			d.Registry, cerr = push.RegistryFor(ctx, cfg, env)
		}
		if cerr == nil && f.noBuild {
			d.RegistryUser, d.RegistryPassword, cerr = ecrLogin(ctx, ecr.NewFromConfig(cfg))
		}
		if cerr != nil {
			if f.noBuild {
				return fmt.Errorf("--no-build pulls the images from the registry: %w", cerr)
			}
			fmt.Fprintf(g.stderr, "ctjdeploy local: warning: no registry (%v): building without its cache\n", cerr)
		}
	}
	if needRegistry && !f.noBuild {
		bopts := []build.Option{build.WithReporter(rep)}
		if self, serr := os.Executable(); serr == nil && d.Registry != "" {
			bopts = append(bopts, build.WithCredentialHelper(self, push.HelperName, []string{d.Registry}, push.HelperEnv(env.Region, d.Registry)...))
		}
		if cfg, cerr := awsConfig(); cerr == nil && d.Registry != "" {
			// The registry's cache images are read as a deploy reads them
			// (build.WithCacheConfig): with the ECR token for it alone.
			if reader, perr := push.New(ctx, cfg, push.WithRegistry(d.Registry)); perr == nil {
				defer reader.Close()
				bopts = append(bopts, build.WithCacheConfig(reader.ImageConfig))
			}
		}
		b, berr := build.NewDocker(bopts...)
		if berr != nil {
			return berr
		}
		d.Builder = b
	}
	_, err = local.Run(ctx, local.Options{Env: env, Tag: tag, GitDir: gitDir, NoBuild: f.noBuild, Detach: f.detach, Down: f.down,
		ResetData: f.resetData, DryRun: f.dryRun, Port: f.port, Verbose: g.verbose, Color: g.color() && isTerminal(os.Stdout), // g.stdout is the mask, never the terminal itself
		Out: g.stdout, Err: g.stderr, Reporter: rep}, d)
	return err
}

// ecrLogin is the registry user and password from ecr:GetAuthorizationToken
// (as the push gets them), registered as secrets.
func ecrLogin(ctx context.Context, api *ecr.Client) (string, string, error) {
	out, err := api.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return "", "", fmt.Errorf("getting registry credentials (ecr:GetAuthorizationToken): %w", err)
	}
	if len(out.AuthorizationData) == 0 || out.AuthorizationData[0].AuthorizationToken == nil {
		return "", "", fmt.Errorf("ecr:GetAuthorizationToken returned no authorization data")
	}
	raw, err := base64.StdEncoding.DecodeString(*out.AuthorizationData[0].AuthorizationToken)
	if err != nil {
		return "", "", fmt.Errorf("decoding the ECR authorization token: %w", err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", fmt.Errorf("the ECR authorization token is not user:password")
	}
	report.AddSecret(pass)
	report.AddSecret(*out.AuthorizationData[0].AuthorizationToken)
	return user, pass, nil
}
