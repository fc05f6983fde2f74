package ecsread

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

type fake struct {
	out *ecs.DescribeServicesOutput
	err error
}

func (f fake) DescribeServices(context.Context, *ecs.DescribeServicesInput, ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error) {
	return f.out, f.err
}

func (f fake) DescribeTaskDefinition(context.Context, *ecs.DescribeTaskDefinitionInput, ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "no"}
}

func svc(name, status string) ecstypes.Service {
	return ecstypes.Service{ServiceName: aws.String(name), Status: aws.String(status), ServiceArn: aws.String("arn:aws:ecs:us-west-2:1:service/c/" + name)}
}

func TestDescribeService(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		f      fake
		found  bool
		reason string
	}{
		{"by name, not the first ACTIVE one", fake{out: &ecs.DescribeServicesOutput{Services: []ecstypes.Service{svc("other", "ACTIVE"), svc("web", "ACTIVE")}}}, true, ""},
		{"missing", fake{out: &ecs.DescribeServicesOutput{Failures: []ecstypes.Failure{{Reason: aws.String("MISSING")}}}}, false, "MISSING"},
		{"inactive", fake{out: &ecs.DescribeServicesOutput{Services: []ecstypes.Service{svc("web", "INACTIVE")}}}, false, "status INACTIVE"},
		{"only another service", fake{out: &ecs.DescribeServicesOutput{Services: []ecstypes.Service{svc("other", "ACTIVE")}}}, false, ""},
		{"no cluster", fake{err: &ecstypes.ClusterNotFoundException{Message: aws.String("Cluster not found.")}}, false, "the cluster does not exist"},
	} {
		s, err := DescribeService(ctx, c.f, "c", "web")
		if c.found {
			if err != nil || aws.ToString(s.ServiceName) != "web" {
				t.Errorf("%s: got %v, %v", c.name, s, err)
			}
			continue
		}
		var nf *ServiceNotFoundError
		if !errors.As(err, &nf) || nf.Reason != c.reason || exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), `service "web" not found in cluster "c"`) {
			t.Errorf("%s: err %v (exit %d)", c.name, err, exitcode.Of(err))
		}
	}
	_, err := DescribeService(ctx, fake{err: &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "no"}}, "c", "web")
	var ae smithy.APIError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "access denied") || !strings.Contains(err.Error(), "ecs:DescribeServices") {
		t.Errorf("access denied: %v", err)
	}
	if _, _, err := DescribeTaskDefinition(ctx, fake{}, "arn:aws:ecs:us-west-2:1:task-definition/fam:3"); !errors.As(err, &ae) || !strings.Contains(err.Error(), "fam:3") {
		t.Errorf("task definition: %v", err)
	}
}

func TestShorten(t *testing.T) {
	const arn = "arn:aws:ecs:us-west-2:123456789012:task-definition/fam:3"
	if ShortARN(arn) != "fam:3" || ShortARN("fam:3") != "fam:3" || ShortARN("odd") != "odd" {
		t.Error("ShortARN")
	}
	if f, n, ok := FamilyOf(arn); f != "fam" || n != 3 || !ok {
		t.Error("FamilyOf")
	}
	if Family(arn) != "fam" || Family("fam") != "fam" {
		t.Error("Family")
	}
	if ID("arn:aws:ecs:us-west-2:1:task/c/abc123") != "abc123" || ID("abc") != "abc" {
		t.Error("ID")
	}
	sha := strings.Repeat("ab12", 10)
	if ShortCommit(sha) != sha[:12] || ShortCommit("v1.2") != "v1.2" || ShortCommit(strings.Repeat("z", 40)) != strings.Repeat("z", 40) {
		t.Error("ShortCommit")
	}
}
