package report

import (
	"bytes"
	"errors"
	"testing"
)

func TestPhaseEvents(t *testing.T) {
	var rec Recorder
	p := Begin(&rec, "push")
	p.Line("django", "layer 1")
	p.Warnf("tag %s is immutable", "stage")
	p.Progress("django", 5, 10, "bytes")
	err := p.End(errors.New("boom"))
	ev := rec.All()
	if len(ev) != 5 {
		t.Fatalf("got %d events", len(ev))
	}
	kinds := []Kind{PhaseStart, Line, Warn, Progress, PhaseEnd}
	for i, k := range kinds {
		if ev[i].Kind != k || ev[i].Phase != "push" {
			t.Errorf("event %d = %v/%s, want %v/push", i, ev[i].Kind, ev[i].Phase, k)
		}
	}
	if ev[2].Message != "tag stage is immutable" || ev[1].Subject != "django" || ev[3].Count.Done != 5 {
		t.Errorf("contents: %+v", ev)
	}
	if ev[4].Err == nil || err == nil {
		t.Error("End must carry and return the error")
	}
}

func TestMask(t *testing.T) {
	AddSecret("hunter22-secret")
	AddSecret("hunter22")
	AddSecret("Qx") // short: masked only as a whole token (mask_test.go)
	if got := Mask("pw=hunter22-secret and hunter22 Qx aQxb"); got != "pw=*** and *** *** aQxb" {
		t.Errorf("Mask = %q", got)
	}
	var b bytes.Buffer
	w := MaskWriter(&b)
	n, err := w.Write([]byte("token hunter22\n"))
	if err != nil || n != len("token hunter22\n") {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if b.String() != "token ***\n" {
		t.Errorf("MaskWriter wrote %q", b.String())
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 1089997: "1.0 MiB", 211914965: "202.1 MiB", 3 << 30: "3.0 GiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
