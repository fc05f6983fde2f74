package doctor

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/hackforla/ctjdeploy/internal/config"
)

// The fixes below are written for the incubator's layout
// (hackforla/incubator, read 2026-12): each project calls
// terraform/modules/container from terraform/projects/PROJECT/*.tf, and
// that module's aws_ecs_service "fargate" sets neither
// deployment_maximum_percent nor deployment_circuit_breaker, and points the
// service at the aws_ecs_task_definition "task" it registers itself
// (lifecycle ignore_changes = [desired_count] only). Its inputs
// (variables.tf) today: project_name, environment, application_type,
// container_image, container_cpu, container_memory, container_port,
// container_environment, container_environment_secrets, listener_priority,
// hostname, path, health_check_path, additional_host_urls, launch_type.
// The CI role's policy is aws_iam_policy "incubator_builder" in
// terraform/cicd.tf (jsonencode). The Terraform arguments are the AWS
// provider's aws_ecs_service ones (deployment_maximum_percent,
// deployment_minimum_healthy_percent, deployment_circuit_breaker { enable,
// rollback }).

// ModuleCall names the module block of env's service, as the incubator
// names it: module "<service with _>_service".
func ModuleCall(env *config.Environment) string {
	return fmt.Sprintf("module %q", hclName(env.Service)+"_service")
}

var nonIdent = regexp.MustCompile(`[^A-Za-z0-9_]+`)

func hclName(s string) string { return strings.Trim(nonIdent.ReplaceAllString(s, "_"), "_") }

// newInputs is what modules/container needs to offer (it has none of them
// today), with the defaults that keep every other project as it is.
const newInputs = `# terraform/modules/container/variables.tf (new inputs):
variable "deployment_maximum_percent" {
  type    = number
  default = 200
}
variable "deployment_minimum_healthy_percent" {
  type    = number
  default = 0
}
variable "deployment_circuit_breaker" {
  type    = bool
  default = false
}
variable "task_definition_managed_outside" {
  description = "true when a deploy tool (ctjdeploy) registers the task definition: Terraform then keeps the service's revision"
  type        = bool
  default     = false
}

# terraform/modules/container/main.tf, resource "aws_ecs_service" "fargate":
  deployment_maximum_percent         = var.deployment_maximum_percent
  deployment_minimum_healthy_percent = var.deployment_minimum_healthy_percent
  deployment_circuit_breaker {
    enable   = var.deployment_circuit_breaker
    rollback = var.deployment_circuit_breaker
  }
  lifecycle {
    ignore_changes = [desired_count]
  }
  # Terraform's lifecycle arguments cannot depend on a variable: for
  # task_definition_managed_outside the module declares the service twice,
  # count = var.task_definition_managed_outside ? 0 : 1 on "fargate" and
  # ? 1 : 0 on a copy "deployed_outside" whose lifecycle is
  #   ignore_changes = [desired_count, task_definition]
  # (a moved block keeps CTJ's service: moved { from = aws_ecs_service.fargate[0]
  #  to = aws_ecs_service.deployed_outside[0] })
}`

func percentFix(mod string) string {
	return "# terraform/projects/civic-tech-jobs/environment-stage.tf\n" + mod + " {\n  deployment_maximum_percent         = 100   # one task at a time: never two postgres servers over one data directory\n  deployment_minimum_healthy_percent = 0     # the old task stops before the new one starts\n}\n" + newInputs
}

func breakerFix(mod string) string {
	return "# terraform/projects/civic-tech-jobs/environment-stage.tf\n" + mod + " {\n  deployment_circuit_breaker = true   # enable = true, rollback = true\n}\n" + newInputs
}

func ownershipFix(mod string) string {
	return "# terraform/projects/civic-tech-jobs/environment-stage.tf\n" + mod + " {\n  task_definition_managed_outside = true   # ctjdeploy registers revisions; terraform apply keeps the service's\n}\n" + newInputs
}

// policyFix is the statement that grants action on resources, for
// incubator_builder's jsonencode in terraform/cicd.tf (or the project's
// own policy); `ctjdeploy ENV iam-policy` prints the whole policy.
func policyFix(env *config.Environment, action string, resources []string) string {
	var rs []string
	for _, r := range resources {
		r, cond, _ := strings.Cut(r, " (condition ")
		c := ""
		if cond != "" {
			k, v, _ := strings.Cut(strings.TrimSuffix(cond, ")"), " = ")
			c = fmt.Sprintf("\n  Condition = { ArnEquals = { %q = %q } }", k, v)
		}
		rs = append(rs, fmt.Sprintf("{\n  Effect   = \"Allow\"\n  Action   = [%q]\n  Resource = [%q]%s\n},", action, r, c))
	}
	return fmt.Sprintf("# terraform/cicd.tf, aws_iam_policy \"incubator_builder\" Statement (or a policy of CTJ's role); `ctjdeploy %s iam-policy` prints every statement\n%s",
		env.Name, strings.Join(rs, "\n"))
}
