// Package rollout carries a rendered task definition out on an ECS service
// and follows it to its end: the guards that judge a deploy over the live
// service (in progress, stale commit, data), Register (with ctjdeploy's
// tags and a run id, so a retried call adopts what it registered), Update,
// Follow (one deployment by id, to completed, rolled back, not recovered,
// replaced or timed out, ending a failing one at failure_threshold), and
// Verify (the running tasks run the digests the revision pins). It renders
// nothing (deploy/taskdef does) and reads the service through
// internal/ecsread. Decisions are pure functions (Guards, evaluate,
// DecideServiceDeployment, DecideThreshold, decide); the code around them
// only fetches and applies. deploy and rollback use it; ReadLive,
// StopRollback and SourceRevision serve rollback too.
//
// # What rollback can rely on (tags on every revision ctjdeploy registers)
//
//	ctjdeploy:commit   = TAG, the image tag deployed (normally the full commit SHA)
//	ctjdeploy:env      = ENV, the environment deployed to
//	ctjdeploy:previous = the task definition ARN the service ran when this
//	                     revision was registered ("what was live before")
//
// The keys are ecsread.TagCommit, TagEnv and TagPrevious. The tags are set
// in RegisterTaskDefinition itself (no TagResource call) and read back with
// DescribeTaskDefinition(include=TAGS). ctjdeploy:previous is written only
// when the previous ARN differs from the new one; rollback without --to
// should deploy the live revision's ctjdeploy:previous ARN (and, if that
// revision is gone or untagged, say so rather than guess "revision − 1"). A
// redeploy that registers nothing (the definition did not change) keeps the
// tags of the revision already live.
package rollout

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// ECS is the part of the ECS API a deploy calls; *ecs.Client satisfies it.
type ECS interface {
	DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput, opts ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error)
	DescribeTaskDefinition(ctx context.Context, in *ecs.DescribeTaskDefinitionInput, opts ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error)
	RegisterTaskDefinition(ctx context.Context, in *ecs.RegisterTaskDefinitionInput, opts ...func(*ecs.Options)) (*ecs.RegisterTaskDefinitionOutput, error)
	UpdateService(ctx context.Context, in *ecs.UpdateServiceInput, opts ...func(*ecs.Options)) (*ecs.UpdateServiceOutput, error)
	ListServiceDeployments(ctx context.Context, in *ecs.ListServiceDeploymentsInput, opts ...func(*ecs.Options)) (*ecs.ListServiceDeploymentsOutput, error)
	DescribeServiceDeployments(ctx context.Context, in *ecs.DescribeServiceDeploymentsInput, opts ...func(*ecs.Options)) (*ecs.DescribeServiceDeploymentsOutput, error)
	StopServiceDeployment(ctx context.Context, in *ecs.StopServiceDeploymentInput, opts ...func(*ecs.Options)) (*ecs.StopServiceDeploymentOutput, error)
	ListTasks(ctx context.Context, in *ecs.ListTasksInput, opts ...func(*ecs.Options)) (*ecs.ListTasksOutput, error)
	DescribeTasks(ctx context.Context, in *ecs.DescribeTasksInput, opts ...func(*ecs.Options)) (*ecs.DescribeTasksOutput, error)
}

var _ ECS = (*ecs.Client)(nil)
