package main

import "github.com/spf13/cobra"

func newIAMPolicyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "iam-policy ENV",
		Short: "Print the least-privilege IAM policy ctjdeploy needs for ENV",
		Long: `Print, as JSON, the least-privilege IAM policy that deploy, rollback, status
and history need for ENV: ECR push and pull on exactly its repositories,
ecr:GetAuthorizationToken, the ECS calls scoped to its cluster, service and
task definition family, and iam:PassRole on exactly the roles its task
definition names. Attach it to the CI role (e.g. incubator-cicd-civic-tech-jobs).`,
		Args:              envArg,
		ValidArgsFunction: g.completeEnvs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := g.loadEnv(args[0]); err != nil {
				return err
			}
			return notYet("iam-policy", 7)
		},
	}
}
