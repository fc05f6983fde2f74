// Package ecsread is ctjdeploy's one read model of ECS: how a service is
// described (by name, a missing cluster or service being a config error),
// how a task definition is read with its tags, the ctjdeploy: tags put on
// every revision ctjdeploy registers, and how ARNs and commits are
// shortened for people. deploy, rollout, rollback, inspect and preflight
// read ECS through it, so they agree on what "the service" and "the live
// revision" are.
package ecsread

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/awserr"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// The tags ctjdeploy puts on every task definition revision it registers,
// set in RegisterTaskDefinition itself and read back with
// DescribeTaskDefinition(include=TAGS).
const (
	TagPrefix   = "ctjdeploy:"
	TagCommit   = "ctjdeploy:commit"   // the image tag (normally the full commit SHA) deployed
	TagEnv      = "ctjdeploy:env"      // the environment deployed to
	TagPrevious = "ctjdeploy:previous" // the task definition ARN live before this deploy
	TagRun      = "ctjdeploy:run"      // one registration's id (rollout.Register)
)

// ECS is the part of the ECS API this package calls; *ecs.Client satisfies it.
type ECS interface {
	DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput, opts ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error)
	DescribeTaskDefinition(ctx context.Context, in *ecs.DescribeTaskDefinitionInput, opts ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error)
}

var _ ECS = (*ecs.Client)(nil)

// ServiceNotFoundError says that a service does not exist, or is not ACTIVE,
// in its cluster (or that the cluster does not exist). DescribeService
// returns it with exit code 2: the config names something that is not
// there. Env and Region, when the caller knows them, name the config entry
// to check.
type ServiceNotFoundError struct {
	Env, Cluster, Service, Region, Reason string
}

func (e *ServiceNotFoundError) Error() string {
	why := ""
	if e.Reason != "" {
		why = " (" + e.Reason + ")"
	}
	if e.Env == "" {
		return fmt.Sprintf("service %q not found in cluster %q%s: check `service:` and `cluster:` in the config", e.Service, e.Cluster, why)
	}
	return fmt.Sprintf("service %q not found in cluster %q, region %s%s: the names come from the config (environments.%s: cluster, service, region); "+
		"check them against the ECS console (the CTJ stage service was renamed once: civic-tech-jobs-fs-stage → civic-tech-jobs-fullstack-stage)",
		e.Service, e.Cluster, e.Region, why, e.Env)
}

// DescribeService reads one service, matched by name or ARN. A missing
// cluster (ClusterNotFoundException) or a missing or inactive service is a
// *ServiceNotFoundError with exit code 2. DescribeServices reports a
// missing service as a failure with reason MISSING rather than an error
// (ECS API Reference, "DescribeServices": failures), and a deleted service
// as status DRAINING or INACTIVE.
func DescribeService(ctx context.Context, api ECS, cluster, service string) (*ecstypes.Service, error) {
	out, err := api.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{service}})
	if err != nil {
		var cnf *ecstypes.ClusterNotFoundException
		if errors.As(err, &cnf) {
			return nil, exitcode.Wrap(exitcode.Invalid, &ServiceNotFoundError{Cluster: cluster, Service: service, Reason: "the cluster does not exist"})
		}
		return nil, awserr.Wrap(fmt.Sprintf("reading service %s in cluster %s (ecs:DescribeServices)", service, cluster), err)
	}
	nf := &ServiceNotFoundError{Cluster: cluster, Service: service}
	for _, f := range out.Failures {
		nf.Reason = aws.ToString(f.Reason)
	}
	for i := range out.Services {
		s := &out.Services[i]
		if aws.ToString(s.ServiceName) != service && aws.ToString(s.ServiceArn) != service {
			continue
		}
		if st := aws.ToString(s.Status); st != "" && st != "ACTIVE" {
			nf.Reason = "status " + st
			break
		}
		return s, nil
	}
	return nil, exitcode.Wrap(exitcode.Invalid, nf)
}

