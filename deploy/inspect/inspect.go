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
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/awserr"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
	"github.com/hackforla/ctjdeploy/internal/safego"
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
		if strings.HasPrefix(k, ecsread.TagPrefix) {
			r.ByCtjdeploy = true
		}
	}
	r.Commit = r.Tags[ecsread.TagCommit]
	r.Env = r.Tags[ecsread.TagEnv]
	r.Previous = r.Tags[ecsread.TagPrevious]
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

// DescribeService reads env's service (ecsread.DescribeService). A missing
// or inactive service (or cluster) is an *ecsread.ServiceNotFoundError
// naming env's config entry.
func DescribeService(ctx context.Context, api ECS, env *config.Environment) (*ecstypes.Service, error) {
	svc, err := ecsread.DescribeService(ctx, api, env.Cluster, env.Service)
	var nf *ecsread.ServiceNotFoundError
	if errors.As(err, &nf) {
		nf.Env, nf.Region = env.Name, env.Region
	}
	return svc, err
}

// DescribeRevision reads one task definition with its tags.
func DescribeRevision(ctx context.Context, api ECS, arn string) (Revision, error) {
	td, tags, err := ecsread.DescribeTaskDefinition(ctx, api, arn)
	if err != nil {
		return Revision{}, err
	}
	return NewRevision(td, tags), nil
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
			return nil, awserr.Wrap(fmt.Sprintf("listing task definitions of family %s (ecs:ListTaskDefinitions)", family), err)
		}
		for _, a := range out.TaskDefinitionArns {
			if f, _, ok := ecsread.FamilyOf(a); ok && f == family {
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
		_, a, _ := ecsread.FamilyOf(arns[i])
		_, b, _ := ecsread.FamilyOf(arns[j])
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
