package taskdef

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// Template bombs fail fast with exit 2 and say which budget they broke.
func TestRenderBudgets(t *testing.T) {
	var fan strings.Builder
	fan.WriteString(`{{ define "t0" }}{{ tf "sql_host" }}{{ end }}`)
	for i := 1; i < 12; i++ {
		fmt.Fprintf(&fan, `{{ define "t%d" }}`, i)
		for j := 0; j < 8; j++ {
			fmt.Fprintf(&fan, `{{ template "t%d" }}`, i-1)
		}
		fan.WriteString(`{{ end }}`)
	}
	wrap := func(family string) string {
		return `{"family": "` + family + `", "containerDefinitions": [{"name": "a", "image": "{{ image "next" }}"}]}`
	}
	for _, c := range []struct{ name, tmpl, want string }{
		{"define/template fan-out", wrap(fan.String() + `{{ template "t11" }}`), "expands to more than"},
		{"wide fan-out of text", wrap(`{{ define "a" }}` + strings.Repeat("x", 300<<10) + `{{ end }}{{ template "a" }}{{ template "a" }}{{ template "a" }}{{ template "a" }}`), "the template's output exceeds 1 MiB"},
		{"printf doubling", wrap(`{{ $x := tf "sql_host" }}` + strings.Repeat(`{{ $x = printf "%s%s" $x $x }}`, 64) + `{{ $x }}`), "the template's output exceeds 1 MiB"},
		{"printf doubling, never written", wrap(`{{ $x := "ab" }}` + strings.Repeat(`{{ $x = printf "%s%s" $x $x }}`, 64) + `{{ len $x }}`), "the template's output exceeds 1 MiB"},
		{"recursion", wrap(`{{ define "x" }}{{ template "x" }}{{ end }}{{ template "x" }}`), "calls itself"},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			_, err := Render("bomb.json", []byte(c.tmpl), exampleInputs())
			took := time.Since(start)
			if err == nil {
				t.Fatal("rendered")
			}
			if exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bomb.json") {
				t.Errorf("exit %d, error %q (want it to say %q)", exitcode.Of(err), err, c.want)
			}
			if took > 3*time.Second {
				t.Errorf("took %s", took)
			}
		})
	}
}

// Execute is the renderer iam-policy uses: the same budgets.
func TestExecuteBudget(t *testing.T) {
	_, err := Execute("policy.json", `{{ $x := "ab" }}`+strings.Repeat(`{{ $x = printf "%s%s" $x $x }}`, 64), nil)
	if err == nil || exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "exceeds 1 MiB") {
		t.Errorf("err = %v", err)
	}
	out, err := Execute("ok.json", `{"a": "{{ v }}"}`, map[string]any{"v": func() string { return "b" }})
	if err != nil || string(out) != `{"a": "b"}` {
		t.Errorf("Execute = %q, %v", out, err)
	}
}
