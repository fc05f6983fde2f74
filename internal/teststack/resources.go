package teststack

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/ecsread"
)

// InitialTag is the image tag of the task definition revision that
// CreateResources (and scripts/stack-init.py) register first: a revision
// ctjdeploy did not register, as on a real stage before its first deploy.
const InitialTag = "initial"

// ExampleTaskDefinition is a three-container stage task definition (next,
// django, pgdb with postgres:18 on a persistent docker volume), like the one
// scripts/stack-init.py registers, with images REGISTRY/REPO:tag.
func ExampleTaskDefinition(n Names, registry, tag string) *ecs.RegisterTaskDefinitionInput {
	ssm := "arn:aws:ssm:" + Region + ":" + Account + ":parameter/civic-tech-jobs"
	logs := func() *ecstypes.LogConfiguration {
		return &ecstypes.LogConfiguration{
			LogDriver: ecstypes.LogDriverAwslogs,
			Options: map[string]string{
				"awslogs-group":         "/ecs/" + n.Family,
				"awslogs-region":        Region,
				"awslogs-stream-prefix": "ecs",
			},
		}
	}
	kv := func(pairs ...string) []ecstypes.KeyValuePair {
		var out []ecstypes.KeyValuePair
		for i := 0; i+1 < len(pairs); i += 2 {
			out = append(out, ecstypes.KeyValuePair{Name: aws.String(pairs[i]), Value: aws.String(pairs[i+1])})
		}
		return out
	}
	port := func(p int32) []ecstypes.PortMapping {
		return []ecstypes.PortMapping{{ContainerPort: aws.Int32(p), Protocol: ecstypes.TransportProtocolTcp}}
	}
	return &ecs.RegisterTaskDefinitionInput{
		Family:                  aws.String(n.Family),
		NetworkMode:             ecstypes.NetworkModeAwsvpc,
		RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityEc2},
		Cpu:                     aws.String("1024"),
		Memory:                  aws.String("1536"),
		ExecutionRoleArn:        aws.String("arn:aws:iam::" + Account + ":role/" + n.Family + "-execution"),
		TaskRoleArn:             aws.String("arn:aws:iam::" + Account + ":role/" + n.Family + "-task"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{
			{
				Name:              aws.String("next"),
				Image:             aws.String(registry + "/" + n.FrontendRepo + ":" + tag),
				Essential:         aws.Bool(true),
				MemoryReservation: aws.Int32(256),
				PortMappings:      port(3000),
				Environment:       kv("NODE_ENV", "production", "PORT", "3000"),
				LogConfiguration:  logs(),
			},
			{
				Name:              aws.String("django"),
				Image:             aws.String(registry + "/" + n.BackendRepo + ":" + tag),
				Essential:         aws.Bool(true),
				MemoryReservation: aws.Int32(512),
				PortMappings:      port(8000),
				Environment: kv(
					"SQL_ENGINE", "django.db.backends.postgresql",
					"SQL_HOST", "localhost",
					"SQL_PORT", "5432",
					"SQL_DATABASE", "civictechjobs",
					"SQL_USER", "civictechjobs_owner",
					"DJANGO_ALLOWED_HOSTS", "stage.civictechjobs.org localhost",
					"DEBUG", "false",
				),
				Secrets: []ecstypes.Secret{
					{Name: aws.String("SQL_PASSWORD"), ValueFrom: aws.String(ssm + "/fullstack-stage-db-owner-password")},
					{Name: aws.String("SECRET_KEY"), ValueFrom: aws.String(ssm + "/fullstack-stage-django-secret-key")},
				},
				DependsOn:        []ecstypes.ContainerDependency{{ContainerName: aws.String("pgdb"), Condition: ecstypes.ContainerConditionStart}},
				LogConfiguration: logs(),
			},
			{
				Name:              aws.String("pgdb"),
				Image:             aws.String("postgres:18"),
				Essential:         aws.Bool(true),
				MemoryReservation: aws.Int32(512),
				PortMappings:      port(5432),
				Environment:       kv("POSTGRES_DB", "civictechjobs", "POSTGRES_USER", "civictechjobs_owner"),
				Secrets: []ecstypes.Secret{
					{Name: aws.String("POSTGRES_PASSWORD"), ValueFrom: aws.String(ssm + "/fullstack-stage-db-owner-password")},
				},
				MountPoints: []ecstypes.MountPoint{
					{SourceVolume: aws.String("pgdata"), ContainerPath: aws.String("/var/lib/postgresql"), ReadOnly: aws.Bool(false)},
				},
				LogConfiguration: logs(),
			},
		},
		Volumes: []ecstypes.Volume{{
			Name: aws.String("pgdata"),
			DockerVolumeConfiguration: &ecstypes.DockerVolumeConfiguration{
				Scope:         ecstypes.ScopeShared,
				Autoprovision: aws.Bool(true),
				Driver:        aws.String("local"),
			},
		}},
	}
}

