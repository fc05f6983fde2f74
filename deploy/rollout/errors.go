package rollout

import (
	"errors"
	"fmt"

	"github.com/aws/smithy-go"

	"github.com/hackforla/ctjdeploy/internal/exitcode"
)

func refusedf(format string, args ...any) error { return exitcode.Refusedf(format, args...) }

// awsError wraps an AWS error with what was being done and on which
// resource; access denied gets the hint to grant the action.
func awsError(what string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "AccessDeniedException", "AccessDenied", "UnauthorizedOperation":
			return fmt.Errorf("%s: access denied (%s); grant the action to the deploying role (`ctjdeploy ENV iam-policy` prints the policy)", what, ae.ErrorMessage())
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}
