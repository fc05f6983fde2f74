// Package inspect answers "what runs now, and which commit is it?": the
// status of an environment's service and the history of its task definition
// family. It only reads; the decisions (drift, which revision is which) and
// the formatting are pure functions.
package inspect

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/safego"
)

// The tags ctjdeploy puts on every task definition revision it registers.
const (
	TagPrefix   = "ctjdeploy:"
	TagCommit   = "ctjdeploy:commit"   // the image tag (full commit SHA) deployed
	TagEnv      = "ctjdeploy:env"      // the environment deployed to
	TagPrevious = "ctjdeploy:previous" // the task definition ARN live before this deploy
)

// ECS is the part of the ECS API that status and history call.
type ECS interface {
	DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput, opts ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error)
	DescribeTaskDefinition(ctx context.Context, in *ecs.DescribeTaskDefinitionInput, opts ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error)
	ListTaskDefinitions(ctx context.Context, in *ecs.ListTaskDefinitionsInput, opts ...func(*ecs.Options)) (*ecs.ListTaskDefinitionsOutput, error)
}

// ECR is the part of the ECR API status calls to find an image's tags.
type ECR interface {
	DescribeImages(ctx context.Context, in *ecr.DescribeImagesInput, opts ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)
}

// API holds the clients. ECR may be nil: status then shows no registry tags.
type API struct {
	ECS ECS
	ECR ECR
}

// Container is one container of a revision and its image.
type Container struct {
	Name       string   `json:"name"`
	Image      string   `json:"image"`                // as written in the task definition
	Repository string   `json:"repository,omitempty"` // REGISTRY/REPO (or REPO for Docker Hub)
	Tag        string   `json:"tag,omitempty"`        // the tag in the reference, if any
	Digest     string   `json:"digest,omitempty"`     // sha256:..., if pinned
	Tags       []string `json:"registryTags,omitempty"`
}

// Pinned says whether the container's image is pinned by digest.
func (c Container) Pinned() bool { return c.Digest != "" }

// Revision is one task definition revision, as status and history show it.
type Revision struct {
	ARN          string            `json:"taskDefinitionArn"`
	Family       string            `json:"family"`
	Revision     int32             `json:"revision"`
	Status       string            `json:"status"`
	Commit       string            `json:"commit,omitempty"`   // ctjdeploy:commit
	Env          string            `json:"env,omitempty"`      // ctjdeploy:env
	Previous     string            `json:"previous,omitempty"` // ctjdeploy:previous
	ByCtjdeploy  bool              `json:"registeredByCtjdeploy"`
	RegisteredAt *time.Time        `json:"registeredAt,omitempty"`
	RegisteredBy string            `json:"registeredBy,omitempty"` // the IAM principal, when ECS says
	Containers   []Container       `json:"containers"`
	Live         bool              `json:"live"`
	Tags         map[string]string `json:"tags,omitempty"`

	// Definition is the described task definition (not in JSON output).
	Definition *ecstypes.TaskDefinition `json:"-"`
}

// Digests maps container name to digest for the pinned containers.
func (r Revision) Digests() map[string]string {
	m := map[string]string{}
	for _, c := range r.Containers {
		if c.Digest != "" {
			m[c.Name] = c.Digest
		}
	}
	return m
}

// Container returns the named container.
func (r Revision) Container(name string) (Container, bool) {
	for _, c := range r.Containers {
		if c.Name == name {
			return c, true
		}
	}
	return Container{}, false
}

// Who says who registered the revision: "ctjdeploy" or "other".
func (r Revision) Who() string {
	if r.ByCtjdeploy {
		return "ctjdeploy"
	}
	return "other"
}