// CreateResources makes the cluster, ECR repositories, task definition and
// service of n in moto, each only if absent (so it is idempotent), the same
// way scripts/stack-init.py does for the example: the service runs the
// family's latest revision with launch type EC2, desired count 1 and
// deployment configuration 0% / 200%.
func (s *Stack) CreateResources(t testing.TB, n Names) Resources {
	t.Helper()
	r, err := s.createResources(context.Background(), n)
	if err != nil {
		t.Fatalf("creating %s resources in moto: %v", n.Prefix, err)
	}
	return r
}

func (s *Stack) createResources(ctx context.Context, n Names) (Resources, error) {
	cfg, err := s.awsConfig(ctx)
	if err != nil {
		return Resources{}, err
	}
	ecsc, ecrc := ecs.NewFromConfig(cfg), ecr.NewFromConfig(cfg)
	r := Resources{RepositoryURIs: map[string]string{}}
	if err := ensureCluster(ctx, ecsc, n, &r); err != nil {
		return r, err
	}
	for _, repo := range []string{n.BackendRepo, n.FrontendRepo} {
		uri, err := ensureRepository(ctx, ecrc, repo, "")
		if err != nil {
			return r, err
		}
		r.RepositoryURIs[repo] = uri
	}
	if err := s.ensureTaskDefinition(ctx, ecsc, n, &r); err != nil {
		return r, err
	}
	svc, err := ensureService(ctx, ecsc, n, r.TaskDefinitionArn)
	if err != nil {
		return r, err
	}
	r.ServiceArn = aws.ToString(svc.ServiceArn)
	r.TaskDefinitionArn = aws.ToString(svc.TaskDefinition)
	return r, nil
}

// ensureCluster finds n's cluster ACTIVE at moto, or creates it.
func ensureCluster(ctx context.Context, ecsc *ecs.Client, n Names, r *Resources) error {
	dc, err := ecsc.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{n.Cluster}})
	if err != nil {
		return fmt.Errorf("DescribeClusters: %w", err)
	}
	for _, c := range dc.Clusters {
		if aws.ToString(c.Status) == "ACTIVE" {
			r.ClusterArn = aws.ToString(c.ClusterArn)
		}
	}
	if r.ClusterArn == "" {
		cc, err := ecsc.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(n.Cluster)})
		if err != nil {
			return fmt.Errorf("CreateCluster: %w", err)
		}
		r.ClusterArn = aws.ToString(cc.Cluster.ClusterArn)
	}

	return nil
}

// ensureTaskDefinition finds the newest ACTIVE revision of n's family, or
// registers the example's.
func (s *Stack) ensureTaskDefinition(ctx context.Context, ecsc *ecs.Client, n Names, r *Resources) error {
	lt, err := ecsc.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{
		FamilyPrefix: aws.String(n.Family),
		Status:       ecstypes.TaskDefinitionStatusActive,
		Sort:         ecstypes.SortOrderDesc,
	})
	if err != nil {
		return fmt.Errorf("ListTaskDefinitions: %w", err)
	}
	for _, arn := range lt.TaskDefinitionArns {
		// familyPrefix matches prefixes: keep this exact family only.
		if fam, _, ok := ecsread.FamilyOf(arn); ok && fam == n.Family {
			r.TaskDefinitionArn = arn
			break
		}
	}
	if r.TaskDefinitionArn == "" {
		rt, err := ecsc.RegisterTaskDefinition(ctx, ExampleTaskDefinition(n, s.Registry, InitialTag))
		if err != nil {
			return fmt.Errorf("RegisterTaskDefinition: %w", err)
		}
		r.TaskDefinitionArn = aws.ToString(rt.TaskDefinition.TaskDefinitionArn)
	}
	return nil
}

