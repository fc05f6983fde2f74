// Command ecssim runs the ECS rollout simulator in front of a moto server,
// for `make demo`:
//
//	go run ./internal/ecssim/cmd/ecssim -listen 127.0.0.1:5057 -upstream http://127.0.0.1:5056 -scenario success
//
// Point the tool at it with AWS_ENDPOINT_URL=http://127.0.0.1:5057: ECS, ECR
// and STS calls all go through it to moto; the rollout calls
// (UpdateService, DescribeServices, ListTasks, DescribeTasks and the service
// deployment API) are answered from its model, every task EMULATED.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hackforla/ctjdeploy/internal/ecssim"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:5057", "loopback address to listen on")
	upstream := flag.String("upstream", "http://127.0.0.1:5056", "moto server URL")
	scenario := flag.String("scenario", string(ecssim.Success), fmt.Sprintf("rollout scenario: %v", ecssim.Scenarios))
	polls := flag.Int("polls", 2, "clock steps a rollout takes to end")
	step := flag.Duration("step", 150*time.Millisecond, "the model's clock step")
	flag.Parse()

	host, _, err := net.SplitHostPort(*listen)
	if err != nil || !(host == "127.0.0.1" || host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1") {
		log.Fatalf("ecssim: -listen %q: listen on a loopback address only", *listen)
	}
	logger := log.New(os.Stderr, "", log.LstdFlags)
	sim, err := ecssim.New(ecssim.Options{Upstream: *upstream, Scenario: ecssim.Scenario(*scenario), Polls: *polls, Step: *step, Logf: logger.Printf})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("ecssim: %v", err)
	}
	logger.Printf("ecssim: listening on http://%s, forwarding to %s; ECS rollouts are EMULATED (scenario %s): no container runs", ln.Addr(), *upstream, *scenario)
	log.Fatal(http.Serve(ln, sim))
}
