package ecssim

import "testing"

func TestSimSecretValue(t *testing.T) {
	for from, want := range map[string]string{
		"arn:aws:ssm:us-west-2:123456789012:parameter/civic-tech-jobs/fullstack-stage-db-owner-password": "ecssim-secret-fullstack-stage-db-owner-password",
		"arn:aws:secretsmanager:us-west-2:123456789012:secret:db-pass-AbCdEf":                            "ecssim-secret-db-pass-AbCdEf",
		"plain-name": "ecssim-secret-plain-name",
	} {
		if got := simSecretValue(from); got != want {
			t.Errorf("simSecretValue(%q) = %q, want %q", from, got, want)
		}
	}
}
