// Package leasetest is an in-memory SSM Parameter Store for tests of the
// deploy lock (internal/lease).
package leasetest

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// FakeSSM is Parameter Store (in memory)'s versions as documented: each put is the
// next version, NAME:VERSION reads a retained one, 100 are retained.
type FakeSSM struct {
	mu       sync.Mutex
	params   map[string][]ssmtypes.Parameter
	FailPuts atomic.Bool
}

func (f *FakeSSM) PutParameter(_ context.Context, in *ssm.PutParameterInput, _ ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	if f.FailPuts.Load() {
		return nil, errors.New("injected failure")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	vs := f.params[*in.Name]
	if len(vs) > 0 && !aws.ToBool(in.Overwrite) {
		return nil, &ssmtypes.ParameterAlreadyExists{Message: aws.String("The parameter already exists.")}
	}
	if f.params == nil {
		f.params = map[string][]ssmtypes.Parameter{}
	}
	v := int64(1)
	if len(vs) > 0 {
		v = vs[len(vs)-1].Version + 1
	}
	now := time.Now()
	vs = append(vs, ssmtypes.Parameter{Name: in.Name, Value: in.Value, Version: v, LastModifiedDate: &now})
	if len(vs) > 100 {
		vs = vs[1:]
	}
	f.params[*in.Name] = vs
	return &ssm.PutParameterOutput{Version: v}, nil
}

func (f *FakeSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name, sel, _ := strings.Cut(*in.Name, ":")
	vs := f.params[name]
	if len(vs) == 0 {
		return nil, &ssmtypes.ParameterNotFound{}
	}
	if sel == "" {
		p := vs[len(vs)-1]
		return &ssm.GetParameterOutput{Parameter: &p}, nil
	}
	n, _ := strconv.ParseInt(sel, 10, 64)
	for _, p := range vs {
		if p.Version == n {
			return &ssm.GetParameterOutput{Parameter: &p}, nil
		}
	}
	return nil, &ssmtypes.ParameterVersionNotFound{}
}

// Puts counts the puts.
func (f *FakeSSM) Puts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, vs := range f.params {
		n += len(vs)
	}
	return n
}

// Delete is a person's aws ssm delete-parameter.
func (f *FakeSSM) Delete(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.params, name)
}

// Put writes a raw value (an older ctjdeploy's record, a person's).
func (f *FakeSSM) Put(t testing.TB, name string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if _, err := f.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(string(b)), Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
}
