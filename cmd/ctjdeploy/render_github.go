package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hackforla/ctjdeploy/internal/report"
)

// githubRenderer renders events for a GitHub Actions job log (selected when
// GITHUB_ACTIONS=true): one ::group:: per phase, ::error:: when a phase
// fails, ::warning:: for warnings, and ::add-mask:: for every registered
// secret before anything else is printed.
//
// Two writers: w is stderr behind the secret mask (everything goes there),
// raw is the same stderr without the mask, used for ::add-mask:: lines only,
// because those must hand the raw value to the runner (through the mask they
// would read "::add-mask::***" and mask nothing).
//
// Plain text (build output, service events) is untrusted: a line starting
// with "::" would be a workflow command. Plain text is therefore printed
// between ::stop-commands::TOKEN and ::TOKEN::, and the renderer resumes
// command processing only for its own commands.
type githubRenderer struct {
	mu     sync.Mutex
	w      io.Writer
	raw    io.Writer
	token  string          // stop-commands token
	paused bool            // command processing is stopped
	masked map[string]bool // secrets already announced with ::add-mask::
	open   string          // the phase whose group is open
	phases []ghPhase
	starts map[string]time.Time
	// progress lines are throttled: at most one per subject every
	// progressEvery, plus the final one (Done == Total).
	progressEvery time.Duration
	lastProgress  map[string]time.Time
	now           func() time.Time
	verbose       bool // every build line (--verbose)
	builds        *buildFold
	planShown     bool
	bars          []ghBar // the run's timeline, for the summary's Mermaid gantt
	state         int     // index in bars of the deployment state still open, or -1
}

func newGitHubRenderer(masked, raw io.Writer) *githubRenderer {
	return &githubRenderer{
		w:             masked,
		raw:           raw,
		token:         randomToken(),
		masked:        map[string]bool{},
		starts:        map[string]time.Time{},
		progressEvery: 10 * time.Second,
		lastProgress:  map[string]time.Time{},
		now:           time.Now,
		builds:        newBuildFold(),
		state:         -1,
	}
}

func randomToken() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return fmt.Sprintf("ctjdeploy-%d", time.Now().UnixNano())
	}
	return "ctjdeploy-" + hex.EncodeToString(b)
}

// ghEscapeData escapes the message part of a workflow command.
func ghEscapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// ghEscapeProperty escapes a property value (title=...) of a workflow command.
func ghEscapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// command writes a workflow command through the mask. msg is masked before it
// is escaped, so that escaping cannot split a secret the mask would find.
func (g *githubRenderer) command(name, props, msg string) {
	g.resume()
	line := "::" + name
	if props != "" {
		line += " " + props
	}
	fmt.Fprintf(g.w, "%s::%s\n", line, ghEscapeData(report.Mask(msg)))
}

// text writes untrusted plain text with command processing stopped.
func (g *githubRenderer) text(s string) {
	if !g.paused {
		fmt.Fprintf(g.w, "::stop-commands::%s\n", g.token)
		g.paused = true
	}
	fmt.Fprintln(g.w, strings.TrimRight(s, "\n"))
}

func (g *githubRenderer) resume() {
	if g.paused {
		fmt.Fprintf(g.w, "::%s::\n", g.token)
		g.paused = false
	}
}

// addMasks announces secrets registered since the last call. Each line of a
// multi-line secret is announced on its own: the runner masks line by line.
func (g *githubRenderer) addMasks() {
	for _, v := range report.SecretValues() {
		if g.masked[v] {
			continue
		}
		g.masked[v] = true
		for _, line := range strings.Split(v, "\n") {
			line = strings.TrimRight(line, "\r")
			if len(line) < 4 { // as report.AddSecret: too short to mask usefully
				continue
			}
			g.resume()
			fmt.Fprintf(g.raw, "::add-mask::%s\n", ghEscapeData(line))
		}
	}
}

