package inspect

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
)

func TestParseImage(t *testing.T) {
	cases := []struct {
		in                          string
		registry, path, tag, digest string
	}{
		{"127.0.0.1:5055/civic-tech-jobs-backend@sha256:abc", "127.0.0.1:5055", "civic-tech-jobs-backend", "", "sha256:abc"},
		{"123456789012.dkr.ecr.us-west-2.amazonaws.com/team/app:v1", "123456789012.dkr.ecr.us-west-2.amazonaws.com", "team/app", "v1", ""},
		{"postgres:18", "", "postgres", "18", ""},
		{"postgres", "", "postgres", "", ""},
		{"library/postgres:18", "", "library/postgres", "18", ""},
		{"localhost/app:1@sha256:d", "localhost", "app", "1", "sha256:d"},
		{"127.0.0.1:5055/app", "127.0.0.1:5055", "app", "", ""},
	}
	for _, c := range cases {
		r := ParseImage(c.in)
		if r.Registry != c.registry || r.Path != c.path || r.Tag != c.tag || r.Digest != c.digest {
			t.Errorf("ParseImage(%q) = %+v", c.in, r)
		}
	}
}

func TestFamilyOf(t *testing.T) {
	cases := []struct {
		in     string
		family string
		rev    int
		ok     bool
	}{
		{"arn:aws:ecs:us-west-2:123456789012:task-definition/civic-tech-jobs-fullstack-stage:12", "civic-tech-jobs-fullstack-stage", 12, true},
		{"fam:3", "fam", 3, true},
		{"fam", "", 0, false},
		{"fam:x", "", 0, false},
		{":3", "", 0, false},
	}
	for _, c := range cases {
		f, n, ok := ecsread.FamilyOf(c.in)
		if f != c.family || n != c.rev || ok != c.ok {
			t.Errorf("ecsread.FamilyOf(%q) = %q %d %v", c.in, f, n, ok)
		}
	}
	if got := ecsread.ShortARN("arn:aws:ecs:r:1:task-definition/f:7"); got != "f:7" {
		t.Errorf("ecsread.ShortARN = %q", got)
	}
}

func testEnv() *config.Environment {
	return &config.Environment{
		Name: "stage", Region: "us-west-2", Cluster: "incubator-prod", Service: "svc",
		Images: map[string]*config.Image{
			"django": {Name: "django", Repository: "civic-tech-jobs-backend"},
			"next":   {Name: "next", Repository: "civic-tech-jobs-frontend"},
		},
	}
}

func td(rev int32, images ...string) *ecstypes.TaskDefinition {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d := &ecstypes.TaskDefinition{
		TaskDefinitionArn: aws.String("arn:aws:ecs:us-west-2:123456789012:task-definition/fam:" + string(rune('0'+rev))),
		Family:            aws.String("fam"),
		Revision:          rev,
		Status:            ecstypes.TaskDefinitionStatusActive,
		RegisteredAt:      &now,
	}
	names := []string{"next", "django", "pgdb"}
	for i, img := range images {
		d.ContainerDefinitions = append(d.ContainerDefinitions, ecstypes.ContainerDefinition{Name: aws.String(names[i]), Image: aws.String(img)})
	}
	return d
}

func tags(kv ...string) []ecstypes.Tag {
	var out []ecstypes.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, ecstypes.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

const (
	reg  = "127.0.0.1:5055/"
	dgA  = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	dgB  = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	sha1 = "1a2b3c4d5e6f708192a3b4c5d6e7f80912a3b4c5"
)

func TestNewRevision(t *testing.T) {
	r := NewRevision(td(3, reg+"civic-tech-jobs-frontend@"+dgA, reg+"civic-tech-jobs-backend@"+dgB, "postgres:18"),
		tags(ecsread.TagCommit, sha1, ecsread.TagEnv, "stage", ecsread.TagPrevious, "arn:aws:ecs:us-west-2:123456789012:task-definition/fam:2", "team", "ctj"))
	if !r.ByCtjdeploy || r.Commit != sha1 || r.Env != "stage" || !strings.HasSuffix(r.Previous, "fam:2") || r.Revision != 3 || r.Family != "fam" {
		t.Fatalf("revision: %+v", r)
	}
	if d := r.Digests(); d["next"] != dgA || d["django"] != dgB || len(d) != 2 {
		t.Errorf("digests: %v", d)
	}
	if c, ok := r.Container("pgdb"); !ok || c.Pinned() || c.Tag != "18" {
		t.Errorf("pgdb: %+v %v", c, ok)
	}
	other := NewRevision(td(1, "x:1"), tags("team", "ctj"))
	if other.ByCtjdeploy || other.Who() != "other" || other.Commit != "" {
		t.Errorf("untagged revision counted as ctjdeploy's: %+v", other)
	}
	if NewRevision(td(1, "x:1"), nil).Tags != nil {
		t.Errorf("no tags should be nil (omitted in JSON)")
	}
}

func TestDrift(t *testing.T) {
	env := testEnv()
	pinned := []string{reg + "civic-tech-jobs-frontend@" + dgA, reg + "civic-tech-jobs-backend@" + dgB, "postgres:18"}
	cases := []struct {
		name string
		rev  Revision
		want []string // substrings, one per drift line; nil: no drift
	}{
		{"deployed by ctjdeploy", NewRevision(td(2, pinned...), tags(ecsread.TagCommit, sha1, ecsread.TagEnv, "stage")), nil},
		{"registered by terraform", NewRevision(td(2, pinned...), nil), []string{"registered outside ctjdeploy"}},
		{"terraform with mutable tags", NewRevision(td(2, reg+"civic-tech-jobs-frontend:stage", reg+"civic-tech-jobs-backend:stage", "postgres:18"), nil),
			[]string{"outside ctjdeploy", "container next runs", "container django runs"}},
		{"other environment", NewRevision(td(2, pinned...), tags(ecsread.TagCommit, sha1, ecsread.TagEnv, "prod")), []string{"ctjdeploy:env=prod, not stage"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Drift(env, c.rev)
			if len(got) != len(c.want) {
				t.Fatalf("drift = %q, want %d lines", got, len(c.want))
			}
			for i, w := range c.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("drift[%d] = %q, want %q", i, got[i], w)
				}
			}
		})
	}
	d := Drift(env, NewRevision(td(2, pinned...), nil))[0]
	for _, w := range []string{"terraform apply", "next `ctjdeploy stage` replaces it", "rollback", "--to TAG", "ignore_changes"} {
		if !strings.Contains(d, w) {
			t.Errorf("drift message lacks %q: %s", w, d)
		}
	}
}

