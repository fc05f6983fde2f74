package main

// Real processes: two ctjdeploy binaries racing for one service, and a
// binary stopped the way a CI runner stops a cancelled job (SIGTERM, then
// SIGKILL ten seconds later), against the local stack.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/lease"
	"github.com/hackforla/ctjdeploy/internal/teststack"
)

// ctjdeployBinary is this test binary, which runs as ctjdeploy's main()
// with CTJDEPLOY_TEST_AS_MAIN=1 (main_test.go): the same code as the built
// binary, without a second build.
func ctjdeployBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return self
}

// proc is a running ctjdeploy process whose stderr is watched line by line.
type proc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	mu     sync.Mutex
	stderr bytes.Buffer
	lines  chan string
	done   chan struct{}
	code   int
}

func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{lines: make(chan string, 1000), done: make(chan struct{})}
	p.cmd = exec.Command(ctjdeployBinary(t), args...)
	p.cmd.Env = append(os.Environ(), asMainEnv+"=1", "NO_COLOR=1", "GITHUB_ACTIONS=")
	p.cmd.Stdout = &p.stdout
	pr, pw := io.Pipe()
	p.cmd.Stderr = pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		err := p.cmd.Wait()
		pw.Close()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee) && ee.ExitCode() >= 0:
			p.code = ee.ExitCode()
		default:
			p.code = -1 // killed by a signal
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// pushingRE is the first line a push prints while it uploads: a byte count
// ("django: 324 B of 1.0 MiB"); a phase's own line comes at its end.
var pushingRE = regexp.MustCompile(`^\S+: [0-9.]+ [KMGT]?i?B of [0-9.]+ [KMGT]?i?B$`)

// waitPushing waits until the process is pushing (holding the lock, which
// is taken right before the push).
func (p *proc) waitPushing(t *testing.T, d time.Duration) {
	t.Helper()
	start := time.Now()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case l := <-p.lines:
			if pushingRE.MatchString(strings.TrimSpace(l)) {
				t.Logf("pushing (%q) after %s", strings.TrimSpace(l), time.Since(start).Round(time.Millisecond))
				return
			}
		case <-p.done:
			t.Fatalf("the process ended (exit %d) before it pushed:\n%s", p.code, p.errText())
		case <-timer.C:
			t.Fatalf("not pushing after %s:\n%s", d, p.errText())
		}
	}
}

func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (p *proc) errText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

type stackState struct {
	svcTD string
	revs  int
	lock  string
}

func readState(t *testing.T, n teststack.Names) stackState {
	t.Helper()
	st := teststack.Start(t)
	ctx := context.Background()
	api := st.ECS(t)
	ds, err := api.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(n.Cluster), Services: []string{n.Service}})
	if err != nil || len(ds.Services) != 1 {
		t.Fatalf("DescribeServices: %v", err)
	}
	lt, err := api.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(n.Family)})
	if err != nil {
		t.Fatal(err)
	}
	s := stackState{svcTD: aws.ToString(ds.Services[0].TaskDefinition), revs: len(lt.TaskDefinitionArns)}
	// The lock as its parameter's versions decide it (internal/lease):
	// "" when free (released, or never taken).
	ls, err := lease.Read(ctx, ssm.NewFromConfig(st.AWSConfig(t)), config.DefaultLockParameter(n.Cluster, n.Service))
	if err != nil {
		t.Fatalf("reading the lock: %v", err)
	}
	if ls.Held {
		s.lock = fmt.Sprintf("held by %s (version %d)", ls.Holder, ls.Version)
	}
	return s
}