// Report renders one event.
func (g *githubRenderer) Report(e report.Event) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.addMasks()
	switch e.Kind {
	case report.PhaseStart:
		if g.open != "" {
			g.command("endgroup", "", "") // GitHub does not nest groups
		}
		g.command("group", "", e.Phase)
		g.open = e.Phase
		g.starts[e.Phase] = e.Time
	case report.PhaseEnd:
		secs, ok := e.Fields["seconds"].(float64)
		if !ok {
			if t, started := g.starts[e.Phase]; started && !e.Time.IsZero() {
				secs = e.Time.Sub(t).Seconds()
			}
		}
		g.phases = append(g.phases, ghPhase{Name: e.Phase, Seconds: secs, Failed: e.Err != nil, Start: g.starts[e.Phase], End: e.Time})
		g.timelinePhaseEnd(e, secs)
		if e.Phase == "build" {
			if e.Err != nil && !g.verbose {
				for _, l := range g.builds.failed(e.Err.Error()) {
					g.text(l)
				}
			}
			g.builds = newBuildFold()
		}
		if e.Fields == nil {
			e.Fields = map[string]any{}
		}
		e.Fields["seconds"] = secs
		g.text(phaseLine(e))
		if g.open == e.Phase {
			g.command("endgroup", "", "")
			g.open = ""
		}
		if e.Err != nil {
			g.command("error", "title="+ghEscapeProperty("ctjdeploy: "+e.Phase+" failed"), e.Err.Error())
		}
	case report.Warn:
		title := "ctjdeploy"
		if e.Phase != "" {
			title += ": " + e.Phase
		}
		g.command("warning", "title="+ghEscapeProperty(title), e.Message)
	case report.Line:
		if e.Phase == "build" && !g.verbose {
			g.builds.add(e.Subject, e.Message)
			return
		}
		if e.Subject != "" {
			g.text("[" + e.Subject + "] " + e.Message)
		} else {
			g.text(e.Message)
		}
	case report.Progress:
		if e.Count == nil {
			return
		}
		key := e.Phase + "\x00" + e.Subject
		now := g.now()
		final := e.Count.Total > 0 && e.Count.Done >= e.Count.Total
		if final && e.Count.Unit == "bytes" {
			return // the push's own line says what was uploaded
		}
		if last, ok := g.lastProgress[key]; ok && !final && now.Sub(last) < g.progressEvery {
			return
		}
		g.lastProgress[key] = now
		g.text(progressText(e))
	default:
		if isPlanEvent(e) {
			g.planShown = true
		}
		g.timelineInfo(e)
		if img, _ := e.Fields["image"].(string); img != "" && e.Phase == "build" && !g.verbose {
			for _, l := range g.builds.built(img, e.Message) {
				g.text(l)
			}
			return
		}
		if e.Message != "" {
			g.text(e.Message)
		}
	}
}

// ghBar is one bar of the summary's gantt: a phase, an image's build or
// push, a state of the service deployment as ECS reported it.
type ghBar struct {
	Section    string
	Name       string
	Start, End time.Time
	Failed     bool
}

// timelinePhaseEnd adds the bar of a phase that ended, and closes the
// deployment state still open when the phase that followed it ends.
func (g *githubRenderer) timelinePhaseEnd(e report.Event, secs float64) {
	end := e.Time
	start := g.starts[e.Phase]
	if start.IsZero() && !end.IsZero() {
		start = end.Add(-time.Duration(secs * float64(time.Second)))
	}
	if g.state >= 0 {
		g.bars[g.state].End = end
		g.state = -1
	}
	g.bars = append(g.bars, ghBar{Section: "phases", Name: e.Phase, Start: start, End: end, Failed: e.Err != nil})
}

