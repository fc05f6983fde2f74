package ecssim

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"
)

// sdkClient is the real ECS client pointed at the simulator, so every answer
// goes through the SDK's own deserializer. No retries: each call is one.
func sdkClient(t *testing.T, sim *Sim) *ecs.Client {
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return ecs.New(ecs.Options{Region: "us-west-2", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		Retryer:     aws.NopRetryer{}})
}

func TestThrottleIsAThrottleToTheSDK(t *testing.T) {
	t.Parallel()
	sim, err := New(Options{Upstream: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	sim.SetFaults("c", "s", Faults{Throttle: 1, ThrottleOps: []string{"DescribeServices"}})
	_, err = sdkClient(t, sim).DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: []string{"s"}})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ThrottlingException" {
		t.Fatalf("err = %v, want ThrottlingException", err)
	}
	if !retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool() {
		t.Fatalf("the SDK does not classify %v as a throttle", err)
	}
}

func TestCodeDeployRefusesTaskDefinitionUpdate(t *testing.T) {
	t.Parallel()
	sim, err := New(Options{Upstream: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	sim.Configure("c", "s", ServiceConfig{Controller: "CODE_DEPLOY"})
	_, err = sdkClient(t, sim).UpdateService(context.Background(), &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), TaskDefinition: aws.String("web:2")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterException" || ae.ErrorMessage() != "Unable to update task definition on services with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment." {
		t.Fatalf("err = %v, want the CODE_DEPLOY InvalidParameterException", err)
	}
}
