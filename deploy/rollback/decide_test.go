package rollback

import (
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/deploy/inspect"
	"github.com/hackforla/ctjdeploy/deploy/rollout"
	"github.com/hackforla/ctjdeploy/internal/config"
)

const (
	shaA = "aaaaaaa111111111111111111111111111111111"
	shaB = "aaaaaaa222222222222222222222222222222222"
	shaC = "ccccccc333333333333333333333333333333333"
)

func TestMatchTag(t *testing.T) {
	tags := []string{shaA, shaB, shaC, "stage", "initial"}
	cases := []struct {
		name, to string
		want     Match
	}{
		{"full tag", shaC, Match{Tag: shaC, Candidates: []string{shaC}}},
		{"env tag exact", "stage", Match{Tag: "stage", Candidates: []string{"stage"}}},
		{"unique prefix", "ccccccc3", Match{Tag: shaC, Candidates: []string{shaC}}},
		{"seven chars unique", "ccccccc", Match{Tag: shaC, Candidates: []string{shaC}}},
		{"ambiguous prefix", "aaaaaaa", Match{Candidates: []string{shaA, shaB}}},
		{"longer prefix disambiguates", "aaaaaaa2", Match{Tag: shaB, Candidates: []string{shaB}}},
		{"too short to be a prefix", "cccccc", Match{}},
		{"no match", "deadbeef", Match{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := MatchTag(c.to, tags)
			if got.Tag != c.want.Tag || len(got.Candidates) != len(c.want.Candidates) ||
				(len(got.Candidates) > 0 && !reflect.DeepEqual(got.Candidates, c.want.Candidates)) {
				t.Errorf("MatchTag(%q) = %+v, want %+v", c.to, got, c.want)
			}
		})
	}
}

func TestIntersectUnion(t *testing.T) {
	a, b := []string{"x", "y", "y", "z"}, []string{"z", "w", "y"}
	if got := Intersect([][]string{a, b}); !reflect.DeepEqual(got, []string{"y", "z"}) {
		t.Errorf("Intersect = %v", got)
	}
	if got := Union([][]string{a, b}); !reflect.DeepEqual(got, []string{"w", "x", "y", "z"}) {
		t.Errorf("Union = %v", got)
	}
	if Intersect(nil) != nil {
		t.Error("Intersect(nil) should be nil")
	}
}

func rev(n int32, commit string) inspect.Revision {
	return inspect.Revision{ARN: "arn:aws:ecs:r:1:task-definition/f:" + string(rune('0'+n)), Revision: n, Commit: commit, ByCtjdeploy: commit != ""}
}

func TestNearest(t *testing.T) {
	// Newest first: rev 6 (c6) ... rev 1 (c1); rev 3 was registered outside ctjdeploy.
	hist := []inspect.Revision{rev(6, "c6"), rev(5, "c5"), rev(4, "c4"), rev(3, ""), rev(2, "c2"), rev(1, "c1")}
	cases := []struct {
		name  string
		tag   string
		avail []string
		n     int
		want  []string
	}{
		{"nearest in revision order to the one deployed, ties newer first", "c4", []string{"c1", "c2", "c5", "c6", "zz"}, 10, []string{"c5", "c6", "c2", "c1", "zz"}},
		{"tag never deployed: deployed newest first, then the rest", "nope", []string{"c1", "c5", "other"}, 10, []string{"c5", "c1", "other"}},
		{"expired tags are not offered", "c5", []string{"c6"}, 10, []string{"c6"}},
		{"bounded", "c4", []string{"c1", "c2", "c5", "c6"}, 2, []string{"c5", "c6"}},
		{"the tag itself is left out", "c4", []string{"c4", "c5"}, 10, []string{"c5"}},
		{"no history", "x", []string{"b", "a"}, 10, []string{"b", "a"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := hist
			if c.name == "no history" {
				h = nil
			}
			if got := Nearest(c.tag, h, c.avail, c.n); !reflect.DeepEqual(got, c.want) {
				t.Errorf("Nearest = %v, want %v", got, c.want)
			}
		})
	}
}