// timelineInfo adds the bars an information event ends or starts: an
// image built (its seconds) or pushed, a service deployment state.
func (g *githubRenderer) timelineInfo(e report.Event) {
	if e.Time.IsZero() {
		return
	}
	img, _ := e.Fields["image"].(string)
	switch {
	case e.Phase == "build" && img != "":
		secs, _ := e.Fields["seconds"].(float64)
		g.bars = append(g.bars, ghBar{Section: "build", Name: img, Start: e.Time.Add(-time.Duration(secs * float64(time.Second))), End: e.Time})
	case e.Phase == "push" && img != "":
		g.bars = append(g.bars, ghBar{Section: "push", Name: img, Start: g.starts["push"], End: e.Time})
	default:
		m := sdStateRE.FindStringSubmatch(e.Message)
		if m == nil {
			return
		}
		if g.state >= 0 {
			if g.bars[g.state].Name == m[1] {
				return // the same state again
			}
			g.bars[g.state].End = e.Time
		}
		failed := strings.Contains(m[1], "ROLLBACK") || strings.Contains(m[1], "FAILED") || strings.Contains(m[1], "STOPPED")
		g.bars = append(g.bars, ghBar{Section: "ECS service deployment", Name: m[1], Start: e.Time, End: e.Time, Failed: failed})
		g.state = len(g.bars) - 1
	}
}

// Timeline returns the bars of the run so far.
func (g *githubRenderer) Timeline() []ghBar {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]ghBar(nil), g.bars...)
}

// ghRenderer is the GitHub renderer r is or stands in front of (through
// the event recorder and sayOnce), nil when r is another renderer.
func ghRenderer(r report.Reporter) *githubRenderer {
	if o := onceOf(r); o != nil {
		r = o.next
	}
	g, _ := unwrapRecorder(r).(*githubRenderer)
	return g
}

// ghTimeline is the timeline recorded by r when r is (in front of) the
// GitHub renderer.
func ghTimeline(r report.Reporter) []ghBar {
	if g := ghRenderer(r); g != nil {
		return g.Timeline()
	}
	return nil
}

// mermaidName makes s safe as a gantt task or section name (":" and "#"
// end a name in Mermaid's grammar, ";" a statement).
func mermaidName(s string) string {
	return strings.TrimSpace(strings.NewReplacer(":", " ", "#", " ", ";", " ", "\n", " ", "`", "'").Replace(s))
}

// ghGantt renders bars as a Mermaid gantt (GitHub renders ```mermaid
// blocks in job summaries): one section per kind of bar, times in
// milliseconds since the epoch (dateFormat x), each bar named with its
// duration; failed phases and rollback states are "crit".
func ghGantt(title string, bars []ghBar) string {
	if len(bars) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("```mermaid\ngantt\n")
	fmt.Fprintf(&b, "  title %s\n", mermaidName(title))
	b.WriteString("  dateFormat x\n  axisFormat %M:%S\n")
	for _, section := range []string{"phases", "build", "push", "ECS service deployment"} {
		first := true
		for i, bar := range bars {
			if bar.Section != section {
				continue
			}
			if first {
				fmt.Fprintf(&b, "  section %s\n", section)
				first = false
			}
			start, end := bar.Start.UnixMilli(), bar.End.UnixMilli()
			if end <= start {
				end = start + 1 // Mermaid draws nothing for an empty bar
			}
			tag := "done"
			if bar.Failed {
				tag = "crit"
			}
			fmt.Fprintf(&b, "  %s %.1fs :%s, t%d, %d, %d\n", mermaidName(bar.Name), bar.End.Sub(bar.Start).Seconds(), tag, i, start, end)
		}
	}
	b.WriteString("```\n\n")
	return b.String()
}

// PlanShown says whether the plan was printed (so the end does not print it
// again).
func (g *githubRenderer) PlanShown() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.planShown
}

// Phases returns the phases ended so far with their durations, in order.
func (g *githubRenderer) Phases() []ghPhase {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]ghPhase(nil), g.phases...)
}

// ghPhases returns the phase timings recorded by r when r is the GitHub
// renderer, and nil otherwise.
func ghPhases(r report.Reporter) []ghPhase {
	if g := ghRenderer(r); g != nil {
		return g.Phases()
	}
	return nil
}

