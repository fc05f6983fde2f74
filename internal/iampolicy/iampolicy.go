// Package iampolicy writes the least-privilege IAM policy ctjdeploy needs for
// one environment: ECR push and pull on exactly its repositories, the ECS
// calls on exactly its cluster, service and task definition family, and
// iam:PassRole on exactly the roles its task definition names.
//
// Resource scoping follows the AWS Service Authorization Reference:
// ecs:DescribeTaskDefinition and ecs:ListTaskDefinitions support no resource
// type (Resource "*"); ecs:ListTasks is scoped with the ecs:cluster condition
// key; ecs:RegisterTaskDefinition and ecs:TagResource take the family's
// task-definition ARN, the first conditioned on the environment tag in the
// request, the second on being part of RegisterTaskDefinition (tags are set
// on register, which AWS authorizes as ecs:TagResource too);
// ecr:GetAuthorizationToken takes "*"; ecs:UpdateService takes the service
// and is conditioned (ecs:task-definition) on a revision of the family;
// ecs:DescribeServiceDeployments and ecs:StopServiceDeployment take the
// service and its service-deployment ARNs. Document.HCL prints the same
// statements as a Terraform aws_iam_policy_document.
// sts:GetCallerIdentity needs no permission (AWS authorizes every caller).
//
// A test derives the AWS operations the code calls from its source and fails
// when one is missing here.
package iampolicy

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
)

// AccountPlaceholder stands for the AWS account when it is unknown.
const AccountPlaceholder = "ACCOUNT_ID"

// NoPermissionNeeded lists the operations ctjdeploy calls that IAM does not
// authorize: any principal may call them.
var NoPermissionNeeded = []string{"sts:GetCallerIdentity"}

// DoctorOnly lists the operations only `ENV doctor` calls, and only where
// the identity may: without them its write checks say unknown. The policy
// does not grant them (a CI role needs none of them to deploy).
var DoctorOnly = []string{"iam:SimulatePrincipalPolicy"}

// ECRPush and ECRPull are the ECR actions behind the registry API that a
// push (go-containerregistry remote.Write) and a pull or HEAD use.
var (
	ECRPull = []string{
		"ecr:BatchCheckLayerAvailability", // HEAD /v2/.../blobs/...
		"ecr:BatchGetImage",               // GET/HEAD /v2/.../manifests/...
		"ecr:GetDownloadUrlForLayer",      // GET /v2/.../blobs/...
	}
	ECRPush = []string{
		"ecr:BatchCheckLayerAvailability",
		"ecr:CompleteLayerUpload", // PUT /v2/.../blobs/uploads/...
		"ecr:InitiateLayerUpload", // POST /v2/.../blobs/uploads/
		"ecr:PutImage",            // PUT /v2/.../manifests/...
		"ecr:UploadLayerPart",     // PATCH /v2/.../blobs/uploads/...
	}
	// ECRRead are the ECR API reads on a repository: tags and digests for
	// history and rollback --to, the repository check before a push.
	ECRRead = []string{"ecr:DescribeImages", "ecr:DescribeRepositories", "ecr:ListImages"}
)

// Document is an IAM policy document.
type Document struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of a policy.
type Statement struct {
	Sid       string                    `json:"Sid"`
	Effect    string                    `json:"Effect"`
	Action    []string                  `json:"Action"`
	Resource  []string                  `json:"Resource"`
	Condition map[string]map[string]any `json:"Condition,omitempty"`
}

// Actions lists the actions the document allows, sorted, without duplicates.
func (d Document) Actions() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range d.Statement {
		for _, a := range s.Action {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	sort.Strings(out)
	return out
}

// JSON renders the document indented, with a final newline.
func (d Document) JSON() []byte {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil { // cannot happen: only strings, slices and maps
		panic(err)
	}
	return append(b, '\n')
}

// Partition returns the ARN partition of region.
func Partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	case strings.HasPrefix(region, "us-iso-"):
		return "aws-iso"
	case strings.HasPrefix(region, "us-isob-"):
		return "aws-iso-b"
	}
	return "aws"
}

