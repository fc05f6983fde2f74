package main

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/hackforla/ctjdeploy/deploy/preflight"
	"github.com/hackforla/ctjdeploy/internal/config"
)

// preflightClients are the real AWS clients the preflight probes call.
func preflightClients(cfg aws.Config, env *config.Environment) preflight.Clients {
	c := preflight.Clients{STS: sts.NewFromConfig(cfg), ECR: ecr.NewFromConfig(cfg), ECS: ecs.NewFromConfig(cfg), Logs: cloudwatchlogs.NewFromConfig(cfg)}
	if env.LockParameter() != "" {
		c.SSM = ssm.NewFromConfig(cfg)
	}
	return c
}

// preflightCheck is deploy's and rollback's first phase: every read the run
// needs, made before the first build and the first write; every denied
// read in one exit-2 error (deploy/preflight).
func preflightCheck(cfg aws.Config, env *config.Environment, registry string) func(ctx context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		rep, err := preflight.Run(ctx, preflightClients(cfg, env), preflight.Target{Env: env, Registry: registry})
		if err != nil {
			return nil, err
		}
		if err := rep.Err(env.Name); err != nil {
			return nil, err
		}
		return rep.Warnings(env.Name), nil
	}
}
