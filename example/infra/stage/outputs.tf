# Outputs-only Terraform configuration for the ctjdeploy example.
#
# It stands in for the incubator repository's Civic Tech Jobs stage module,
# which has no outputs yet: these are the values that module would export for
# ctjdeploy to render into stage/ecs-task-def.json ({{ tf "name" }}).
# It declares no provider and no resource, so `terraform init` needs no
# network and the state stays local (terraform.tfstate, gitignored).

terraform {
  required_version = ">= 1.5.0"
}

locals {
  account_id = "123456789012"
  region     = "us-west-2"
  service    = "civic-tech-jobs-fullstack-stage"
  ssm_prefix = "arn:aws:ssm:${local.region}:${local.account_id}:parameter/civic-tech-jobs"
}

output "django_allowed_hosts" {
  description = "DJANGO_ALLOWED_HOSTS, space separated."
  value       = "stage.civictechjobs.org localhost"
}

output "allowed_hosts_list" {
  description = "The same hosts as a list (a non-scalar output: not renderable by {{ tf }})."
  value       = ["stage.civictechjobs.org", "localhost"]
}

output "sql_engine" {
  value = "django.db.backends.postgresql"
}

output "sql_host" {
  description = "Postgres runs in the same task (awsvpc), so Django reaches it at localhost."
  value       = "localhost"
}

output "sql_port" {
  value = 5432
}

output "db_name" {
  value = "civictechjobs"
}

output "db_user" {
  value = "civictechjobs_owner"
}

output "debug" {
  value = false
}

output "db_password_ssm_arn" {
  description = "SSM SecureString parameter with the database owner's password."
  value       = "${local.ssm_prefix}/fullstack-stage-db-owner-password"
}

output "django_secret_key_ssm_arn" {
  description = "SSM SecureString parameter with Django's SECRET_KEY."
  value       = "${local.ssm_prefix}/fullstack-stage-django-secret-key"
}

output "execution_role_arn" {
  value = "arn:aws:iam::${local.account_id}:role/civic-tech-jobs-fullstack-stage-execution"
}

output "task_role_arn" {
  value = "arn:aws:iam::${local.account_id}:role/civic-tech-jobs-fullstack-stage-task"
}

output "log_group" {
  value = "/ecs/${local.service}"
}

output "region" {
  value = local.region
}

output "db_password" {
  description = "A sensitive output, for tests: it must never be printed nor rendered into a plain environment entry."
  value       = "s3cr3t-example-password-do-not-print"
  sensitive   = true
}