func TestNewStatusAndText(t *testing.T) {
	env := testEnv()
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	var events []ecstypes.ServiceEvent
	for i := 0; i < 8; i++ {
		at := t0.Add(time.Duration(i) * time.Minute)
		events = append(events, ecstypes.ServiceEvent{CreatedAt: &at, Message: aws.String("event " + string(rune('0'+i)))})
	}
	live := NewRevision(td(4, reg+"civic-tech-jobs-frontend@"+dgA, reg+"civic-tech-jobs-backend@"+dgB, "postgres:18"),
		tags(ecsread.TagCommit, sha1, ecsread.TagEnv, "stage", ecsread.TagPrevious, "arn:aws:ecs:us-west-2:123456789012:task-definition/fam:3"))
	live.Live = true
	svc := &ecstypes.Service{
		ServiceArn: aws.String("arn:svc"), Status: aws.String("ACTIVE"), DesiredCount: 1, RunningCount: 1, PendingCount: 1,
		TaskDefinition: aws.String(live.ARN),
		Deployments: []ecstypes.Deployment{
			{Id: aws.String("ecs-svc/2"), Status: aws.String("PRIMARY"), RolloutState: ecstypes.DeploymentRolloutStateInProgress, TaskDefinition: aws.String(live.ARN), DesiredCount: 1, PendingCount: 1},
			{Id: aws.String("ecs-svc/1"), Status: aws.String("ACTIVE"), RolloutState: ecstypes.DeploymentRolloutStateCompleted, TaskDefinition: aws.String("arn:aws:ecs:us-west-2:123456789012:task-definition/fam:3"), RunningCount: 1},
		},
		Events: events,
	}
	st := NewStatus(env, svc, live)
	if st.Deployment == nil || st.Deployment.ID != "ecs-svc/2" || len(st.Others) != 1 {
		t.Fatalf("deployments: %+v %+v", st.Deployment, st.Others)
	}
	if len(st.Events) != MaxEvents || st.Events[0].Message != "event 7" || st.Events[4].Message != "event 3" {
		t.Errorf("events should be the 5 newest, newest first: %+v", st.Events)
	}
	if st.Drift != nil {
		t.Errorf("no drift expected: %q", st.Drift)
	}
	var b bytes.Buffer
	if err := WriteStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, w := range []string{"service svc in cluster incubator-prod", "live revision: fam:4", "commit:      " + sha1, "previous:    fam:3",
		"civic-tech-jobs-backend@" + dgB[:len("sha256:")+12], "not pinned by digest", "deployment:    in progress (ecs-svc/2, fam:4", "also active:   fam:3",
		"desired 1, running 1, pending 1", "drift:         none", "event 7"} {
		if !strings.Contains(out, w) {
			t.Errorf("status text lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "event 2") {
		t.Errorf("status shows more than 5 events:\n%s", out)
	}
	for _, ln := range strings.Split(out, "\n") {
		if len([]rune(ln)) > StatusWidth || strings.HasSuffix(ln, " ") {
			t.Errorf("status line wider than %d columns or padded: %q", StatusWidth, ln)
		}
	}
	if strings.Contains(out, "registered:  -") {
		t.Errorf("status prints an unknown registration time as '-':\n%s", out)
	}
	b.Reset()
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(st); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back["live"].(map[string]any)["commit"] != sha1 || back["deployment"].(map[string]any)["rolloutState"] != "IN_PROGRESS" {
		t.Errorf("json: %s", b.String())
	}
}

func TestWriteHistory(t *testing.T) {
	a := NewRevision(td(3, reg+"civic-tech-jobs-frontend@"+dgA, reg+"civic-tech-jobs-backend@"+dgB), tags(ecsread.TagCommit, sha1, ecsread.TagEnv, "stage"))
	b := NewRevision(td(2, reg+"civic-tech-jobs-frontend:initial", reg+"civic-tech-jobs-backend:initial"), nil)
	h := History{Env: "stage", Family: "fam", Limit: 20, Live: b.ARN, Revisions: MarkLive([]Revision{a, b}, b.ARN)}
	var buf bytes.Buffer
	if err := WriteHistory(&buf, h); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	if len(lines) < 4 || !strings.HasPrefix(lines[1], "REV") {
		t.Fatalf("history:\n%s", buf.String())
	}
	if !strings.Contains(lines[2], "3") || !strings.Contains(lines[2], sha1[:12]) || !strings.Contains(lines[2], "ctjdeploy") ||
		!strings.Contains(lines[2], "next@aaaaaaaaaaaa") || strings.Contains(lines[2], "live") {
		t.Errorf("row of revision 3: %q", lines[2])
	}
	if !strings.Contains(lines[3], "live") || !strings.Contains(lines[3], "other") || !strings.Contains(lines[3], "next:initial") {
		t.Errorf("row of revision 2: %q", lines[3])
	}
}