// NewRevision builds a Revision from a described task definition and its
// tags. Pure.
func NewRevision(td *ecstypes.TaskDefinition, tags []ecstypes.Tag) Revision {
	r := Revision{Definition: td, Tags: map[string]string{}}
	if td == nil {
		return r
	}
	r.ARN = aws.ToString(td.TaskDefinitionArn)
	r.Family = aws.ToString(td.Family)
	r.Revision = td.Revision
	r.Status = string(td.Status)
	r.RegisteredAt = td.RegisteredAt
	r.RegisteredBy = aws.ToString(td.RegisteredBy)
	for _, t := range tags {
		r.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	for k := range r.Tags {
		if strings.HasPrefix(k, TagPrefix) {
			r.ByCtjdeploy = true
		}
	}
	r.Commit = r.Tags[TagCommit]
	r.Env = r.Tags[TagEnv]
	r.Previous = r.Tags[TagPrevious]
	if len(r.Tags) == 0 {
		r.Tags = nil
	}
	for _, cd := range td.ContainerDefinitions {
		img := aws.ToString(cd.Image)
		ref := ParseImage(img)
		r.Containers = append(r.Containers, Container{
			Name: aws.ToString(cd.Name), Image: img,
			Repository: ref.Repository, Tag: ref.Tag, Digest: ref.Digest,
		})
	}
	return r
}

// ImageRef is a parsed image reference.
type ImageRef struct {
	Registry   string // host[:port], "" for Docker Hub
	Path       string // repository path inside the registry
	Repository string // Registry/Path (or Path)
	Tag        string
	Digest     string
}

// ParseImage splits an image reference REGISTRY/PATH[:TAG][@DIGEST]. Pure;
// it never fails (an odd reference simply has fewer parts).
func ParseImage(ref string) ImageRef {
	var r ImageRef
	rest := ref
	if i := strings.Index(rest, "@"); i >= 0 {
		r.Digest = rest[i+1:]
		rest = rest[:i]
	}
	if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.Contains(rest[i+1:], "/") {
		r.Tag = rest[i+1:]
		rest = rest[:i]
	}
	r.Repository = rest
	r.Path = rest
	if i := strings.Index(rest, "/"); i >= 0 {
		host := rest[:i]
		if strings.ContainsAny(host, ".:") || host == "localhost" {
			r.Registry = host
			r.Path = rest[i+1:]
		}
	}
	return r
}

// FamilyOf returns the family and revision of a task definition ARN
// (arn:...:task-definition/FAMILY:REV) or of FAMILY:REV.
func FamilyOf(arn string) (family string, revision int, ok bool) {
	s := arn[strings.LastIndex(arn, "/")+1:]
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

// ShortARN is FAMILY:REVISION of a task definition ARN, for messages.
func ShortARN(arn string) string {
	if f, n, ok := FamilyOf(arn); ok {
		return f + ":" + strconv.Itoa(n)
	}
	return arn
}

// ServiceNotFoundError says that env's service does not exist (or is not
// ACTIVE) in its cluster. DescribeService returns it with exit code 2 (the
// config names something that is not there), as the deploy package does.
type ServiceNotFoundError struct {
	Env, Cluster, Service, Region, Reason string
}

func (e *ServiceNotFoundError) Error() string {
	why := ""
	if e.Reason != "" {
		why = " (" + e.Reason + ")"
	}
	return fmt.Sprintf("service %q not found in cluster %q, region %s%s: the names come from the config (environments.%s: cluster, service, region); "+
		"check them against the ECS console (the CTJ stage service was renamed once: civic-tech-jobs-fs-stage → civic-tech-jobs-fullstack-stage)",
		e.Service, e.Cluster, e.Region, why, e.Env)
}

// DescribeService reads env's service. A missing or inactive service (or
// cluster) is a *ServiceNotFoundError.
func DescribeService(ctx context.Context, api ECS, env *config.Environment) (*ecstypes.Service, error) {
	out, err := api.DescribeServices(ctx, &ecs.DescribeServicesInput{
		Cluster:  aws.String(env.Cluster),
		Services: []string{env.Service},
	})
	if err != nil {
		var cnf *ecstypes.ClusterNotFoundException
		if errors.As(err, &cnf) {
			return nil, exitcode.Wrap(exitcode.Invalid, &ServiceNotFoundError{Env: env.Name, Cluster: env.Cluster, Service: env.Service, Region: env.Region, Reason: "the cluster does not exist"})
		}
		return nil, AWSError(fmt.Sprintf("describing service %s in cluster %s (ecs:DescribeServices)", env.Service, env.Cluster), err)
	}
	for i := range out.Services {
		s := &out.Services[i]
		if aws.ToString(s.Status) == "ACTIVE" {
			return s, nil
		}
	}
	reason := ""
	for _, f := range out.Failures {
		reason = aws.ToString(f.Reason)
	}
	for _, s := range out.Services {
		reason = "status " + aws.ToString(s.Status)
	}
	return nil, exitcode.Wrap(exitcode.Invalid, &ServiceNotFoundError{Env: env.Name, Cluster: env.Cluster, Service: env.Service, Region: env.Region, Reason: reason})
}

// DescribeRevision reads one task definition with its tags.
func DescribeRevision(ctx context.Context, api ECS, arn string) (Revision, error) {
	out, err := api.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(arn),
		Include:        []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags},
	})
	if err != nil {
		return Revision{}, AWSError(fmt.Sprintf("describing task definition %s (ecs:DescribeTaskDefinition)", ShortARN(arn)), err)
	}
	if out.TaskDefinition == nil {
		return Revision{}, fmt.Errorf("ecs:DescribeTaskDefinition %s returned no task definition", ShortARN(arn))
	}
	return NewRevision(out.TaskDefinition, out.Tags), nil
}