// RoleARN turns a role as a task definition may name it (an ARN, or a role
// name) into an ARN.
func RoleARN(partition, account, role string) string {
	if strings.HasPrefix(role, "arn:") {
		return role
	}
	return fmt.Sprintf("arn:%s:iam::%s:role/%s", partition, account, role)
}

// Policy returns the least-privilege policy for env. account is the AWS
// account of the cluster (AccountPlaceholder when unknown); family is the
// task definition family of the environment's template; roles are the ARNs
// of the roles the task definition passes to ECS (executionRoleArn,
// taskRoleArn). The repositories live in the account of env's registry when
// that is an ECR registry host, else in account.
func Policy(env *config.Environment, account, family string, roles []string, logGroups ...string) Document {
	if account == "" {
		account = AccountPlaceholder
	}
	sc := scope{env: env, account: account, part: Partition(env.Region), ecrAccount: account}
	if id := config.ECRRegistryID(env.Registry); id != "" {
		sc.ecrAccount = id
	}
	d := Document{Version: "2012-10-17"}
	for _, st := range concatStatements(sc.ecr(), sc.ecs(family), sc.optional(roles, logGroups)) {
		st.Effect = "Allow"
		st.Action = uniqueSorted(st.Action)
		d.Statement = append(d.Statement, st)
	}
	return d
}

// scope is what the statements name: the environment, its account and
// partition, and the registry's account.
type scope struct {
	env                 *config.Environment
	account, ecrAccount string
	part                string
}

// arn is an ARN in the environment's partition and region.
func (sc scope) arn(service, account, resource string) string {
	return fmt.Sprintf("arn:%s:%s:%s:%s:%s", sc.part, service, sc.env.Region, account, resource)
}

