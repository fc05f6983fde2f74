// Package tmplbudget is the one renderer of text/templates that every
// ctjdeploy command uses (deploy's task definition template, iam-policy's
// probe of it). It bounds what a template can cost, so that a hostile or
// mistaken template (a pull request can change it) fails fast with exit 2
// instead of running for minutes or building gigabytes:
//
//   - output: at most MaxBytes (1 MiB) are written; the writer fails at the
//     first byte over, and text/template stops at the first write error;
//   - strings built without being written: printf, print, println, html,
//     js and urlquery are replaced by versions that refuse a result over
//     MaxBytes before building it, and count what they build in total
//     (MaxBuilt, 16 MiB), so `{{ $x = printf "%s%s" $x $x }}` repeated
//     fails at once;
//   - work: {{ range }} is refused (a template has nothing to iterate over,
//     and `range 1000000000` spins without writing), so is a {{ template }}
//     that calls itself, directly or not; with neither, execution is
//     finite, and the actions it can run (with every {{ template }} call
//     expanded) are counted before it starts: over MaxActions (200000) the
//     template is refused (a define/template fan-out bomb);
//   - time: Execute gives up after MaxTime (2 s).
package tmplbudget

import (
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

// Limits bounds one rendering.
type Limits struct {
	MaxBytes   int           // the output, and any one string the template builds
	MaxBuilt   int           // all strings built by printf & co., together
	MaxActions int           // actions, with {{ template }} calls expanded
	MaxTime    time.Duration // wall time of Execute
}

// Default are the limits every command uses.
var Default = Limits{MaxBytes: 1 << 20, MaxBuilt: 16 << 20, MaxActions: 200000, MaxTime: 2 * time.Second}

// Error is a budget exceeded. Execute returns it wrapped with exit code 2
// (errors.As finds it). Its message never holds a value the template
// computed.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

func humanSize(n int) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Execute parses text as the template name (its file name, used in every
// error) with funcs, checks it (no range, no recursion, at most MaxActions
// actions) and executes it with data under lim. Parse and execution errors
// are text/template's (template: NAME:LINE:COL: ...); a budget exceeded is
// an *Error. Every error has exit code 2.
func Execute(name, text string, funcs template.FuncMap, data any, lim Limits) ([]byte, error) {
	st := &state{lim: lim, name: name}
	all := template.FuncMap{}
	for k, v := range funcs {
		all[k] = v
	}
	for k, v := range st.builtins() {
		all[k] = v
	}
	t, err := template.New(name).Option("missingkey=error").Funcs(all).Parse(text)
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Invalid, err)
	}
	if err := check(t, lim); err != nil {
		return nil, err
	}
	w := &limitWriter{st: st}
	done := make(chan error, 1)
	// text/template cannot be stopped from outside: when the time is up the
	// goroutine goes on until its next write or next printf-like call (both
	// check st.stop and fail), or to its end. The checks above make that
	// end finite, and the size limits bound the memory it can take
	// meanwhile (MaxBytes for the output, MaxBuilt for the strings built).
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("template: %s: rendering failed: %v", name, p)
			}
		}()
		done <- t.Execute(w, data)
	}()
	timer := time.NewTimer(lim.MaxTime)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			// text/template's message: template: NAME:LINE:COL: ...
			return nil, exitcode.Wrap(exitcode.Invalid, err)
		}
		return []byte(w.buf.String()), nil
	case <-timer.C:
		st.stop.Store(true)
		return nil, exitcode.Wrap(exitcode.Invalid, &Error{fmt.Sprintf("template %s: rendering took longer than %s; the template must be a plain document with a few actions (a {{ template }} fan-out or a loop building strings is refused)", name, lim.MaxTime)})
	}
}

type state struct {
	lim   Limits
	name  string
	built atomic.Int64
	stop  atomic.Bool
}

func (s *state) tooBig() error {
	return &Error{fmt.Sprintf("template %s: the template's output exceeds %s; a task definition is far smaller: look for a {{ template }} called many times or a string doubled by printf", s.name, humanSize(s.lim.MaxBytes))}
}

func (s *state) timeUp() error {
	return &Error{fmt.Sprintf("template %s: rendering took longer than %s", s.name, s.lim.MaxTime)}
}

// build accounts for a string of n bytes about to be built.
func (s *state) build(n int) error {
	if s.stop.Load() {
		return s.timeUp()
	}
	if n > s.lim.MaxBytes {
		return s.tooBig()
	}
	if s.built.Add(int64(n)) > int64(s.lim.MaxBuilt) {
		return &Error{fmt.Sprintf("template %s: the template builds more than %s of strings (printf, print, html, js, urlquery); look for a string doubled again and again", s.name, humanSize(s.lim.MaxBuilt))}
	}
	return nil
}

type limitWriter struct {
	st  *state
	buf strings.Builder
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.st.stop.Load() {
		return 0, l.st.timeUp()
	}
	if l.buf.Len()+len(p) > l.st.lim.MaxBytes {
		return 0, l.st.tooBig()
	}
	return l.buf.Write(p)
}

var _ io.Writer = (*limitWriter)(nil)

// argSize is an upper bound of what fmt prints for args (without widths).
func argSize(args []any) int {
	n := 0
	for _, a := range args {
		switch a := a.(type) {
		case string:
			n += len(a)
		case []byte:
			n += 2 * len(a)
		default:
			n += 64
		}
	}
	return n
}

