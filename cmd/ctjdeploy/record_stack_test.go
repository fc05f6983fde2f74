package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/hackforla/ctjdeploy/internal/ecssim"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

var record = flag.Bool("record", false, "record testdata/events/*.jsonl from runs on the stack (TestRecordGoldenRuns)")

// recordedRepo is the folder name the recordings show for the example's
// copy (the invalid run's error names its config file).
const recordedRepo = "/home/ci/civic-tech-jobs"

// TestRecordGoldenRuns plays the seven runs behind the golden outputs on
// the stack with today's code, recording each one's events
// (CTJDEPLOY_RECORD_EVENTS) into testdata/events, with the example's own
// names. Then rewrite the goldens from them:
//
//	go test -run TestRecordGoldenRuns ./cmd/ctjdeploy/ -record
//	go test -run 'TestGolden|TestTextSaysEachThingOnce' ./cmd/ctjdeploy/ -update
//
// Without -record it is skipped: it rewrites files of the repository.
func TestRecordGoldenRuns(t *testing.T) {
	if !*record {
		t.Skip("rewrites testdata/events: run with -record")
	}
	st := teststack.Start(t)
	st.Setenv(t)
	n := teststack.NewNames(t)
	st.CreateResources(t, n)
	st.SetMaximumPercent(t, n, 100)
	sim, err := ecssim.New(ecssim.Options{Upstream: st.MotoEndpoint, Scenario: ecssim.Success, Polls: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("GITHUB_ACTIONS", "")

	// The example as a repository of its own, with this run's names.
	dir, tmpl := exampleCopy(t, st, n)
	if err := os.WriteFile(filepath.Join(dir, "stage", "ecs-task-def.json"), []byte(tmpl), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "ctjdeploy.yaml")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer(
		"cluster: "+teststack.ExampleCluster, "cluster: "+n.Cluster,
		"service: "+teststack.ExampleService, "service: "+n.Service,
		"repository: "+teststack.ExampleBackendRepo, "repository: "+n.BackendRepo,
		"repository: "+teststack.ExampleFrontendRepo, "repository: "+n.FrontendRepo,
		"registry: 127.0.0.1:5055", "registry: "+st.Registry,
	).Replace(string(b))
	for _, want := range []string{n.Cluster, n.Service, n.BackendRepo, n.FrontendRepo} {
		if !strings.Contains(cfg, want) {
			t.Fatalf("the example's ctjdeploy.yaml changed shape: %s not set\n%s", want, cfg)
		}
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("environments:\n  stage:\n    images: [django: {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, dir, "git init -q -b main && git add -A && git commit -qm example")
	commit := func(what string) string {
		gitIn(t, dir, `echo "<!-- `+what+` -->" >> frontend/public/index.html && git commit -qam "`+what+`"`)
		return gitIn(t, dir, "git rev-parse HEAD")
	}

	// quiet waits until the service's newest event is over 2 s old, as when
	// a person's next deploy comes well after the last one: a rollout
	// shows the service's events from a second before its update on, and
	// back to back, the previous rollout's last events would be among them.
	api := ecs.NewFromConfig(st.AWSConfig(t), func(o *ecs.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	quiet := func() {
		t.Helper()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); <-tick.C {
			out, err := api.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String(n.Cluster), Services: []string{n.Service}})
			if err != nil {
				t.Fatal(err)
			}
			var newest time.Time
			for _, s := range out.Services {
				for _, e := range s.Events {
					if at := aws.ToTime(e.CreatedAt); at.After(newest) {
						newest = at
					}
				}
			}
			if time.Since(newest) > 2*time.Second {
				return
			}
		}
		t.Fatal("the service's events did not settle in 30 s")
	}

	out := filepath.Join(st.RepoRoot, "cmd", "ctjdeploy", "testdata", "events")
	play := func(name string, want int, args ...string) {
		t.Helper()
		quiet() // (a failed rollback's tasks never settle: it plays last)
		f := filepath.Join(t.TempDir(), name+".jsonl")
		t.Setenv(recordEnv, f)
		defer os.Unsetenv(recordEnv)
		var errb strings.Builder
		if code := run(args, io.Discard, &errb); code != want {
			t.Fatalf("%s: %v exited %d, want %d\n%s", name, args, code, want, errb.String())
		}
		if name == "" {
			return
		}
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) && want == exitcode.Invalid {
			// Refused before any reporter exists (the config): the
			// recording is the end line alone, with the error printed.
			msg := strings.TrimPrefix(strings.TrimSpace(errb.String()), "ctjdeploy: ")
			b, err = json.Marshal(recordedEvent{End: true, Code: want, Error: msg})
			b = append(b, '\n')
		}
		if err != nil {
			t.Fatal(err)
		}
		// The example's own names and folder, as a person's run shows them.
		s := strings.NewReplacer(n.Prefix, "", dir, recordedRepo).Replace(string(b))
		if err := os.WriteFile(filepath.Join(out, name+".jsonl"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: exit %d, %d bytes", name, want, len(s))
	}
	stage := []string{"--config", cfgPath, "stage"}

	play("invalid", exitcode.Invalid, "--config", filepath.Join(dir, "bad.yaml"), "stage")
	play("", exitcode.OK, stage...) // the first deploy: a commit of ctjdeploy's own is live
	commit("a change to the front page")
	play("dry-run", exitcode.OK, append(stage, "--dry-run")...)
	play("deploy", exitcode.OK, stage...)
	play("unchanged", exitcode.OK, stage...)
	gitIn(t, dir, "git checkout -q HEAD~1")
	play("refused", exitcode.Refused, stage...)
	gitIn(t, dir, "git checkout -q main")
	commit("a commit ECS rolls back")
	sim.SetScenario(n.Cluster, n.Service, ecssim.Rollback)
	play("rolled-back", exitcode.RolledBack, stage...)
	commit("a commit whose rollback fails too")
	sim.SetScenario(n.Cluster, n.Service, ecssim.RollbackFails)
	play("not-recovered", exitcode.NotRecovered, stage...)
}
