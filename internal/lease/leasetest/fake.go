// Package leasetest is an in-memory SSM Parameter Store for tests of the
// deploy lock (internal/lease).
package leasetest

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
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

// GetParameterHistory answers every retained version, oldest first, 50
// a page (MaxResults, at most 50).
func (f *FakeSSM) GetParameterHistory(_ context.Context, in *ssm.GetParameterHistoryInput, _ ...func(*ssm.Options)) (*ssm.GetParameterHistoryOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vs := f.params[*in.Name]
	if len(vs) == 0 {
		return nil, &ssmtypes.ParameterNotFound{}
	}
	n := int(aws.ToInt32(in.MaxResults))
	if n <= 0 || n > 50 {
		n = 50
	}
	from, _ := strconv.Atoi(aws.ToString(in.NextToken))
	out := &ssm.GetParameterHistoryOutput{}
	for _, p := range vs[min(from, len(vs)):min(from+n, len(vs))] {
		out.Parameters = append(out.Parameters, ssmtypes.ParameterHistory{Name: p.Name, Value: p.Value, Version: p.Version, LastModifiedDate: p.LastModifiedDate})
	}
	if from+n < len(vs) {
		out.NextToken = aws.String(strconv.Itoa(from + n))
	}
	return out, nil
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