// formatSize bounds the padding a format asks for: every number in it (a
// width or precision), and every int argument when it has a '*'.
func formatSize(format string, args []any) int {
	n, cur := 0, 0
	for i := 0; i <= len(format); i++ {
		if i < len(format) && '0' <= format[i] && format[i] <= '9' {
			cur = cur*10 + int(format[i]-'0')
			if cur > 1<<30 {
				cur = 1 << 30
			}
			continue
		}
		n += cur
		cur = 0
	}
	if strings.Contains(format, "*") {
		for _, a := range args {
			switch a := a.(type) {
			case int:
				if a < 0 {
					a = -a
				}
				n += a
			case int64:
				if a < 0 {
					a = -a
				}
				n += int(min(a, 1<<30))
			}
		}
	}
	return n
}

func (s *state) builtins() template.FuncMap {
	return template.FuncMap{
		"printf": func(format string, args ...any) (string, error) {
			if err := s.build(len(format) + formatSize(format, args) + argSize(args)); err != nil {
				return "", err
			}
			return fmt.Sprintf(format, args...), nil
		},
		"print": func(args ...any) (string, error) {
			if err := s.build(argSize(args)); err != nil {
				return "", err
			}
			return fmt.Sprint(args...), nil
		},
		"println": func(args ...any) (string, error) {
			if err := s.build(argSize(args) + len(args) + 1); err != nil {
				return "", err
			}
			return fmt.Sprintln(args...), nil
		},
		// html, js and urlquery grow a string at most 6 times ("\u003c"
		// for "<" in js; "&#34;" in html; "%XX" in urlquery).
		"html": func(args ...any) (string, error) {
			if err := s.build(6 * argSize(args)); err != nil {
				return "", err
			}
			return template.HTMLEscaper(args...), nil
		},
		"js": func(args ...any) (string, error) {
			if err := s.build(6 * argSize(args)); err != nil {
				return "", err
			}
			return template.JSEscaper(args...), nil
		},
		"urlquery": func(args ...any) (string, error) {
			if err := s.build(3 * argSize(args)); err != nil {
				return "", err
			}
			return template.URLQueryEscaper(args...), nil
		},
	}
}

// check refuses {{ range }}, a {{ template }} that calls itself (directly
// or through others) or names no template, and a template whose actions,
// with every {{ template }} call expanded, exceed lim.MaxActions.
func check(t *template.Template, lim Limits) error {
	byName := map[string]*template.Template{}
	for _, tt := range t.Templates() {
		byName[tt.Name()] = tt
	}
	const inProgress = -1
	cost := map[string]int{}
	var errOut error
	var treeCost func(tt *template.Template) int
	var nodeCost func(tt *template.Template, n parse.Node) int
	nodeCost = func(tt *template.Template, n parse.Node) int {
		if errOut != nil || n == nil {
			return 0
		}
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return 0
			}
			c := 0
			for _, x := range n.Nodes {
				c = satAdd(c, nodeCost(tt, x))
			}
			return c
		case *parse.RangeNode:
			loc, _ := tt.ErrorContext(n)
			errOut = exitcode.Invalidf("template: %s: {{ range }} is not supported in a task definition template (there is nothing to iterate over)", loc)
			return 0
		case *parse.IfNode:
			return satAdd(1+len(n.Pipe.Cmds), satAdd(nodeCost(tt, n.List), nodeCost(tt, n.ElseList)))
		case *parse.WithNode:
			return satAdd(1+len(n.Pipe.Cmds), satAdd(nodeCost(tt, n.List), nodeCost(tt, n.ElseList)))
		case *parse.TemplateNode:
			callee, ok := byName[n.Name]
			if !ok || callee.Tree == nil {
				return 1 // text/template reports it when it runs
			}
			c := treeCost(callee)
			if c == inProgress {
				loc, _ := tt.ErrorContext(n)
				errOut = exitcode.Invalidf("template: %s: {{ template %q }} calls itself (directly or through other templates); recursion is not supported in a task definition template", loc, n.Name)
				return 0
			}
			return satAdd(2, c)
		case *parse.ActionNode:
			return 1 + len(n.Pipe.Cmds)
		default:
			return 1
		}
	}
	treeCost = func(tt *template.Template) int {
		if c, ok := cost[tt.Name()]; ok {
			return c
		}
		cost[tt.Name()] = inProgress
		c := nodeCost(tt, tt.Tree.Root)
		cost[tt.Name()] = c
		return c
	}
	c := 0
	if t.Tree != nil {
		c = treeCost(t)
	}
	// Templates that are defined but not called cost nothing, but are
	// checked for range and recursion all the same.
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			treeCost(tt)
		}
	}
	if errOut != nil {
		return errOut
	}
	if c > lim.MaxActions {
		return exitcode.Wrap(exitcode.Invalid, &Error{fmt.Sprintf("template %s: the template expands to more than %d actions (its {{ template }} calls, each expanded); a task definition template needs a few hundred at most: look for templates that call others many times over", t.Name(), lim.MaxActions)})
	}
	return nil
}

func satAdd(a, b int) int {
	if a > 1<<40 || b > 1<<40 {
		return 1 << 41
	}
	return a + b
}
