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
// With -policy FILE every call is evaluated against that IAM policy first
// (e.g. the output of `ctjdeploy stage iam-policy`): a denied call gets the
// service's AccessDeniedException (docs/iam-on-the-stack.md).
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hackforla/ctjdeploy/internal/ecssim"
	"github.com/hackforla/ctjdeploy/internal/taskrun"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:5057", "loopback address to listen on")
	upstream := flag.String("upstream", "http://127.0.0.1:5056", "moto server URL")
	scenario := flag.String("scenario", string(ecssim.Success), fmt.Sprintf("rollout scenario: %v", ecssim.Scenarios))
	polls := flag.Int("polls", 2, "clock steps a rollout takes to end")
	step := flag.Duration("step", 150*time.Millisecond, "the model's clock step")
	useDocker := flag.Bool("docker", false, "run tasks on the Docker engine at DOCKER_HOST instead of emulating them")
	regUser := flag.String("registry-user", "AWS", "with -docker: registry user (password from $ECSSIM_REGISTRY_PASSWORD)")
	lbFlag := flag.String("lb", "", "with -docker: ADDR=CLUSTER/SERVICE:PORT, a load balancer on loopback ADDR in front of the service's newest running task's container PORT (503 when none runs)")
	policy := flag.String("policy", "", "an IAM policy document (JSON) every call is evaluated against: denied calls get AccessDeniedException (internal/ecssim/iam.go)")
	flag.Parse()

	host, _, err := net.SplitHostPort(*listen)
	if err != nil || !(host == "127.0.0.1" || host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1") {
		log.Fatalf("ecssim: -listen %q: listen on a loopback address only", *listen)
	}
	logger := log.New(os.Stderr, "", log.LstdFlags)
	o := ecssim.Options{Upstream: *upstream, Scenario: ecssim.Scenario(*scenario), Polls: *polls, Step: *step, Logf: logger.Printf}
	mode := fmt.Sprintf("ECS rollouts are EMULATED (scenario %s): no container runs", *scenario)
	if *useDocker {
		eng, err := taskrun.NewEngine(taskrun.EngineOptions{RegistryUser: *regUser, RegistryPassword: os.Getenv("ECSSIM_REGISTRY_PASSWORD"), Logf: logger.Printf})
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
	if *policy != "" {
		if err := sim.SetPolicyFile(*policy); err != nil {
			log.Fatalf("ecssim: -policy %s: %v", *policy, err)
		}
		mode += "; IAM enforced with the policy in " + *policy
	}

	if *lbFlag != "" {
		if err := loadBalancer(sim, *lbFlag, logger); err != nil {
			log.Fatalf("ecssim: -lb %q: %v", *lbFlag, err)
		}
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

// loadBalancer stands in for the service's load balancer (its target group
// routes to the service's running tasks): each connection to ADDR goes to
// the container PORT of the newest RUNNING task of CLUSTER/SERVICE; with no
// task running it answers 503, as an ALB with no healthy target does.
func loadBalancer(sim *ecssim.Sim, spec string, logger *log.Logger) error {
	addr, target, ok := strings.Cut(spec, "=")
	cs, portStr, ok2 := strings.Cut(target, ":")
	cluster, service, ok3 := strings.Cut(cs, "/")
	port, err := strconv.Atoi(portStr)
	if !ok || !ok2 || !ok3 || err != nil {
		return fmt.Errorf("want ADDR=CLUSTER/SERVICE:PORT")
	}
	if h, _, err := net.SplitHostPort(addr); err != nil || !(h == "localhost" || net.ParseIP(h).IsLoopback()) {
		return fmt.Errorf("listen on a loopback address only")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	logger.Printf("ecssim: load balancer on %s → %s/%s container port %d", ln.Addr(), cluster, service, port)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, hp := sim.RunningTaskPort(cluster, service, port) // published on 127.0.0.1
				if hp == 0 {
					_, _ = io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
					return
				}
				b, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(hp)), 5*time.Second)
				if err != nil {
					_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
					return
				}
				defer b.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return nil
}