// ensureService finds n's service ACTIVE at moto, or creates it on td,
// with the stage's deployment configuration.
func ensureService(ctx context.Context, ecsc *ecs.Client, n Names, td string) (*ecstypes.Service, error) {
	dcfg := func() *ecstypes.DeploymentConfiguration {
		return &ecstypes.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(0), MaximumPercent: aws.Int32(200)}
	}
	ds, err := ecsc.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(n.Cluster), Services: []string{n.Service}})
	if err != nil {
		return nil, fmt.Errorf("DescribeServices: %w", err)
	}
	var svc *ecstypes.Service
	for i := range ds.Services {
		if aws.ToString(ds.Services[i].Status) == "ACTIVE" {
			svc = &ds.Services[i]
		}
	}
	if svc == nil {
		cs, err := ecsc.CreateService(ctx, &ecs.CreateServiceInput{
			Cluster:                 aws.String(n.Cluster),
			ServiceName:             aws.String(n.Service),
			TaskDefinition:          aws.String(td),
			DesiredCount:            aws.Int32(1),
			LaunchType:              ecstypes.LaunchTypeEc2,
			DeploymentConfiguration: dcfg(),
		})
		if err != nil {
			// A create retried after a lost answer (moto under load) fails
			// although the service is there: look before giving up.
			ds, derr := ecsc.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(n.Cluster), Services: []string{n.Service}})
			if derr != nil || len(ds.Services) == 0 || aws.ToString(ds.Services[0].Status) != "ACTIVE" {
				return nil, fmt.Errorf("CreateService: %w", err)
			}
			svc = &ds.Services[0]
		} else {
			svc = cs.Service
		}
	}
	if svc.DeploymentConfiguration == nil {
		// moto (5.2) drops deploymentConfiguration on CreateService but
		// keeps it from UpdateService: set it there, as the real stage has it.
		us, err := ecsc.UpdateService(ctx, &ecs.UpdateServiceInput{
			Cluster: aws.String(n.Cluster), Service: aws.String(n.Service), DeploymentConfiguration: dcfg(),
		})
		if err != nil {
			return nil, fmt.Errorf("UpdateService (deployment configuration): %w", err)
		}
		svc = us.Service
	}
	return svc, nil
}

// CreateRepository creates an ECR repository at moto for a test (or finds it
// there).
func (s *Stack) CreateRepository(t testing.TB, name string, mut ecrtypes.ImageTagMutability) {
	t.Helper()
	if _, err := ensureRepository(context.Background(), s.ECR(t), name, mut); err != nil {
		t.Fatalf("creating ECR repository %s at moto: %v", name, err)
	}
}

// ensureRepository returns the URI of repository name, creating it when
// absent. Names are unique per test, so "already exists" on create can only
// be this create retried by the SDK after a lost answer (moto under load):
// the repository is there.
func ensureRepository(ctx context.Context, ecrc *ecr.Client, name string, mut ecrtypes.ImageTagMutability) (string, error) {
	describe := func() (string, error) {
		dr, err := ecrc.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{name}})
		if err != nil {
			return "", err
		}
		if len(dr.Repositories) == 0 {
			return "", &ecrtypes.RepositoryNotFoundException{Message: aws.String(name)}
		}
		return aws.ToString(dr.Repositories[0].RepositoryUri), nil
	}
	uri, err := describe()
	var nf *ecrtypes.RepositoryNotFoundException
	if err == nil || !errors.As(err, &nf) {
		if err != nil {
			return "", fmt.Errorf("DescribeRepositories %s: %w", name, err)
		}
		return uri, nil
	}
	cr, err := ecrc.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(name), ImageTagMutability: mut})
	var exists *ecrtypes.RepositoryAlreadyExistsException
	switch {
	case errors.As(err, &exists):
		if uri, derr := describe(); derr == nil {
			return uri, nil
		}
		return "", fmt.Errorf("CreateRepository %s: %w", name, err)
	case err != nil:
		return "", fmt.Errorf("CreateRepository %s: %w", name, err)
	}
	return aws.ToString(cr.Repository.RepositoryUri), nil
}

// SetMaximumPercent sets the test service's deployment configuration to
// minimum 0% / maximum max% (moto keeps it from UpdateService).
func (s *Stack) SetMaximumPercent(t testing.TB, n Names, max int32) {
	t.Helper()
	if _, err := s.ECS(t).UpdateService(context.Background(), &ecs.UpdateServiceInput{
		Cluster: aws.String(n.Cluster), Service: aws.String(n.Service),
		DeploymentConfiguration: &ecstypes.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(0), MaximumPercent: aws.Int32(max)},
	}); err != nil {
		t.Fatalf("setting the deployment configuration of %s: %v", n.Service, err)
	}
}
