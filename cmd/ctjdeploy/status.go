package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/spf13/cobra"

	"github.com/hackforla/ctjdeploy/deploy/inspect"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/netclient"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/push"
)

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status ENV",
		Short: "What runs in ENV now: revision, commit, images, rollout state, last events, drift",
		Long: `Show ENV's service: the live task definition revision and the commit it was
deployed from, its images by digest, the state of the current deployment
(desired/running/pending), the last service events, and drift: a live
revision that ctjdeploy did not register (e.g. re-registered by terraform
apply).`,
		Args:              envArg,
		ValidArgsFunction: g.completeEnvs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.loadEnv(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			cfg, err := loadAWSForEnv(ctx, env)
			if err != nil {
				return err
			}
			st, err := inspect.GetStatus(ctx, inspect.API{ECS: ecs.NewFromConfig(cfg), ECR: ecr.NewFromConfig(cfg)}, env)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return writeJSON(g.stdout, st)
			}
			return inspect.WriteStatus(g.stdout, st)
		},
	}
}

// loadAWSForEnv loads the AWS SDK configuration (environment, shared config,
// AWS_ENDPOINT_URL) in env's region.
func loadAWSForEnv(ctx context.Context, env *config.Environment) (aws.Config, error) {
	// Every call is bounded (connect, response headers, total) and retried
	// through throttling with more attempts than the SDK's default.
	opts := append([]func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(env.Region)}, netclient.AWSOptions(netclient.Default, netclient.AWSMaxAttempts)...)
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading the AWS configuration (credentials, region %s): %w", env.Region, err)
	}
	return cfg, nil
}

// registryClients loads the AWS configuration for env and opens its registry:
// the registry host (config, or the account's ECR) and a pusher holding the
// ECR token in memory. Close the pusher when done.
func registryClients(ctx context.Context, env *config.Environment, rep report.Reporter) (aws.Config, string, *push.ECR, error) {
	cfg, err := loadAWSForEnv(ctx, env)
	if err != nil {
		return aws.Config{}, "", nil, err
	}
	registry, err := push.RegistryFor(ctx, cfg, env)
	if err != nil {
		return aws.Config{}, "", nil, err
	}
	// The ECR token goes to the environment's registry only.
	pusher, err := push.New(ctx, cfg, push.WithReporter(rep), push.WithRegistry(registry))
	if err != nil {
		return aws.Config{}, "", nil, err
	}
	return cfg, registry, pusher, nil
}
