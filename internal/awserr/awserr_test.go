package awserr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
)

func TestClassify(t *testing.T) {
	for code, want := range map[string][3]bool{ // access denied, transient, not found
		"AccessDeniedException":    {true, false, false},
		"AccessDenied":             {true, false, false},
		"UnauthorizedOperation":    {true, false, false},
		"ThrottlingException":      {false, true, false},
		"ServiceUnavailable":       {false, true, false},
		"ServiceNotFoundException": {false, false, true},
		"ParameterNotFound":        {false, false, true},
		"ClientException":          {false, false, false},
	} {
		err := fmt.Errorf("op: %w", &smithy.GenericAPIError{Code: code, Message: "m"})
		got := [3]bool{IsAccessDenied(err), IsTransient(err), IsNotFound(err)}
		if got != want {
			t.Errorf("%s: got %v, want %v", code, got, want)
		}
	}
	if IsAccessDenied(errors.New("AccessDenied")) {
		t.Error("a plain error is not an API error")
	}
	if !IsTransient(context.DeadlineExceeded) {
		t.Error("a timeout is transient")
	}
}

func TestWrapKeepsTheError(t *testing.T) {
	denied := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "no"}
	err := Wrap("reading service s (ecs:DescribeServices)", denied)
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
		t.Fatalf("Wrap dropped the AWS error: %v", err)
	}
	if !strings.Contains(err.Error(), "access denied") || !strings.Contains(err.Error(), "iam-policy") {
		t.Errorf("no hint: %v", err)
	}
	if Code(errors.New("x")) != "" || Message(denied) != "no" {
		t.Error("Code/Message")
	}
}
