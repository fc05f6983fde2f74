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
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/awserr"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
)

// Status is what runs in an environment now.
type Status struct {
	Env           string       `json:"env"`
	Region        string       `json:"region"`
	Cluster       string       `json:"cluster"`
	Service       string       `json:"service"`
	ServiceARN    string       `json:"serviceArn,omitempty"`
	ServiceStatus string       `json:"serviceStatus"`
	Desired       int32        `json:"desiredCount"`
	Running       int32        `json:"runningCount"`
	Pending       int32        `json:"pendingCount"`
	Live          Revision     `json:"live"`
	Deployment    *Deployment  `json:"deployment,omitempty"`       // the PRIMARY deployment
	Others        []Deployment `json:"otherDeployments,omitempty"` // older deployments still holding tasks
	Events        []Event      `json:"events"`                     // newest first, at most 5
	Drift         []string     `json:"drift,omitempty"`            // why the live revision is not what ctjdeploy deployed
	Notes         []string     `json:"notes,omitempty"`            // reads that failed without failing status
}

// Deployment is one deployment of the service.
type Deployment struct {
	ID             string     `json:"id"`
	Status         string     `json:"status"`                 // PRIMARY, ACTIVE, INACTIVE
	RolloutState   string     `json:"rolloutState,omitempty"` // IN_PROGRESS, COMPLETED, FAILED
	RolloutReason  string     `json:"rolloutStateReason,omitempty"`
	TaskDefinition string     `json:"taskDefinitionArn"`
	Desired        int32      `json:"desiredCount"`
	Running        int32      `json:"runningCount"`
	Pending        int32      `json:"pendingCount"`
	Failed         int32      `json:"failedTasks"`
	CreatedAt      *time.Time `json:"createdAt,omitempty"`
	UpdatedAt      *time.Time `json:"updatedAt,omitempty"`
}

// Event is a service event.
type Event struct {
	Time    *time.Time `json:"time,omitempty"`
	Message string     `json:"message"`
}

// MaxEvents is how many service events status shows.
const MaxEvents = 5

// GetStatus reads env's service, its live revision (with tags) and, when the
// images live in ECR, their tags. Calls: DescribeServices,
// DescribeTaskDefinition, and one ecr:DescribeImages per ECR image.
func GetStatus(ctx context.Context, api API, env *config.Environment) (Status, error) {
	svc, err := DescribeService(ctx, api.ECS, env)
	if err != nil {
		return Status{}, err
	}
	live, err := DescribeRevision(ctx, api.ECS, aws.ToString(svc.TaskDefinition))
	if err != nil {
		return Status{}, err
	}
	live.Live = true
	st := NewStatus(env, svc, live)
	if api.ECR != nil {
		st.Notes = append(st.Notes, addRegistryTags(ctx, api.ECR, &st.Live)...)
	}
	return st, nil
}

// NewStatus assembles a Status from the described service and live
// revision. Pure.
func NewStatus(env *config.Environment, svc *ecstypes.Service, live Revision) Status {
	st := Status{
		Env: env.Name, Region: env.Region, Cluster: env.Cluster, Service: env.Service,
		ServiceARN:    aws.ToString(svc.ServiceArn),
		ServiceStatus: aws.ToString(svc.Status),
		Desired:       svc.DesiredCount,
		Running:       svc.RunningCount,
		Pending:       svc.PendingCount,
		Live:          live,
		Events:        []Event{},
	}
	for _, d := range svc.Deployments {
		dep := Deployment{
			ID:             aws.ToString(d.Id),
			Status:         aws.ToString(d.Status),
			RolloutState:   string(d.RolloutState),
			RolloutReason:  aws.ToString(d.RolloutStateReason),
			TaskDefinition: aws.ToString(d.TaskDefinition),
			Desired:        d.DesiredCount,
			Running:        d.RunningCount,
			Pending:        d.PendingCount,
			Failed:         d.FailedTasks,
			CreatedAt:      d.CreatedAt,
			UpdatedAt:      d.UpdatedAt,
		}
		if dep.Status == "PRIMARY" && st.Deployment == nil {
			st.Deployment = &dep
		} else {
			st.Others = append(st.Others, dep)
		}
	}
	events := append([]ecstypes.ServiceEvent(nil), svc.Events...)
	sort.SliceStable(events, func(i, j int) bool {
		a, b := events[i].CreatedAt, events[j].CreatedAt
		return a != nil && b != nil && a.After(*b)
	})
	for i := 0; i < len(events) && i < MaxEvents; i++ {
		st.Events = append(st.Events, Event{Time: events[i].CreatedAt, Message: aws.ToString(events[i].Message)})
	}
	st.Drift = Drift(env, live)
	return st
}

