package tmplbudget

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// fanOut is a define/template bomb: t9 calls t8 ten times, ..., t0 writes
// text: 10^10 writes.
func fanOut(text string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{{ define "t0" }}%s{{ end }}`, text)
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, `{{ define "t%d" }}`, i)
		for j := 0; j < 10; j++ {
			fmt.Fprintf(&b, `{{ template "t%d" }}`, i-1)
		}
		b.WriteString(`{{ end }}`)
	}
	b.WriteString(`{{ template "t9" }}`)
	return b.String()
}

// printfBomb doubles a string n times.
func printfBomb(n int) string {
	return `{{ $x := "aaaaaaaaaaaaaaaa" }}` + strings.Repeat(`{{ $x = printf "%s%s" $x $x }}`, n) + `{{ len $x }}`
}

func run(t *testing.T, text string, lim Limits, funcs template.FuncMap) ([]byte, time.Duration, error) {
	t.Helper()
	start := time.Now()
	out, err := Execute("bomb.json", text, funcs, map[string]any{}, lim)
	return out, time.Since(start), err
}

func TestBudgetsStopBombs(t *testing.T) {
	big := strings.Repeat("x", 200<<10)
	for _, c := range []struct {
		name, text, want string
	}{
		{"define/template fan-out", fanOut("x"), "expands to more than 200000 actions"},
		{"fan-out of big text under the action limit", `{{ define "a" }}` + big + `{{ end }}{{ define "b" }}{{ template "a" }}{{ template "a" }}{{ template "a" }}{{ end }}{{ template "b" }}{{ template "b" }}`, "the template's output exceeds 1 MiB"},
		{"printf doubling", printfBomb(60), "the template's output exceeds 1 MiB"},
		{"printf width", `{{ printf "%999999d%999999d" 1 2 }}`, "the template's output exceeds 1 MiB"},
		{"printf star width", `{{ printf "%*d" 900000000 1 }}`, "the template's output exceeds 1 MiB"},
		{"print of many copies", printfBomb(15) + `{{ print $x $x $x $x $x $x $x $x $x $x $x $x $x $x $x $x $x $x $x $x }}`, "the template's output exceeds 1 MiB"},
		{"html growth", `{{ $x := "<<<<<<<<<<<<<<<<" }}` + strings.Repeat(`{{ $x = printf "%s%s" $x $x }}`, 14) + `{{ html $x }}`, "the template's output exceeds 1 MiB"},
		{"js growth", `{{ $x := "<<<<<<<<<<<<<<<<" }}` + strings.Repeat(`{{ $x = printf "%s%s" $x $x }}`, 14) + `{{ js $x }}`, "the template's output exceeds 1 MiB"},
		{"urlquery growth", `{{ $x := "<<<<<<<<<<<<<<<<" }}` + strings.Repeat(`{{ $x = printf "%s%s" $x $x }}`, 15) + `{{ urlquery $x }}`, "the template's output exceeds 1 MiB"},
		{"many strings built", printfBomb(15) + strings.Repeat(`{{ $y := printf "%s" $x }}`, 40), "builds more than 16 MiB of strings"},
		{"range", `{{ range 1000000000000 }}{{ end }}`, "{{ range }} is not supported"},
		{"recursion", `{{ define "x" }}{{ template "x" }}{{ end }}{{ template "x" }}`, `{{ template "x" }} calls itself`},
		{"indirect recursion in an unused define", `{{ define "a" }}{{ template "b" }}{{ end }}{{ define "b" }}{{ template "a" }}{{ end }}ok`, "calls itself"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, took, err := run(t, c.text, Default, nil)
			if err == nil {
				t.Fatalf("rendered %d bytes", len(out))
			}
			if exitcode.Of(err) != exitcode.Invalid {
				t.Errorf("exit code %d: %v", exitcode.Of(err), err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if !strings.Contains(err.Error(), "bomb.json") {
				t.Errorf("error %q does not name the template", err)
			}
			if took > 3*time.Second {
				t.Errorf("took %s", took)
			}
			if len(err.Error()) > 2000 {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
		})
	}
}

func TestBudgetTime(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	lim := Default
	lim.MaxTime = 200 * time.Millisecond
	_, took, err := run(t, `a{{ slow }}b`, lim, template.FuncMap{"slow": func() string { <-release; return "" }})
	if err == nil || !strings.Contains(err.Error(), "rendering took longer than 200ms") || exitcode.Of(err) != exitcode.Invalid {
		t.Fatalf("err = %v (exit %d)", err, exitcode.Of(err))
	}
	var be *Error
	if !errors.As(err, &be) {
		t.Errorf("not a *tmplbudget.Error: %T", err)
	}
	if took < 200*time.Millisecond || took > time.Second {
		t.Errorf("returned after %s", took)
	}
}

func TestBudgetTimeStopsTheGoroutineAtItsNextWrite(t *testing.T) {
	lim := Default
	lim.MaxTime = 50 * time.Millisecond
	wrote := make(chan error, 1)
	st := &state{lim: lim, name: "x"}
	st.stop.Store(true)
	w := &limitWriter{st: st}
	_, err := w.Write([]byte("a"))
	wrote <- err
	if err := <-wrote; err == nil || !strings.Contains(err.Error(), "took longer") {
		t.Errorf("write after the time is up: %v", err)
	}
	if err := st.build(1); err == nil {
		t.Error("printf after the time is up must fail")
	}
}

func TestExecuteRendersOrdinaryTemplates(t *testing.T) {
	text := `{{ define "port" }}{{ printf "%d" 8000 }}{{ end }}{"a": "{{ v "x" }}", "p": {{ template "port" }}, "q": "{{ urlquery "a b" }}{{ print 1 2 }}{{ html "<" }}{{ js "'" }}", "s": "{{ slice "abcdef" 1 3 }}"{{ if true }}, "i": 1{{ end }}}`
	out, _, err := run(t, text, Default, template.FuncMap{"v": func(s string) string { return "V" + s }})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a": "Vx", "p": 8000, "q": "a+b1 2&lt;\'", "s": "bc", "i": 1}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	// Exactly at the limit is fine.
	lim := Default
	lim.MaxBytes = 10
	if out, _, err := run(t, "0123456789", lim, nil); err != nil || string(out) != "0123456789" {
		t.Errorf("10 bytes at a 10-byte limit: %q, %v", out, err)
	}
	if _, _, err := run(t, "0123456789a", lim, nil); err == nil || !strings.Contains(err.Error(), "exceeds 10 bytes") {
		t.Errorf("11 bytes at a 10-byte limit: %v", err)
	}
	// Parse and execution errors keep text/template's location and exit 2.
	_, _, err = run(t, "{{ .x }}", Default, nil)
	if err == nil || !strings.Contains(err.Error(), "bomb.json:1:3") || exitcode.Of(err) != exitcode.Invalid {
		t.Errorf("missing key: %v", err)
	}
	_, _, err = run(t, "{{ nope }}", Default, nil)
	if err == nil || !strings.Contains(err.Error(), `function "nope" not defined`) || exitcode.Of(err) != exitcode.Invalid {
		t.Errorf("unknown function: %v", err)
	}
}