// ListFamily returns up to limit ACTIVE revision ARNs of exactly family,
// newest first (ListTaskDefinitions matches by prefix; others are dropped).
func ListFamily(ctx context.Context, api ECS, family string, limit int) ([]string, error) {
	var arns []string
	var token *string
	for {
		out, err := api.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{
			FamilyPrefix: aws.String(family),
			Sort:         ecstypes.SortOrderDesc,
			Status:       ecstypes.TaskDefinitionStatusActive,
			NextToken:    token,
		})
		if err != nil {
			return nil, AWSError(fmt.Sprintf("listing task definitions of family %s (ecs:ListTaskDefinitions)", family), err)
		}
		for _, a := range out.TaskDefinitionArns {
			if f, _, ok := FamilyOf(a); ok && f == family {
				arns = append(arns, a)
			}
		}
		token = out.NextToken
		if token == nil || (limit > 0 && len(arns) >= limit) {
			break
		}
	}
	// Sorted DESC by the API, but be sure: newest revision first.
	sort.SliceStable(arns, func(i, j int) bool {
		_, a, _ := FamilyOf(arns[i])
		_, b, _ := FamilyOf(arns[j])
		return a > b
	})
	if limit > 0 && len(arns) > limit {
		arns = arns[:limit]
	}
	return arns, nil
}

// DescribeRevisions describes arns concurrently (at most 8 at a time) and
// returns them in the order given.
func DescribeRevisions(ctx context.Context, api ECS, arns []string) ([]Revision, error) {
	revs := make([]Revision, len(arns))
	errs := make([]error, len(arns))
	sem := make(chan struct{}, 8)
	done := make(chan struct{})
	for i, a := range arns {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem; done <- struct{}{} }()
			defer safego.Recover("describing "+a, func(e error) { errs[i] = e })
			revs[i], errs[i] = DescribeRevision(ctx, api, a)
		}()
	}
	for range arns {
		<-done
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return revs, nil
}

// AWSError wraps an AWS error with what was being done; access denied gets
// the hint to grant the action.
func AWSError(what string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "AccessDeniedException", "AccessDenied", "UnauthorizedOperation":
			return fmt.Errorf("%s: access denied: %w; grant this IAM action to the identity running ctjdeploy (see `ctjdeploy ENV iam-policy`)", what, err)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}
