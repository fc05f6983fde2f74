package inspect

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

func stackEnv(s *teststack.Stack, n teststack.Names) *config.Environment {
	return &config.Environment{
		Name: "stage", Region: teststack.Region, Cluster: n.Cluster, Service: n.Service, Registry: s.Registry,
		Images: map[string]*config.Image{
			"django": {Name: "django", Repository: n.BackendRepo},
			"next":   {Name: "next", Repository: n.FrontendRepo},
		},
	}
}

// TestStackOutsideRevision: a service whose live revision was registered
// outside ctjdeploy (as teststack, like terraform apply, registers it), then
// a ctjdeploy-tagged revision made live.
func TestStackOutsideRevision(t *testing.T) {
	s := teststack.Start(t)
	n := teststack.NewNames(t)
	res := s.CreateResources(t, n)
	ctx := context.Background()
	client := s.ECS(t)
	api := API{ECS: client, ECR: s.ECR(t)}
	env := stackEnv(s, n)

	st, err := GetStatus(ctx, api, env)
	if err != nil {
		t.Fatal(err)
	}
	if st.Live.ARN != res.TaskDefinitionArn || st.Live.ByCtjdeploy || len(st.Drift) == 0 || !strings.Contains(st.Drift[0], "outside ctjdeploy") {
		t.Fatalf("status of an outside revision: live %s by ctjdeploy %v, drift %q", st.Live.ARN, st.Live.ByCtjdeploy, st.Drift)
	}
	if st.Desired != 1 || st.ServiceStatus != "ACTIVE" {
		t.Errorf("service counts: %+v", st)
	}

	// A ctjdeploy deploy: register a tagged, digest-pinned revision and point the service at it.
	in := teststack.ExampleTaskDefinition(n, s.Registry, "x")
	in.ContainerDefinitions[0].Image = aws.String(s.Registry + "/" + n.FrontendRepo + "@" + dgA)
	in.ContainerDefinitions[1].Image = aws.String(s.Registry + "/" + n.BackendRepo + "@" + dgB)
	in.Tags = []ecstypes.Tag{
		{Key: aws.String(ecsread.TagCommit), Value: aws.String(sha1)},
		{Key: aws.String(ecsread.TagEnv), Value: aws.String("stage")},
		{Key: aws.String(ecsread.TagPrevious), Value: aws.String(res.TaskDefinitionArn)},
	}
	reg, err := client.RegisterTaskDefinition(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(reg.TaskDefinition.TaskDefinitionArn)
	dropRetriedRegistrations(t, client, n.Family, res.TaskDefinitionArn, arn)
	if _, err := client.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(n.Cluster), Service: aws.String(n.Service), TaskDefinition: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	st, err = GetStatus(ctx, api, env)
	if err != nil {
		t.Fatal(err)
	}
	if st.Live.ARN != arn || st.Live.Commit != sha1 || st.Live.Previous != res.TaskDefinitionArn || st.Drift != nil {
		t.Fatalf("status after a ctjdeploy revision: %+v drift %q", st.Live, st.Drift)
	}
	if d := st.Live.Digests(); d["django"] != dgB || d["next"] != dgA {
		t.Errorf("digests: %v", d)
	}
	// moto keeps the service's first deployment on UpdateService (it never
	// starts a new one): only its presence is asserted here.
	if st.Deployment == nil || st.Deployment.Status != "PRIMARY" {
		t.Errorf("primary deployment: %+v", st.Deployment)
	}

	h, err := GetHistory(ctx, client, env, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Revisions) != 2 || h.Revisions[0].ARN != arn || !h.Revisions[0].Live || !h.Revisions[0].ByCtjdeploy ||
		h.Revisions[1].ARN != res.TaskDefinitionArn || h.Revisions[1].Live || h.Revisions[1].ByCtjdeploy {
		t.Fatalf("history: %+v", h.Revisions)
	}
	h, err = GetHistory(ctx, client, env, 1)
	if err != nil || len(h.Revisions) != 1 || h.Revisions[0].ARN != arn {
		t.Fatalf("history limit 1: %v %+v", err, h.Revisions)
	}
}

func TestStackServiceNotFound(t *testing.T) {
	s := teststack.Start(t)
	n := teststack.NewNames(t)
	s.CreateResources(t, n)
	env := stackEnv(s, n)
	env.Service = "civic-tech-jobs-fs-stage"
	_, err := GetStatus(context.Background(), API{ECS: s.ECS(t)}, env)
	var nf *ecsread.ServiceNotFoundError
	if !errors.As(err, &nf) || exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), `service "civic-tech-jobs-fs-stage" not found in cluster "`+n.Cluster) ||
		!strings.Contains(err.Error(), "environments.stage") {
		t.Fatalf("err = %v", err)
	}
	env = stackEnv(s, n)
	env.Cluster = n.Prefix + "nope"
	_, err = GetHistory(context.Background(), s.ECS(t), env, 5)
	if !errors.As(err, &nf) {
		t.Fatalf("missing cluster: err = %v", err)
	}
}

// dropRetriedRegistrations deregisters the revisions of family other than
// keep: a RegisterTaskDefinition the SDK retried after a lost answer (seen on
// a loaded machine) registers the definition twice, and history would list
// the extra one.
func dropRetriedRegistrations(t *testing.T, client *ecs.Client, family string, keep ...string) {
	t.Helper()
	out, err := client.ListTaskDefinitions(context.Background(), &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(family), Status: ecstypes.TaskDefinitionStatusActive})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range out.TaskDefinitionArns {
		if !slices.Contains(keep, a) {
			t.Logf("deregistering %s, registered twice by a retried call", a)
			if _, err := client.DeregisterTaskDefinition(context.Background(), &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(a)}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
