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

// ModuleVariables and ModuleService are the change modules/container needs
// (it offers none of these inputs today). Their defaults keep every other
// project as it is: null leaves an argument to the provider's default,
// the breaker block is absent unless asked for, and the service keeps
// following Terraform's task definition unless a deploy tool owns it.
// docs/adopting.md shows the same text (a test holds them equal).
const ModuleVariables = `variable "deployment_maximum_percent" {
  description = "upper limit, in percent of desired_count, of the tasks a deployment runs; 100 stops the old task first"
  type        = number
  default     = null
}

variable "deployment_minimum_healthy_percent" {
  description = "lower limit, in percent of desired_count, of the healthy tasks during a deployment"
  type        = number
  default     = null
}

variable "deployment_circuit_breaker" {
  description = "ECS stops a deployment whose tasks keep failing and rolls it back"
  type        = bool
  default     = false
}

variable "task_definition_managed_outside" {
  description = "a deploy tool (ctjdeploy) registers the task definitions: terraform apply leaves the service's revision alone"
  type        = bool
  default     = false
}`

// ModuleService is the module's aws_ecs_service "fargate" as it becomes.
const ModuleService = `resource "aws_ecs_service" "fargate" {
  count = var.task_definition_managed_outside ? 0 : 1
  # ... name, cluster, task_definition, launch_type, desired_count,
  # network_configuration, load_balancer as today ...

  deployment_maximum_percent         = var.deployment_maximum_percent
  deployment_minimum_healthy_percent = var.deployment_minimum_healthy_percent

  dynamic "deployment_circuit_breaker" {
    for_each = var.deployment_circuit_breaker ? [true] : []
    content {
      enable   = true
      rollback = true
    }
  }

  lifecycle {
    ignore_changes = [desired_count]
  }
}

# The same service for a project whose deploy tool registers the task
# definitions: Terraform creates it with the module's revision, then leaves
# task_definition to the tool (lifecycle arguments cannot depend on a
# variable, hence the second resource).
resource "aws_ecs_service" "deployed_outside" {
  count = var.task_definition_managed_outside ? 1 : 0
  # ... the same arguments as aws_ecs_service.fargate ...

  lifecycle {
    ignore_changes = [desired_count, task_definition]
  }
}`

// ProjectInputs are the inputs CTJ's module call sets.
const ProjectInputs = `  deployment_maximum_percent         = 100  # postgres runs in the task: the old task stops first
  deployment_minimum_healthy_percent = 0
  deployment_circuit_breaker         = true # enable and rollback
  task_definition_managed_outside    = true # ctjdeploy registers the revisions`

// ProjectMoved keeps CTJ's service when it moves to deployed_outside.
const ProjectMoved = `moved {
  from = module.civic_tech_jobs_fullstack_stage_service.aws_ecs_service.fargate[0]
  to   = module.civic_tech_jobs_fullstack_stage_service.aws_ecs_service.deployed_outside[0]
}`

// ModuleChangeMarker starts the module change in a fix (a text renderer
// prints that part once).
const ModuleChangeMarker = "# terraform/modules/container offers none of these inputs today: add them (docs/adopting.md, \"The incubator as it is\"):"

func moduleFix(mod, want string) string {
	var lines []string
	for _, ln := range strings.Split(ProjectInputs, "\n") {
		if strings.Contains(ln, want) {
			lines = append(lines, ln)
		}
	}
	fix := "# terraform/projects/civic-tech-jobs/environment-stage.tf\n" + mod + " {\n  # ... as today ...\n" + strings.Join(lines, "\n") + "\n}\n"
	if want == "task_definition_managed_outside" {
		fix += ProjectMoved + "\n"
	}
	return fix + ModuleChangeMarker + "\n# variables.tf\n" +
		ModuleVariables + "\n# main.tf\n" + ModuleService
}

func percentFix(mod string) string   { return moduleFix(mod, "deployment_m") }
func breakerFix(mod string) string   { return moduleFix(mod, "deployment_circuit_breaker") }
func ownershipFix(mod string) string { return moduleFix(mod, "task_definition_managed_outside") }

// policyFix is the statement that grants action on resources, in the form
// of `ctjdeploy ENV iam-policy --format terraform` (a statement of
// data "aws_iam_policy_document" "ctjdeploy_ENV", which terraform/cicd.tf
// attaches to CTJ's CI role; see docs/adopting.md).
func policyFix(env *config.Environment, action string, resources []string) string {
	var plain []string
	var conds []string
	for _, r := range resources {
		r, cond, _ := strings.Cut(r, " (condition ")
		if cond == "" {
			plain = append(plain, fmt.Sprintf("%q", r))
			continue
		}
		k, v, _ := strings.Cut(strings.TrimSuffix(cond, ")"), " = ")
		conds = append(conds, fmt.Sprintf("statement {\n  actions   = [%q]\n  resources = [%q]\n  condition {\n    test     = \"ArnEquals\"\n    variable = %q\n    values   = [%q]\n  }\n}", action, r, k, v))
	}
	var sts []string
	if len(plain) > 0 {
		sts = append(sts, fmt.Sprintf("statement {\n  actions   = [%q]\n  resources = [%s]\n}", action, strings.Join(plain, ", ")))
	}
	sts = append(sts, conds...)
	return fmt.Sprintf("# terraform/cicd.tf, in data \"aws_iam_policy_document\" \"ctjdeploy_%s\" (`ctjdeploy %s iam-policy --format terraform` prints it whole):\n%s",
		env.Name, env.Name, strings.Join(sts, "\n"))
}
