package safego

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
	"github.com/hackforla/ctjdeploy/internal/report"
)

func TestRecoverMasksAndFails(t *testing.T) {
	const secret = "hunter2-very-secret-token"
	report.AddSecret(secret)
	var err error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer Recover("pushing django", func(e error) { err = e })
		panic("bad token " + secret)
	}()
	wg.Wait()
	if err == nil {
		t.Fatal("the panic was not turned into an error")
	}
	if exitcode.Of(err) != exitcode.Failed {
		t.Errorf("exit %d, want 1", exitcode.Of(err))
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("the secret is in the message: %v", err)
	}
	for _, want := range []string{"pushing django", "panic: bad token", "safego_test.go"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q not in %v", want, err)
		}
	}
}

func TestGo(t *testing.T) {
	if err := <-Go("x", func() error { return nil }); err != nil {
		t.Errorf("nil error became %v", err)
	}
	e := errors.New("plain")
	if err := <-Go("x", func() error { return e }); err != e {
		t.Errorf("error became %v", err)
	}
	var m map[string]int
	err := <-Go("writing the map", func() error { m["a"] = 1; return nil })
	if err == nil || !strings.Contains(err.Error(), "assignment to entry in nil map") || exitcode.Of(err) != exitcode.Failed {
		t.Errorf("got %v", err)
	}
}
