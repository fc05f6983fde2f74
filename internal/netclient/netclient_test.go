package netclient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// BlackHole listens on loopback, accepts connections and never answers.
// It returns the listener's address.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never read nor written
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestAWSCallToBlackHoleEndsWithinTimeout(t *testing.T) {
	addr := blackHole(t)
	to := Timeouts{Dial: time.Second, TLS: time.Second, ResponseHeader: 300 * time.Millisecond, Total: 2 * time.Second}
	cfg := aws.Config{Region: "us-west-2", Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""),
		HTTPClient: AWSHTTPClient(to), Retryer: AWSRetryer(2), BaseEndpoint: aws.String("http://" + addr)}
	start := time.Now()
	_, err := ecs.NewFromConfig(cfg).DescribeServices(context.Background(), &ecs.DescribeServicesInput{Services: []string{"s"}})
	el := time.Since(start)
	if err == nil {
		t.Fatal("a call to a black-holed endpoint succeeded")
	}
	// Two attempts of 300 ms each plus at most one backoff (≤ 20 s cap, but
	// the first backoff is under a second).
	if el > 5*time.Second {
		t.Errorf("the call took %s", el)
	}
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "DescribeServices") || !strings.Contains(err.Error(), "timeout awaiting response headers") {
		t.Errorf("the error does not name the endpoint, call and timeout: %v", err)
	}
}

func TestRegistryTransportBlackHole(t *testing.T) {
	addr := blackHole(t)
	tr := RegistryTransport(http.DefaultTransport.(*http.Transport), Timeouts{Dial: time.Second, TLS: time.Second, ResponseHeader: 300 * time.Millisecond})
	start := time.Now()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/", nil)
	_, err := (&http.Client{Transport: tr}).Do(req)
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
	if RegistryRetryable(err) {
		t.Errorf("a response-header timeout is retried: %v", err)
	}
}

func TestRegistryRetryable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	_, err = http.Get("http://" + addr + "/v2/")
	if err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("want connection refused, got %v", err)
	}
	if !RegistryRetryable(err) {
		t.Errorf("a refused connection is not retried: %v", err)
	}
	if RegistryRetryable(errors.New("manifest invalid")) || RegistryRetryable(nil) {
		t.Error("a plain error is retried")
	}
}