// Two deploys of two commits a moment apart, as two pushes to main start
// two workflow runs: the second is started once the first holds the lock.
// Exactly one deploys; the other is refused (exit 5) naming the holder, and
// registers nothing; the service runs the winner's revision; no lock is left.
func TestTwoProcessesRace(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs the local stack")
	}
	cfg, n := e2eEnvPolls(t, 4)
	// The winner's rollout takes ~4 polls of 3 s (not the stack's fast
	// polls): B starts while A still holds the lock.
	t.Setenv(PollIntervalEnv, "3s")
	tagA, tagB := "race-a-"+n.Prefix, "race-b-"+n.Prefix
	before := readState(t, n)

	a := startProc(t, "--config", cfg, "stage", "--tag", tagA)
	a.waitPushing(t, 3*time.Minute) // the lock is taken right before the push
	b := startProc(t, "--config", cfg, "stage", "--tag", tagB)
	if !a.wait(3*time.Minute) || !b.wait(3*time.Minute) {
		t.Fatalf("a process did not end\nA:\n%s\nB:\n%s", a.errText(), b.errText())
	}
	t.Logf("A exit %d, B exit %d\nB's stderr:\n%s", a.code, b.code, b.errText())
	if a.code != 0 {
		t.Fatalf("the first deploy: exit %d, want 0\n%s", a.code, a.errText())
	}
	if b.code != 5 || !strings.Contains(b.errText(), "lock held") || !strings.Contains(b.errText(), "tag "+tagA) ||
		!strings.Contains(b.errText(), fmt.Sprintf("pid %d", a.cmd.Process.Pid)) {
		t.Fatalf("the second deploy: exit %d, want 5 naming the holder (tag %s, pid %d)\n%s", b.code, tagA, a.cmd.Process.Pid, b.errText())
	}
	after := readState(t, n)
	if after.revs != before.revs+1 {
		t.Errorf("%d new revisions, want 1 (the winner's)", after.revs-before.revs)
	}
	if after.svcTD == before.svcTD || !strings.Contains(a.stdout.String()+a.errText(), shortARNOf(after.svcTD)) {
		t.Errorf("the service runs %s; the winner's output does not name it", after.svcTD)
	}
	if after.lock != "" {
		t.Errorf("a lock is left: %s", after.lock)
	}
}

func shortARNOf(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// A cancelled CI job: SIGTERM mid-push, and SIGKILL ten seconds later if
// the process is still there. It must end on the SIGTERM with 143, saying
// the service was not changed, and release its lock. Then a SIGKILL mid-push
// (nothing can run): the lock is left, the next deploy is refused naming
// the dead holder and --force-unlock, and --force-unlock deploys.
func TestSigtermThenSigkill(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs the local stack")
	}
	cfg, n := e2eEnv(t)
	before := readState(t, n)

	p := startProc(t, "--config", cfg, "stage", "--tag", "term-"+n.Prefix)
	p.waitPushing(t, 3*time.Minute)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if !p.wait(10 * time.Second) {
		_ = p.cmd.Process.Kill()
		p.wait(5 * time.Second)
		t.Fatalf("still running 10 s after SIGTERM: SIGKILLed\n%s", p.errText())
	}
	t.Logf("ended %s after SIGTERM with exit %d", time.Since(start).Round(time.Millisecond), p.code)
	if p.code != 143 || !strings.Contains(p.errText(), "was not changed") {
		t.Fatalf("exit %d, want 143 saying the service was not changed\n%s", p.code, p.errText())
	}
	if s := readState(t, n); s.lock != "" || s.svcTD != before.svcTD || s.revs != before.revs {
		t.Fatalf("after SIGTERM: %+v (before %+v): want no lock, the service and revisions unchanged", s, before)
	}

	k := startProc(t, "--config", cfg, "stage", "--tag", "kill-"+n.Prefix)
	k.waitPushing(t, 3*time.Minute)
	_ = k.cmd.Process.Kill()
	k.wait(10 * time.Second)
	s := readState(t, n)
	if s.lock == "" || s.svcTD != before.svcTD || s.revs != before.revs {
		t.Fatalf("after SIGKILL: %+v: want the dead run's lock left, the service and revisions unchanged", s)
	}
	code, _, errText := runProc(t, "--config", cfg, "stage", "--tag", "next-"+n.Prefix)
	if code != 5 || !strings.Contains(errText, "lock held") || !strings.Contains(errText, "--force-unlock") ||
		!strings.Contains(errText, fmt.Sprintf("pid %d", k.cmd.Process.Pid)) {
		t.Fatalf("after SIGKILL: exit %d, want 5 naming the dead holder and --force-unlock\n%s", code, errText)
	}
	code, _, errText = runProc(t, "--config", cfg, "stage", "--tag", "next-"+n.Prefix, "--force-unlock")
	if code != 0 || !strings.Contains(errText, "--force-unlock: taking over the deploy lock") {
		t.Fatalf("--force-unlock: exit %d\n%s", code, errText)
	}
	if s := readState(t, n); s.lock != "" || s.revs != before.revs+1 || s.svcTD == before.svcTD {
		t.Fatalf("after --force-unlock: %+v (before %+v): want deployed and the lock released", s, before)
	}
}

func runProc(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	p := startProc(t, args...)
	if !p.wait(4 * time.Minute) {
		t.Fatalf("%v did not end\n%s", args, p.errText())
	}
	return p.code, p.stdout.String(), p.errText()
}