func TestRunsDigests(t *testing.T) {
	env := &config.Environment{Images: map[string]*config.Image{
		"django": {Repository: "backend"}, "next": {Repository: "frontend"},
	}}
	mk := func(imgs ...string) inspect.Revision {
		td := &ecstypes.TaskDefinition{TaskDefinitionArn: aws.String("arn:x/f:1")}
		for i, im := range imgs {
			td.ContainerDefinitions = append(td.ContainerDefinitions, ecstypes.ContainerDefinition{Name: aws.String(string(rune('a' + i))), Image: aws.String(im)})
		}
		return inspect.NewRevision(td, nil)
	}
	want := map[string]string{"django": "sha256:1", "next": "sha256:2"}
	cases := []struct {
		name string
		rev  inspect.Revision
		ok   bool
	}{
		{"exact", mk("127.0.0.1:5055/backend@sha256:1", "127.0.0.1:5055/frontend@sha256:2", "postgres:18"), true},
		{"one differs", mk("127.0.0.1:5055/backend@sha256:1", "127.0.0.1:5055/frontend@sha256:3"), false},
		{"tag instead of digest", mk("127.0.0.1:5055/backend:x", "127.0.0.1:5055/frontend@sha256:2"), false},
		{"missing image", mk("127.0.0.1:5055/backend@sha256:1"), false},
		{"two containers of one image, one differs", mk("127.0.0.1:5055/backend@sha256:1", "127.0.0.1:5055/backend@sha256:9", "127.0.0.1:5055/frontend@sha256:2"), false},
	}
	for _, c := range cases {
		if got := RunsDigests(env, c.rev, want); got != c.ok {
			t.Errorf("%s: RunsDigests = %v", c.name, got)
		}
	}
	if RunsDigests(env, mk("127.0.0.1:5055/backend@sha256:1"), nil) {
		t.Error("nothing wanted should not match")
	}
}

func TestInFlight(t *testing.T) {
	sd := "arn:aws:ecs:us-west-2:123456789012:service-deployment/c/s/abc"
	mk := func(cur string, deps ...ecstypes.Deployment) *ecstypes.Service {
		s := &ecstypes.Service{Deployments: deps}
		if cur != "" {
			s.CurrentServiceDeployment = aws.String(cur)
		}
		return s
	}
	d := func(id, status string, rs ecstypes.DeploymentRolloutState) ecstypes.Deployment {
		return ecstypes.Deployment{Id: aws.String(id), Status: aws.String(status), RolloutState: rs, TaskDefinition: aws.String("td-" + id)}
	}
	cases := []struct {
		name string
		svc  *ecstypes.Service
		want string
	}{
		{"in progress with a service deployment", mk(sd, d("new", "PRIMARY", ecstypes.DeploymentRolloutStateInProgress), d("old", "ACTIVE", ecstypes.DeploymentRolloutStateCompleted)), "new"},
		{"completed", mk(sd, d("new", "PRIMARY", ecstypes.DeploymentRolloutStateCompleted)), ""},
		{"failed (nothing to stop)", mk(sd, d("new", "PRIMARY", ecstypes.DeploymentRolloutStateFailed)), ""},
		{"in progress, no service deployment API", mk("", d("new", "PRIMARY", ecstypes.DeploymentRolloutStateInProgress)), ""},
		{"nil", nil, ""},
	}
	for _, c := range cases {
		got, arn := InFlight(c.svc)
		if id := aws.ToString(func() *string {
			if got == nil {
				return nil
			}
			return got.Id
		}()); id != c.want || (c.want != "" && arn != sd) {
			t.Errorf("%s: InFlight = %q %q, want %q", c.name, id, arn, c.want)
		}
	}
	if src := rollout.SourceRevision(mk(sd, d("new", "PRIMARY", ecstypes.DeploymentRolloutStateInProgress), d("old", "ACTIVE", ecstypes.DeploymentRolloutStateCompleted))); src != "td-old" {
		t.Errorf("SourceRevision = %q", src)
	}
}