// DescribeTaskDefinition reads one task definition (ARN or FAMILY:REV) with
// its tags.
func DescribeTaskDefinition(ctx context.Context, api ECS, arn string) (*ecstypes.TaskDefinition, []ecstypes.Tag, error) {
	out, err := api.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(arn),
		Include:        []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags},
	})
	if err != nil {
		return nil, nil, awserr.Wrap(fmt.Sprintf("reading task definition %s (ecs:DescribeTaskDefinition)", ShortARN(arn)), err)
	}
	if out.TaskDefinition == nil {
		return nil, nil, fmt.Errorf("ecs:DescribeTaskDefinition %s returned no task definition", ShortARN(arn))
	}
	return out.TaskDefinition, out.Tags, nil
}

// TagMap turns a tag list into a map (never nil).
func TagMap(tags []ecstypes.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// ID is the last path segment of an ARN: a task's or deployment's id, or a
// task definition's FAMILY:REV. A string without "/" is returned whole.
func ID(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// FamilyOf returns the family and revision of a task definition ARN
// (arn:...:task-definition/FAMILY:REV) or of FAMILY:REV.
func FamilyOf(arn string) (family string, revision int, ok bool) {
	s := ID(arn)
	i := strings.LastIndex(s, ":")
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return "", 0, false
	}
	return s[:i], n, true
}

// Family is the family of a task definition ARN, FAMILY:REV or FAMILY.
func Family(arn string) string {
	if f, _, ok := FamilyOf(arn); ok {
		return f
	}
	return ID(arn)
}

// ShortARN is FAMILY:REVISION of a task definition ARN, for messages (the
// string itself when it is not one).
func ShortARN(arn string) string {
	if f, n, ok := FamilyOf(arn); ok {
		return f + ":" + strconv.Itoa(n)
	}
	return arn
}

// ShortCommit shortens a commit SHA tag to 12 characters; any other tag is
// shown whole.
func ShortCommit(tag string) string {
	if len(tag) == 40 && isHex(tag) {
		return tag[:12]
	}
	return tag
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return s != ""
}

// Deployments is the part of the ECS API that reads service deployments
// (the service deployment API: "View service history using Amazon ECS
// service deployments" in the ECS developer guide).
type Deployments interface {
	ListServiceDeployments(ctx context.Context, in *ecs.ListServiceDeploymentsInput, opts ...func(*ecs.Options)) (*ecs.ListServiceDeploymentsOutput, error)
	DescribeServiceDeployments(ctx context.Context, in *ecs.DescribeServiceDeploymentsInput, opts ...func(*ecs.Options)) (*ecs.DescribeServiceDeploymentsOutput, error)
}

// ServiceDeploymentsSince lists the service's service deployments created
// after after (ListServiceDeployments with the createdAt filter). It reads
// one page: without maxResults ECS returns up to 20 (ECS API Reference,
// "ListServiceDeployments", maxResults), far more than the window since an
// update holds.
// Errors are returned as the SDK gave them, for the caller to classify
// (awserr): an account without the API answers access denied.
func ServiceDeploymentsSince(ctx context.Context, api Deployments, cluster, service string, after time.Time) ([]ecstypes.ServiceDeploymentBrief, error) {
	out, err := api.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{
		Cluster: aws.String(cluster), Service: aws.String(service),
		CreatedAt: &ecstypes.CreatedAt{After: aws.Time(after)},
	})
	if err != nil {
		return nil, err
	}
	return out.ServiceDeployments, nil
}

// DescribeServiceDeployment reads one service deployment (nil when ECS
// lists none by that ARN yet: its reads are eventually consistent). Errors
// are returned as the SDK gave them.
func DescribeServiceDeployment(ctx context.Context, api Deployments, arn string) (*ecstypes.ServiceDeployment, error) {
	out, err := api.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{arn}})
	if err != nil {
		return nil, err
	}
	if len(out.ServiceDeployments) == 0 {
		return nil, nil
	}
	return &out.ServiceDeployments[0], nil
}
