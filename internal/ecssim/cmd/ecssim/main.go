// Command ecssim runs the ECS rollout simulator in front of a moto server,
// for `make demo`:
//
//	go run ./internal/ecssim/cmd/ecssim -listen 127.0.0.1:5057 -upstream http://127.0.0.1:5056 -scenario success
//
// Point the tool at it with AWS_ENDPOINT_URL=http://127.0.0.1:5057: ECS, ECR
// and STS calls all go through it to moto; the rollout calls
// (UpdateService, DescribeServices, ListTasks, DescribeTasks and the service
// deployment API) are answered from its model, every task EMULATED; with
// -docker the tasks run on the Docker engine at DOCKER_HOST instead (images
// pulled from the loopback registry as -registry-user with the password in
// $ECSSIM_REGISTRY_PASSWORD), and their real exits decide each rollout.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hackforla/ctjdeploy/internal/ecssim"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:5057", "loopback address to listen on")
	upstream := flag.String("upstream", "http://127.0.0.1:5056", "moto server URL")
	scenario := flag.String("scenario", string(ecssim.Success), fmt.Sprintf("rollout scenario: %v", ecssim.Scenarios))
	polls := flag.Int("polls", 2, "clock steps a rollout takes to end")
	step := flag.Duration("step", 150*time.Millisecond, "the model's clock step")
	useDocker := flag.Bool("docker", false, "run tasks on the Docker engine at DOCKER_HOST instead of emulating them")
	regUser := flag.String("registry-user", "AWS", "with -docker: registry user (password from $ECSSIM_REGISTRY_PASSWORD)")
	flag.Parse()

	host, _, err := net.SplitHostPort(*listen)
	if err != nil || !(host == "127.0.0.1" || host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1") {
		log.Fatalf("ecssim: -listen %q: listen on a loopback address only", *listen)
	}
	logger := log.New(os.Stderr, "", log.LstdFlags)
	o := ecssim.Options{Upstream: *upstream, Scenario: ecssim.Scenario(*scenario), Polls: *polls, Step: *step, Logf: logger.Printf}
	mode := fmt.Sprintf("ECS rollouts are EMULATED (scenario %s): no container runs", *scenario)
	if *useDocker {
		eng, err := ecssim.NewEngine(ecssim.EngineOptions{RegistryUser: *regUser, RegistryPassword: os.Getenv("ECSSIM_REGISTRY_PASSWORD"), Logf: logger.Printf})
		if err != nil {
			log.Fatalf("ecssim: -docker: %v (is the stack up and DOCKER_HOST set?)", err)
		}
		o.Engine = eng
		mode = "tasks run on Docker at " + os.Getenv("DOCKER_HOST")
	}
	sim, err := ecssim.New(o)
	if err != nil {
		log.Fatal(err)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("ecssim: %v", err)
	}
	logger.Printf("ecssim: listening on http://%s, forwarding to %s; %s", ln.Addr(), *upstream, mode)
	// SIGINT/SIGTERM (the demo's trap) stop the server and the tasks it
	// started on Docker, so no container outlives the simulator.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- http.Serve(ln, sim) }()
	select {
	case s := <-sigs:
		logger.Printf("ecssim: %s: stopping", s)
		ln.Close()
		sim.Close()
	case err := <-done:
		sim.Close()
		log.Fatalf("ecssim: %v", err)
	}
}
