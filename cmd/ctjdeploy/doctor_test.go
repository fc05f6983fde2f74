package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hackforla/ctjdeploy/deploy/doctor"
	"github.com/hackforla/ctjdeploy/deploy/preflight"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/lease"
)

func TestPrincipalARN(t *testing.T) {
	for in, want := range map[string]string{
		"arn:aws:sts::123456789012:assumed-role/incubator-cicd-civic-tech-jobs/GitHubActions": "arn:aws:iam::123456789012:role/incubator-cicd-civic-tech-jobs",
		"arn:aws:iam::123456789012:user/alice":                                                "arn:aws:iam::123456789012:user/alice",
		"arn:aws:sts::123456789012:user/moto":                                                 "arn:aws:iam::123456789012:user/moto",
		"arn:aws-cn:sts::123456789012:assumed-role/r/s":                                       "arn:aws-cn:iam::123456789012:role/r",
		"arn:aws:sts::123456789012:federated-user/bob":                                        "",
		"nonsense": "",
	} {
		if got := principalARN(in); got != want {
			t.Errorf("principalARN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteDoctor(t *testing.T) {
	checks := []doctor.Check{
		{Check: "credentials", Status: doctor.OK, Detail: "account 1"},
		{Check: "circuit breaker", Status: doctor.Failed, Detail: "off", Fix: "line one\nline two"},
	}
	var b bytes.Buffer
	writeDoctorText(&b, checks)
	want := "ok       credentials: account 1\nfailed   circuit breaker: off\n         fix:\n           line one\n           line two\n"
	if b.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := writeDoctorJSON(&b, checks); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Checks []map[string]string `json:"checks"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil || len(doc.Checks) != 2 || doc.Checks[1]["fix"] != "line one\nline two" || doc.Checks[0]["status"] != "ok" {
		t.Errorf("json %s (%v)", b.String(), err)
	}
	if _, ok := doc.Checks[0]["fix"]; !ok {
		t.Errorf("json %s: an ok check without the fix key", b.String())
	}
	b.Reset()
	_ = writeDoctorJSON(&b, nil)
	if !strings.Contains(b.String(), `"checks": []`) {
		t.Errorf("no checks: %s", b.String())
	}
}

func TestLockState(t *testing.T) {
	env := &config.Environment{Name: "stage", Cluster: "c", Service: "s"}
	holder := func(beat time.Time, ttl string) lease.State {
		return lease.State{Exists: true, Held: true, Beat: beat, Holder: lease.Holder{Run: "abc", Tag: "t", Host: "h", Started: beat, TTL: ttl}}
	}
	for _, tc := range []struct {
		rep         preflight.Report
		held, stale bool
	}{
		{preflight.Report{LockRead: true}, false, false},
		{preflight.Report{LockRead: true, Lock: holder(time.Now().Add(-time.Minute), "30m")}, true, false},
		{preflight.Report{LockRead: true, Lock: holder(time.Now().Add(-time.Hour), "30m")}, true, true},
		{preflight.Report{LockRead: true, Lock: holder(time.Now().Add(-time.Hour), "2h")}, true, false},
	} {
		l := lockState(env, &tc.rep)
		if !l.Read || l.Held != tc.held || l.Stale != tc.stale || (tc.held && !strings.Contains(l.Holder, "run abc")) {
			t.Errorf("%+v: %+v", tc.rep, l)
		}
	}
	if l := lockState(env, &preflight.Report{}); l.Read || l.Name == "" {
		t.Errorf("unread lock: %+v", l)
	}
}

func TestWriteDoctorModuleChangeOnce(t *testing.T) {
	mod := doctor.ModuleChangeMarker + "\nvariable \"x\" {}\n"
	checks := []doctor.Check{
		{Check: "circuit breaker", Status: doctor.Failed, Detail: "off", Fix: "module a {}\n" + mod},
		{Check: "live revision owner", Status: doctor.Failed, Detail: "terraform", Fix: "module b {}\n" + mod},
	}
	var b bytes.Buffer
	writeDoctorText(&b, checks)
	out := b.String()
	if strings.Count(out, `variable "x"`) != 1 || !strings.Contains(out, `the change shown under "circuit breaker"`) || !strings.Contains(out, "module b {}") {
		t.Errorf("module change not printed exactly once:\n%s", out)
	}
}
