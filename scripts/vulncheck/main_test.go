package main

import (
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

const scan = `{"config": {"scanner_version": "v1.9.0", "db": "file:///db", "db_last_modified": "2026-11-05T00:00:00Z"}}
{"progress": {"message": "Scanning your code"}}
{"osv": {"id": "GO-2026-6865", "summary": "Panic on two-block frames in github.com/klauspost/compress"}}
{"osv": {"id": "GO-2026-6603", "summary": "HTTP/2 server memory exhaustion"}}
{"osv": {"id": "GO-2026-0001", "summary": "imported, not reached"}}
{"finding": {"osv": "GO-2026-0001", "fixed_version": "v1.2.3", "trace": [{"module": "example.org/m", "version": "v1.0.0", "package": "example.org/m/p"}]}}
{"finding": {"osv": "GO-2026-6603", "fixed_version": "v1.26.9", "trace": [{"module": "stdlib", "version": "v1.26.8", "package": "net/http", "function": "Do", "receiver": "*Client"}, {"module": "github.com/hackforla/ctjdeploy", "package": "github.com/hackforla/ctjdeploy/deploy/smoke", "function": "Run"}]}}
`

const moduleFinding = `{"finding": {"osv": "GO-2026-6865", "fixed_version": "v1.20.2", "trace": [{"module": "github.com/klauspost/compress", "version": "v1.19.2", "package": "github.com/klauspost/compress/fse", "function": "Decompress"}, {"module": "github.com/hackforla/ctjdeploy", "package": "github.com/hackforla/ctjdeploy/push", "function": "Read"}]}}
`

// Issue 20, finding 10: a vulnerable symbol reached in a module dependency
// fails; one in the standard library, or a vulnerability not reached, is
// reported only.
func TestVulncheckFailsOnlyOnReachedModules(t *testing.T) {
	var out bytes.Buffer
	code, err := run(strings.NewReader(scan), &out)
	if err != nil || code != 0 {
		t.Fatalf("stdlib only: code %d, err %v\n%s", code, err, out.String())
	}
	for _, w := range []string{"std (reported only): GO-2026-6603 stdlib@v1.26.8, fixed in v1.26.9", "net/http.Client.Do", "0 vulnerabilities reached in module dependencies, 1 in the standard library (reported only), 1 in imported or required code but not reached"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	out.Reset()
	code, err = run(strings.NewReader(scan+moduleFinding), &out)
	if err != nil || code != 1 || !strings.Contains(out.String(), "FAIL: GO-2026-6865 github.com/klauspost/compress@v1.19.2, fixed in v1.20.2") || !strings.Contains(out.String(), "fse.Decompress") {
		t.Fatalf("module finding: code %d, err %v\n%s", code, err, out.String())
	}
	if _, err := run(strings.NewReader(""), &out); err == nil {
		t.Error("no govulncheck output must be an error")
	}
	if _, err := run(strings.NewReader("{not json"), &out); err == nil {
		t.Error("broken JSON must be an error")
	}
}

// Issue 20, finding 10: the module graph carries klauspost/compress at 1.20.2
// or later (GO-2026-6865).
func TestCompressPastKnownFix(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-mod=readonly", "-m", "-f", "{{.Version}}", "github.com/klauspost/compress").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	parts := strings.SplitN(v, ".", 3)
	num := func(i int) int {
		n, _ := strconv.Atoi(strings.FieldsFunc(parts[i], func(r rune) bool { return r < '0' || r > '9' })[0])
		return n
	}
	if len(parts) < 3 || num(0) < 1 || (num(0) == 1 && (num(1) < 20 || num(1) == 20 && num(2) < 2)) {
		t.Fatalf("github.com/klauspost/compress v%s: GO-2026-6865 is fixed in v1.20.2", v)
	}
}
