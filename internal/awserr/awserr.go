// Package awserr classifies the errors the AWS SDK returns (access denied,
// throttling and other transient failures, not found) and wraps them with
// what was being done, keeping the error itself (%w) so callers can still
// errors.As it. It is the one place these error codes are listed.
package awserr

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// Code is err's AWS error code ("" if err is not an AWS API error).
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Message is err's AWS error message (err's text if it is not an AWS API
// error).
func Message(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return err.Error()
}

// IsAccessDenied says err is AWS refusing the call for lack of permission.
// The codes differ by service: AccessDeniedException (JSON protocols such as
// ECS, ECR, logs), AccessDenied (query protocols such as IAM and STS),
// UnauthorizedOperation (EC2) and UnauthorizedException.
func IsAccessDenied(err error) bool {
	switch Code(err) {
	case "AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "UnauthorizedException":
		return true
	}
	return false
}

// IsUnavailable says the call is denied or not offered at all (an API an
// account, region or emulator does not have): the caller should do without.
func IsUnavailable(err error) bool {
	switch Code(err) {
	case "UnknownOperationException", "InvalidAction":
		return true
	}
	return IsAccessDenied(err)
}

// IsThrottling says AWS asked the caller to slow down.
func IsThrottling(err error) bool {
	switch Code(err) {
	case "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded":
		return true
	}
	return false
}

// IsTransient says err is worth retrying: throttling, a 5xx answer, a
// timeout or a connection error (the SDK's own retryables).
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if IsThrottling(err) {
		return true
	}
	switch Code(err) {
	case "ServerException", "InternalServerException", "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException":
		return true
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	return retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary
}

// IsNotFound says the resource named in the call does not exist.
func IsNotFound(err error) bool {
	c := Code(err)
	return strings.HasSuffix(c, "NotFoundException") || c == "ParameterNotFound"
}

// Wrap says what was being done when err happened; access denied gets the
// hint to grant the action. err stays in the chain (%w).
func Wrap(what string, err error) error {
	if IsAccessDenied(err) {
		return fmt.Errorf("%s: access denied: %w; grant this IAM action to the identity running ctjdeploy (see `ctjdeploy ENV iam-policy`)", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
