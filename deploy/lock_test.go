package deploy

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
)

// fakeSSM is an SSM parameter store with PutParameter's overwrite rule.
type fakeSSM struct {
	mu     sync.Mutex
	params map[string]ssmtypes.Parameter
	puts   int
}

func (f *fakeSSM) PutParameter(_ context.Context, in *ssm.PutParameterInput, _ ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts++
	if _, ok := f.params[*in.Name]; ok && !aws.ToBool(in.Overwrite) {
		return nil, &ssmtypes.ParameterAlreadyExists{Message: aws.String("The parameter already exists.")}
	}
	if f.params == nil {
		f.params = map[string]ssmtypes.Parameter{}
	}
	now := time.Now()
	f.params[*in.Name] = ssmtypes.Parameter{Name: in.Name, Value: in.Value, LastModifiedDate: &now}
	return &ssm.PutParameterOutput{}, nil
}

func (f *fakeSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.params[*in.Name]
	if !ok {
		return nil, &ssmtypes.ParameterNotFound{}
	}
	return &ssm.GetParameterOutput{Parameter: &p}, nil
}

func (f *fakeSSM) DeleteParameter(_ context.Context, in *ssm.DeleteParameterInput, _ ...func(*ssm.Options)) (*ssm.DeleteParameterOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.params[*in.Name]; !ok {
		return nil, &ssmtypes.ParameterNotFound{}
	}
	delete(f.params, *in.Name)
	return &ssm.DeleteParameterOutput{}, nil
}

func lockRun(s SSM, rep report.Reporter) *run {
	env := &config.Environment{Name: "stage", Region: "us-west-2", Cluster: "c", Service: "s"}
	return &run{o: Options{Env: env, Tag: "abc1234"}, d: Deps{SSM: s}, res: &Result{}, rep: rep}
}

func TestLockTakenAndReleased(t *testing.T) {
	s := &fakeSSM{}
	r := lockRun(s, report.Discard)
	release, err := r.takeLock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p, ok := s.params["/ctjdeploy/c/s/lock"]
	if !ok {
		t.Fatal("no lock parameter")
	}
	var h LockHolder
	if err := json.Unmarshal([]byte(*p.Value), &h); err != nil || h.Tag != "abc1234" || h.Run == "" || h.Host == "" || h.Started.IsZero() {
		t.Errorf("lock value %s (%v)", *p.Value, err)
	}
	// A second run is refused while it is held.
	_, err = lockRun(s, report.Discard).takeLock(context.Background())
	if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "lock held") || !strings.Contains(err.Error(), h.Run) ||
		!strings.Contains(err.Error(), "aws ssm delete-parameter --name /ctjdeploy/c/s/lock --region us-west-2") {
		t.Errorf("second run: %v", err)
	}
	release()
	if _, ok := s.params["/ctjdeploy/c/s/lock"]; ok || !r.res.LockReleased {
		t.Error("the lock was not released")
	}
}

func TestStaleLockTakenOver(t *testing.T) {
	s := &fakeSSM{}
	old, _ := json.Marshal(LockHolder{Run: "dead", Started: time.Now().Add(-LockTTL - time.Minute)})
	s.params = map[string]ssmtypes.Parameter{"/ctjdeploy/c/s/lock": {Value: aws.String(string(old))}}
	var rec report.Recorder
	r := lockRun(s, &rec)
	release, err := r.takeLock(context.Background())
	if err != nil {
		t.Fatalf("stale lock not taken over: %v", err)
	}
	warned := false
	for _, e := range rec.Events {
		if e.Kind == report.Warn && strings.Contains(e.Message, "stale deploy lock") && strings.Contains(e.Message, "dead") {
			warned = true
		}
	}
	if !warned {
		t.Error("no warning about the stale lock")
	}
	release()
	if _, ok := s.params["/ctjdeploy/c/s/lock"]; ok {
		t.Error("not released")
	}
}