// Drift explains how the live revision differs from what a ctjdeploy deploy
// leaves behind; nil when it does not. Pure.
func Drift(env *config.Environment, live Revision) []string {
	var out []string
	name := ecsread.ShortARN(live.ARN)
	if !live.ByCtjdeploy {
		out = append(out, fmt.Sprintf("the live revision %s was registered outside ctjdeploy (it has no ctjdeploy:* tags). "+
			"Typically `terraform apply` re-registered the task definition it declares (no lifecycle ignore_changes) and pointed the service at it. "+
			"What that means: the next `ctjdeploy %s` replaces it with the rendered template; `ctjdeploy %s rollback` without --to has no recorded previous revision to return to (use --to TAG); "+
			"and its images are not the ones ctjdeploy pushed unless pinned by digest below. "+
			"To stop this, add lifecycle { ignore_changes = [container_definitions] } (or drop the task definition) in Terraform",
			name, env.Name, env.Name))
	} else if live.Env != "" && live.Env != env.Name {
		out = append(out, fmt.Sprintf("the live revision %s is tagged %s=%s, not %s: it was deployed through another environment's config", name, ecsread.TagEnv, live.Env, env.Name))
	}
	repos := map[string]string{}
	for _, n := range env.ImageNames() {
		repos[env.Images[n].Repository] = n
	}
	for _, c := range live.Containers {
		ref := ParseImage(c.Image)
		if _, built := repos[ref.Path]; built && ref.Digest == "" {
			out = append(out, fmt.Sprintf("container %s runs %s, a mutable tag: what it runs changes when the tag moves; ctjdeploy pins images by digest", c.Name, c.Image))
		}
	}
	return out
}

// addRegistryTags fills in the registry tags of rev's containers pinned to
// an ECR image (one ecr:DescribeImages each). A failure is returned as a
// note: tags are a courtesy.
func addRegistryTags(ctx context.Context, api ECR, rev *Revision) []string {
	var notes []string
	for i := range rev.Containers {
		c := &rev.Containers[i]
		ref := ParseImage(c.Image)
		id := config.ECRRegistryID(ref.Registry)
		if id == "" || ref.Digest == "" {
			continue
		}
		out, err := api.DescribeImages(ctx, &ecr.DescribeImagesInput{
			RegistryId:     aws.String(id),
			RepositoryName: aws.String(ref.Path),
			ImageIds:       []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(ref.Digest)}},
		})
		var nf *ecrtypes.ImageNotFoundException
		if errors.As(err, &nf) || (err == nil && len(out.ImageDetails) == 0) {
			notes = append(notes, fmt.Sprintf("the image of container %s (%s) is no longer in %s: a lifecycle policy may have expired it; a new task of this revision cannot start", c.Name, c.Digest, ref.Repository))
			continue
		}
		if err != nil {
			notes = append(notes, awserr.Wrap(fmt.Sprintf("reading the tags of container %s's image (ecr:DescribeImages)", c.Name), err).Error())
			continue
		}
		for _, d := range out.ImageDetails {
			c.Tags = append(c.Tags, d.ImageTags...)
		}
		sort.Strings(c.Tags)
	}
	return notes
}

// describeState is one word for the PRIMARY deployment's state.
func describeState(d *Deployment) string {
	if d == nil {
		return "no deployment"
	}
	s := strings.ToLower(d.RolloutState)
	if s == "" {
		s = "unknown (ECS reports no rollout state)"
	}
	return strings.ReplaceAll(s, "_", " ")
}