func concatStatements(lists ...[]Statement) []Statement {
	var out []Statement
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// ecr is the registry's statements: the token, and push and pull on the
// environment's repositories.
func (sc scope) ecr() []Statement {
	env := sc.env
	var repos []string
	for _, name := range env.ImageNames() {
		repos = append(repos, sc.arn("ecr", sc.ecrAccount, "repository/"+env.Images[name].Repository))
	}
	repos = uniqueSorted(repos)
	var out []Statement
	add := func(s Statement) { out = append(out, s) }
	add(Statement{
		Sid:      "ECRAuthorizationToken",
		Action:   []string{"ecr:GetAuthorizationToken"},
		Resource: []string{"*"},
	})
	add(Statement{
		Sid:      "ECRPushPullOwnRepositories",
		Action:   concat(ECRPull, ECRPush, ECRRead),
		Resource: repos,
	})
	return out
}

// ecs is the service's statements: describe, update to the family, follow
// and stop its deployments, register the family's revisions (tagged), read
// task definitions and the cluster's tasks.
func (sc scope) ecs(family string) []Statement {
	env, account, arn := sc.env, sc.account, sc.arn
	cluster := arn("ecs", account, "cluster/"+env.Cluster)
	taskDefs := arn("ecs", account, "task-definition/"+family+":*")
	var out []Statement
	add := func(s Statement) { out = append(out, s) }
	service := arn("ecs", account, "service/"+env.Cluster+"/"+env.Service)
	add(Statement{
		Sid:      "ECSDescribeService",
		Action:   []string{"ecs:DescribeServices"},
		Resource: []string{service},
	})
	// UpdateService supports the ecs:task-definition condition key (the ARN
	// of the task definition the request sets; "Actions, resources, and
	// condition keys for Amazon Elastic Container Service"): the service
	// can only be moved to a revision of the environment's family.
	add(Statement{
		Sid:       "ECSUpdateServiceToFamily",
		Action:    []string{"ecs:UpdateService"},
		Resource:  []string{service},
		Condition: map[string]map[string]any{"ArnLike": {"ecs:task-definition": taskDefs}},
	})
	// The service deployment API (2024-10), as the Service Authorization
	// Reference's "Actions, resources, and condition keys for Amazon Elastic
	// Container Service" lists it: listing is authorized on the service;
	// describing and stopping on the service deployment
	// (arn:...:service-deployment/CLUSTER/SERVICE/ID) and on the service it
	// belongs to, so both ARNs are named. (DescribeServiceRevisions, on
	// service-revision/CLUSTER/SERVICE/ID, is not called by ctjdeploy.)
	add(Statement{
		Sid:      "ECSListServiceDeployments",
		Action:   []string{"ecs:ListServiceDeployments"},
		Resource: []string{service},
	})
	add(Statement{
		Sid:      "ECSFollowAndStopServiceDeployments",
		Action:   []string{"ecs:DescribeServiceDeployments", "ecs:StopServiceDeployment"},
		Resource: []string{service, arn("ecs", account, "service-deployment/"+env.Cluster+"/"+env.Service+"/*")},
	})
	add(Statement{
		Sid:      "ECSRegisterTaskDefinitionFamily",
		Action:   []string{"ecs:RegisterTaskDefinition"},
		Resource: []string{taskDefs},
		// Only with the ctjdeploy:env tag the deploy sets in the request
		// (tagging is allowed only as part of RegisterTaskDefinition).
		Condition: map[string]map[string]any{"StringEquals": {"aws:RequestTag/" + ecsread.TagEnv: env.Name}},
	})
	add(Statement{
		Sid:       "ECSTagOnRegister",
		Action:    []string{"ecs:TagResource"},
		Resource:  []string{taskDefs},
		Condition: map[string]map[string]any{"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}},
	})
	add(Statement{
		Sid:      "ECSReadTaskDefinitions",
		Action:   []string{"ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions"},
		Resource: []string{"*"},
	})
	add(Statement{
		Sid:      "ECSDescribeClusterTasks",
		Action:   []string{"ecs:DescribeTasks"},
		Resource: []string{arn("ecs", account, "task/"+env.Cluster+"/*")},
	})
	add(Statement{
		Sid:       "ECSListClusterTasks",
		Action:    []string{"ecs:ListTasks"},
		Resource:  []string{"*"},
		Condition: map[string]map[string]any{"ArnEquals": {"ecs:cluster": cluster}},
	})
	return out
}

// optional is the statements only some environments need: the deploy lock,
// the container logs, the roles the task definition passes.
func (sc scope) optional(roles, logGroups []string) []Statement {
	env, account, arn := sc.env, sc.account, sc.arn
	var out []Statement
	add := func(s Statement) { out = append(out, s) }
	// The deploy lock (config lock:, by default
	// /ctjdeploy/CLUSTER/SERVICE/lock, internal/lease): an SSM parameter
	// whose versions are written (PutParameter) and read back all at once
	// (GetParameterHistory); never deleted, so no ssm:DeleteParameter. The
	// parameter ARN has
	// no slash after "parameter" for a name that starts with one
	// ("Actions, resources, and condition keys for AWS Systems Manager":
	// arn:${Partition}:ssm:${Region}:${Account}:parameter/${ParameterNameWithoutLeadingSlash}).
	// lock: false: no statement.
	if lock := env.LockParameter(); lock != "" {
		add(Statement{
			Sid:      "SSMDeployLock",
			Action:   []string{"ssm:GetParameterHistory", "ssm:PutParameter"},
			Resource: []string{arn("ssm", account, "parameter/"+strings.TrimPrefix(lock, "/"))},
		})
	}
	if logGroups = uniqueSorted(logGroups); len(logGroups) > 0 {
		// A failed rollout shows the stopped containers' last log lines
		// (GetLogEvents authorizes on the log group, "Actions, resources,
		// and condition keys for Amazon CloudWatch Logs").
		var res []string
		for _, g := range logGroups {
			res = append(res, arn("logs", account, "log-group:"+g+":*"))
		}
		add(Statement{
			Sid:      "CloudWatchLogsReadContainerLogs",
			Action:   []string{"logs:GetLogEvents"},
			Resource: res,
		})
	}
	if roles = uniqueSorted(roles); len(roles) > 0 {
		add(Statement{
			Sid:       "PassTaskDefinitionRolesToECSTasks",
			Action:    []string{"iam:PassRole"},
			Resource:  roles,
			Condition: map[string]map[string]any{"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
		})
	}
	return out
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func uniqueSorted(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
