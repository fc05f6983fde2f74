package inspect

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
)

// DefaultLimit is how many revisions history shows by default.
const DefaultLimit = 20

// History is the newest ACTIVE revisions of the live revision's family.
type History struct {
	Env       string     `json:"env"`
	Cluster   string     `json:"cluster"`
	Service   string     `json:"service"`
	Family    string     `json:"family"`
	Live      string     `json:"liveTaskDefinitionArn"`
	Limit     int        `json:"limit"`
	Revisions []Revision `json:"revisions"` // newest first
}

// LiveRevision returns the live revision if it is among the listed ones.
func (h History) LiveRevision() (Revision, bool) {
	for _, r := range h.Revisions {
		if r.Live {
			return r, true
		}
	}
	return Revision{}, false
}

// GetHistory reads the service (for the live revision and its family) and
// the family's newest limit ACTIVE revisions with their tags, newest first.
// Calls: DescribeServices, ListTaskDefinitions (one per page), and one
// DescribeTaskDefinition per revision (concurrently).
func GetHistory(ctx context.Context, api ECS, env *config.Environment, limit int) (History, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	svc, err := DescribeService(ctx, api, env)
	if err != nil {
		return History{}, err
	}
	live := aws.ToString(svc.TaskDefinition)
	family, _, _ := ecsread.FamilyOf(live)
	h := History{Env: env.Name, Cluster: env.Cluster, Service: env.Service, Family: family, Live: live, Limit: limit}
	arns, err := ListFamily(ctx, api, family, limit)
	if err != nil {
		return History{}, err
	}
	revs, err := DescribeRevisions(ctx, api, arns)
	if err != nil {
		return History{}, err
	}
	h.Revisions = MarkLive(revs, live)
	return h, nil
}

// MarkLive sets Live on the revision whose ARN is live. Pure.
func MarkLive(revs []Revision, live string) []Revision {
	out := make([]Revision, len(revs))
	for i, r := range revs {
		r.Live = r.ARN == live
		out[i] = r
	}
	return out
}