// ghResult is what a deploy (or rollback) did, for the step outputs and the
// job summary. Every string may hold a secret: writeGitHubResult masks them.
type ghResult struct {
	Env               string    // environment name (stage)
	Commit            string    // commit deployed (full SHA), if known
	Tag               string    // image tag
	Images            []ghImage // one per image of the environment
	TaskDefinitionARN string    // the revision the service runs (or would run)
	Registered        bool      // a new revision was registered (false: unchanged)
	Outcome           string    // deployed, unchanged, dry-run, rolled-back, timed-out, refused, failed
	Message           string    // one line: why (the error, the guard's verdict), if any
	Diff              string    // unified diff of the task definition, masked
	Events            []string  // service events seen while following the rollout
	Phases            []ghPhase // time per phase (see ghPhases)
	Timeline          []ghBar   // the run's bars for the gantt (see ghTimeline)
	URL               string    // the environment's address (url: or the first smoke URL)
	Smoke             []ghSmoke // smoke check results
	Stopped           []ghStopped
}

// ghStopped is a container of a stopped task, with its last log lines.
type ghStopped struct {
	Task, Container, Exit, Reason string
	Logs                          []string
}

// ghSmoke is one smoke check's result.
type ghSmoke struct {
	URL     string
	OK      bool
	Status  int
	Tries   int
	Seconds float64
	Error   string
}

// ghImage is one image of a deploy.
type ghImage struct {
	Name        string // name in the config (django, next)
	Ref         string // REGISTRY/REPOSITORY@sha256:...
	Digest      string // sha256:...
	PushedBytes int64  // uploaded by this run
	ReusedBytes int64  // already in the registry
}

// ghPhase is the duration of one phase.
type ghPhase struct {
	Name       string
	Seconds    float64
	Failed     bool
	Start, End time.Time // when it began and ended (zero if unknown)
}