func TestReleaseLeavesAnotherRunsLock(t *testing.T) {
	s := &fakeSSM{}
	r := lockRun(s, report.Discard)
	release, err := r.takeLock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	other, _ := json.Marshal(LockHolder{Run: "other", Started: time.Now()})
	s.params["/ctjdeploy/c/s/lock"] = ssmtypes.Parameter{Value: aws.String(string(other))}
	release()
	if p, ok := s.params["/ctjdeploy/c/s/lock"]; !ok || !strings.Contains(*p.Value, `"other"`) {
		t.Error("release deleted another run's lock")
	}
}

func TestForceUnlockTakesOverAHeldLock(t *testing.T) {
	s := &fakeSSM{}
	held, _ := json.Marshal(LockHolder{Run: "killed-run", Host: "runner-3", Started: time.Now().Add(-2 * time.Minute)})
	s.params = map[string]ssmtypes.Parameter{"/ctjdeploy/c/s/lock": {Value: aws.String(string(held))}}
	_, err := lockRun(s, report.Discard).takeLock(context.Background())
	if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "--force-unlock") || !strings.Contains(err.Error(), "killed-run") {
		t.Fatalf("without --force-unlock: %v", err)
	}
	var rec report.Recorder
	r := lockRun(s, &rec)
	r.o.ForceUnlock = true
	release, err := r.takeLock(context.Background())
	if err != nil {
		t.Fatalf("--force-unlock: %v", err)
	}
	var h LockHolder
	_ = json.Unmarshal([]byte(*s.params["/ctjdeploy/c/s/lock"].Value), &h)
	if h.Run == "killed-run" || h.Tag != "abc1234" {
		t.Fatalf("the lock is not this run's: %+v", h)
	}
	warned := false
	for _, e := range rec.Events {
		warned = warned || (e.Kind == report.Warn && strings.Contains(e.Message, "--force-unlock") && strings.Contains(e.Message, "killed-run"))
	}
	if !warned {
		t.Error("no warning naming the holder whose lock was taken")
	}
	release()
	if _, ok := s.params["/ctjdeploy/c/s/lock"]; ok {
		t.Error("not released")
	}
}

// Staleness is judged by the holder's own time to live (its config's
// lock.ttl), not the reader's.
func TestHolderTTLDecidesStaleness(t *testing.T) {
	for _, c := range []struct {
		ttl   string
		age   time.Duration
		taken bool
	}{
		{"2h0m0s", time.Hour, false},    // older than the default 30 min, but within its 2 h
		{"1m0s", 5 * time.Minute, true}, // younger than 30 min, past its own 1 min
		{"", 20 * time.Minute, false},   // no ttl recorded: the default
	} {
		s := &fakeSSM{}
		v, _ := json.Marshal(LockHolder{Run: "other", Started: time.Now().Add(-c.age), TTL: c.ttl})
		s.params = map[string]ssmtypes.Parameter{"/ctjdeploy/c/s/lock": {Value: aws.String(string(v))}}
		release, err := lockRun(s, report.Discard).takeLock(context.Background())
		if (err == nil) != c.taken {
			t.Errorf("ttl %q, age %s: taken %v, want %v (%v)", c.ttl, c.age, err == nil, c.taken, err)
		}
		if err == nil {
			release()
		}
	}
}

func TestLockConfigNamedAndOff(t *testing.T) {
	s := &fakeSSM{}
	r := lockRun(s, report.Discard)
	r.o.Env.Lock = &config.Lock{Parameter: "/team/stage-deploy", TTL: 45 * time.Minute}
	release, err := r.takeLock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p, ok := s.params["/team/stage-deploy"]
	var h LockHolder
	if !ok || json.Unmarshal([]byte(*p.Value), &h) != nil || h.TTL != "45m0s" || r.res.Lock != "/team/stage-deploy" {
		t.Fatalf("named lock: %v %+v %q", ok, h, r.res.Lock)
	}
	release()

	s = &fakeSSM{}
	r = lockRun(s, report.Discard)
	r.o.Env.Lock = &config.Lock{Off: true}
	release, err = r.takeLock(context.Background())
	if err != nil || s.puts != 0 || r.res.Lock != "" {
		t.Fatalf("lock: false still locks: %v, %d puts, %q", err, s.puts, r.res.Lock)
	}
	release()
}