// writeGitHubResult appends the step outputs to $GITHUB_OUTPUT and the job
// summary to $GITHUB_STEP_SUMMARY (each only when its variable is set).
// getenv is os.Getenv in production.
func writeGitHubResult(getenv func(string) string, r ghResult) error {
	var errs []error
	if path := getenv("GITHUB_OUTPUT"); path != "" {
		if err := appendFile(path, ghOutputs(r)); err != nil {
			errs = append(errs, fmt.Errorf("writing step outputs to $GITHUB_OUTPUT (%s): %w", path, err))
		}
	}
	if path := getenv("GITHUB_STEP_SUMMARY"); path != "" {
		if err := appendFile(path, ghSummary(r)); err != nil {
			errs = append(errs, fmt.Errorf("writing the job summary to $GITHUB_STEP_SUMMARY (%s): %w", path, err))
		}
	}
	return errors.Join(errs...)
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ghOutputs renders the step outputs: tag, commit, outcome,
// task-definition-arn, task-definition-registered, url (when the
// environment has one: the job's environment links it), and per image
// image-NAME (the pinned reference) and digest-NAME.
func ghOutputs(r ghResult) string {
	var b strings.Builder
	put := func(name, value string) {
		value = report.Mask(value)
		if !strings.ContainsAny(value, "\r\n") {
			fmt.Fprintf(&b, "%s=%s\n", name, value)
			return
		}
		delim := "ghadelimiter_" + randomToken()
		for strings.Contains(value, delim) {
			delim = "ghadelimiter_" + randomToken()
		}
		fmt.Fprintf(&b, "%s<<%s\n%s\n%s\n", name, delim, value, delim)
	}
	put("tag", r.Tag)
	put("commit", r.Commit)
	put("outcome", r.Outcome)
	if r.Message != "" {
		put("message", r.Message)
	}
	put("task-definition-arn", r.TaskDefinitionARN)
	put("task-definition-registered", fmt.Sprint(r.Registered))
	if r.URL != "" {
		put("url", r.URL)
	}
	for _, im := range sortedImages(r.Images) {
		put("image-"+im.Name, im.Ref)
		put("digest-"+im.Name, im.Digest)
	}
	return b.String()
}

func sortedImages(in []ghImage) []ghImage {
	out := append([]ghImage(nil), in...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

var outcomeIcon = map[string]string{
	"deployed":    "✅",
	"unchanged":   "✅",
	"dry-run":     "📝",
	"rolled-back": "❌",
	"timed-out":   "⏱️",
	"refused":     "⛔",
	"failed":      "❌",
}

// ghSummary renders the job summary (GitHub-flavored markdown), masked.
func ghSummary(r ghResult) string {
	var b strings.Builder
	env := r.Env
	if env == "" {
		env = "deploy"
	}
	ghSummaryHead(&b, r, env)
	ghSummaryStopped(&b, r.Stopped)
	ghSummarySmoke(&b, r.Smoke)
	ghSummaryImages(&b, r.Images)
	ghSummaryDiff(&b, r.Diff)
	ghSummaryRollout(&b, r)
	if g := ghGantt("ctjdeploy "+env+": "+r.Outcome, r.Timeline); g != "" {
		b.WriteString("### Timeline\n\n")
		b.WriteString(g)
	}
	ghSummaryPhases(&b, r.Phases)
	return report.Mask(b.String())
}

// ghSummaryHead is the summary's title, message and commit table.
func ghSummaryHead(b *strings.Builder, r ghResult, env string) {
	icon := outcomeIcon[r.Outcome]
	if icon == "" {
		icon = "ℹ️"
	}
	fmt.Fprintf(b, "## %s ctjdeploy %s: %s\n\n", icon, mdCell(env), mdCell(r.Outcome))
	if r.Message != "" {
		fmt.Fprintf(b, "%s\n\n", mdCell(messageHead(r.Message)))
	}
	b.WriteString("| | |\n|---|---|\n")
	if r.Commit != "" {
		fmt.Fprintf(b, "| Commit | `%s` |\n", mdCode(r.Commit))
	}
	if r.Tag != "" {
		fmt.Fprintf(b, "| Tag | `%s` |\n", mdCode(r.Tag))
	}
	if r.TaskDefinitionARN != "" {
		state := "unchanged"
		if r.Registered {
			state = "new revision"
		}
		fmt.Fprintf(b, "| Task definition | `%s` (%s) |\n", mdCode(r.TaskDefinitionARN), state)
	}
	b.WriteString("\n")
}

// ghSummaryStopped is the stopped containers with their last log lines.
func ghSummaryStopped(b *strings.Builder, stopped []ghStopped) {
	if len(stopped) == 0 {
		return
	}
	b.WriteString("### Stopped containers\n\n")
	for _, c := range stopped {
		fmt.Fprintf(b, "**%s** in task `%s`: %s %s\n\n", mdCell(c.Container), mdCode(c.Task), mdCell(c.Exit), mdCell(c.Reason))
		if len(c.Logs) > 0 {
			fence := "```"
			for strings.Contains(strings.Join(c.Logs, "\n"), fence) {
				fence += "`"
			}
			fmt.Fprintf(b, "%stext\n%s\n%s\n\n", fence, report.Mask(strings.Join(c.Logs, "\n")), fence)
		}
	}
}

// ghSummarySmoke is the smoke checks' table.
func ghSummarySmoke(b *strings.Builder, smoke []ghSmoke) {
	if len(smoke) == 0 {
		return
	}
	b.WriteString("### Smoke checks\n\n| URL | Result | Status | Tries | Time |\n|---|---|---:|---:|---:|\n")
	for _, c := range smoke {
		res := "✅ passed"
		if !c.OK {
			res = "❌ " + mdCell(c.Error)
		}
		fmt.Fprintf(b, "| %s | %s | %d | %d | %.1f s |\n", mdCell(c.URL), res, c.Status, c.Tries, c.Seconds)
	}
	b.WriteString("\n")
}

// ghSummaryImages is the pinned images and the bytes pushed and reused.
func ghSummaryImages(b *strings.Builder, images []ghImage) {
	if len(images) == 0 {
		return
	}
	var pushed, reused int64
	b.WriteString("### Images\n\n| Image | Pinned reference | Pushed | Reused |\n|---|---|---:|---:|\n")
	for _, im := range sortedImages(images) {
		ref := im.Ref
		if ref == "" {
			ref = im.Digest
		}
		fmt.Fprintf(b, "| %s | `%s` | %s | %s |\n", mdCell(im.Name), mdCode(ref), report.HumanBytes(im.PushedBytes), report.HumanBytes(im.ReusedBytes))
		pushed += im.PushedBytes
		reused += im.ReusedBytes
	}
	fmt.Fprintf(b, "| **total** | | **%s** | **%s** |\n\n", report.HumanBytes(pushed), report.HumanBytes(reused))
}

// ghSummaryDiff is the task definition diff.
func ghSummaryDiff(b *strings.Builder, diff string) {
	b.WriteString("### Task definition diff\n\n")
	if strings.TrimSpace(diff) == "" {
		b.WriteString("No change: the live revision already matches.\n\n")
		return
	}
	fence := mdFence(diff)
	fmt.Fprintf(b, "%sdiff\n%s\n%s\n\n", fence, strings.TrimRight(diff, "\n"), fence)
}

// ghSummaryRollout is the rollout's result and its service events.
func ghSummaryRollout(b *strings.Builder, r ghResult) {
	b.WriteString("### Rollout\n\n")
	fmt.Fprintf(b, "Result: **%s**\n\n", mdCell(r.Outcome))
	if len(r.Events) > 0 {
		b.WriteString("Service events:\n\n")
		for _, ev := range r.Events {
			fmt.Fprintf(b, "- %s\n", mdCell(ev))
		}
		b.WriteString("\n")
	}
}

// ghSummaryPhases is the time per phase.
func ghSummaryPhases(b *strings.Builder, phases []ghPhase) {
	if len(phases) == 0 {
		return
	}
	var total float64
	b.WriteString("### Time per phase\n\n| Phase | Time | |\n|---|---:|---|\n")
	for _, p := range phases {
		mark := ""
		if p.Failed {
			mark = "failed"
		}
		fmt.Fprintf(b, "| %s | %.1fs | %s |\n", mdCell(p.Name), p.Seconds, mark)
		total += p.Seconds
	}
	fmt.Fprintf(b, "| **total** | **%.1fs** | |\n\n", total)
}

// mdCell makes s safe inside a markdown table cell or list item: one line,
// pipes escaped.
func mdCell(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "|", `\|`).Replace(s)
	return strings.TrimSpace(s)
}

// mdCode makes s safe inside `code` in a table cell.
func mdCode(s string) string {
	return strings.ReplaceAll(mdCell(s), "`", "'")
}

// mdFence returns a code fence longer than any run of backticks in s.
func mdFence(s string) string {
	longest, run := 0, 0
	for _, c := range s {
		if c == '`' {
			run++
			if run > longest {
				longest = run
			}
		} else {
			run = 0
		}
	}
	if longest < 3 {
		return "```"
	}
	return strings.Repeat("`", longest+1)
}

// messageHead is an error message without its detail sections (service
// events, stopped tasks, log lines), which the summary shows in sections of
// its own.
func messageHead(msg string) string {
	var keep []string
	for _, ln := range strings.Split(msg, "\n") {
		t := strings.TrimSpace(ln)
		if t == "last service events:" || t == "stopped tasks:" || strings.HasPrefix(t, "last ") && strings.Contains(t, " log line") {
			break
		}
		keep = append(keep, ln)
	}
	return strings.Join(keep, "\n")
}
