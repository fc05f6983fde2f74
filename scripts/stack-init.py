#!/usr/bin/env python3
"""Create the example's AWS resources in the local stack's moto server.

Idempotent: each resource is created only if absent. By default it creates
what example/ctjdeploy.yaml names (cluster incubator-prod, service and task
definition family civic-tech-jobs-fullstack-stage, ECR repositories
civic-tech-jobs-backend and civic-tech-jobs-frontend). Tests that share one
stack isolate themselves by names: pass --prefix (or each name) to get a
separate cluster, service, family and repositories, or import ensure().

    stack-init.py --endpoint http://127.0.0.1:5056 [--prefix t123-]

Prints one JSON object with the names and ARNs it ensured.
"""

import argparse
import json
import os
import sys

import boto3
from botocore.config import Config

DEFAULTS = {
    "cluster": "incubator-prod",
    "service": "civic-tech-jobs-fullstack-stage",
    "family": "civic-tech-jobs-fullstack-stage",
    "backend_repo": "civic-tech-jobs-backend",
    "frontend_repo": "civic-tech-jobs-frontend",
}

ACCOUNT = "123456789012"


def task_definition(family, registry, backend_repo, frontend_repo, tag="initial"):
    """A plausible three-container stage task definition (next, django, pgdb)."""
    ssm = f"arn:aws:ssm:us-west-2:{ACCOUNT}:parameter/civic-tech-jobs"
    log = {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": f"/ecs/{family}",
            "awslogs-region": "us-west-2",
            "awslogs-stream-prefix": "ecs",
        },
    }
    return {
        "family": family,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["EC2"],
        "cpu": "1024",
        "memory": "1536",
        "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/{family}-execution",
        "taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/{family}-task",
        "containerDefinitions": [
            {
                "name": "next",
                "image": f"{registry}/{frontend_repo}:{tag}",
                "essential": True,
                "memoryReservation": 256,
                "portMappings": [{"containerPort": 3000, "protocol": "tcp"}],
                "linuxParameters": {"initProcessEnabled": True},
                "environment": [
                    {"name": "NODE_ENV", "value": "production"},
                    {"name": "PORT", "value": "3000"},
                ],
                "logConfiguration": log,
            },
            {
                "name": "django",
                "image": f"{registry}/{backend_repo}:{tag}",
                "essential": True,
                "memoryReservation": 512,
                "portMappings": [{"containerPort": 8000, "protocol": "tcp"}],
                "linuxParameters": {"initProcessEnabled": True},
                "environment": [
                    {"name": "SQL_ENGINE", "value": "django.db.backends.postgresql"},
                    {"name": "SQL_HOST", "value": "localhost"},
                    {"name": "SQL_PORT", "value": "5432"},
                    {"name": "SQL_DATABASE", "value": "civictechjobs"},
                    {"name": "SQL_USER", "value": "civictechjobs_owner"},
                    {"name": "DJANGO_ALLOWED_HOSTS", "value": "stage.civictechjobs.org localhost"},
                    {"name": "DEBUG", "value": "false"},
                ],
                "secrets": [
                    {"name": "SQL_PASSWORD", "valueFrom": f"{ssm}/fullstack-stage-db-owner-password"},
                    {"name": "SECRET_KEY", "valueFrom": f"{ssm}/fullstack-stage-django-secret-key"},
                ],
                "dependsOn": [{"containerName": "pgdb", "condition": "START"}],
                "logConfiguration": log,
            },
            {
                "name": "pgdb",
                "image": "postgres:18",
                "essential": True,
                "memoryReservation": 512,
                "portMappings": [{"containerPort": 5432, "protocol": "tcp"}],
                "environment": [
                    {"name": "POSTGRES_DB", "value": "civictechjobs"},
                    {"name": "POSTGRES_USER", "value": "civictechjobs_owner"},
                ],
                "secrets": [
                    {"name": "POSTGRES_PASSWORD", "valueFrom": f"{ssm}/fullstack-stage-db-owner-password"},
                ],
                "mountPoints": [
                    {"sourceVolume": "pgdata", "containerPath": "/var/lib/postgresql", "readOnly": False}
                ],
                # as example/stage/ecs-task-def.json: the first deploy's diff
                # is then its images
                "healthCheck": {
                    "command": ["CMD-SHELL", "pg_isready -h localhost -U civictechjobs_owner -d civictechjobs"],
                    "interval": 5, "timeout": 3, "retries": 5, "startPeriod": 10,
                },
                "logConfiguration": log,
            },
        ],
        "volumes": [
            {
                "name": "pgdata",
                "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": True, "driver": "local"},
            }
        ],
    }


def clients(endpoint, region="us-west-2"):
    kw = dict(
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 3, "mode": "standard"}),
    )
    return boto3.client("ecs", **kw), boto3.client("ecr", **kw)


def ensure(ecs, ecr, cluster, service, family, backend_repo, frontend_repo, registry):
    """Create cluster, repositories, task definition and service if absent."""
    out = {"cluster": cluster, "service": service, "family": family,
           "backend_repo": backend_repo, "frontend_repo": frontend_repo}

    got = ecs.describe_clusters(clusters=[cluster])["clusters"]
    active = [c for c in got if c.get("status") == "ACTIVE"]
    if active:
        out["cluster_arn"] = active[0]["clusterArn"]
    else:
        out["cluster_arn"] = ecs.create_cluster(clusterName=cluster)["cluster"]["clusterArn"]

    out["repositories"] = {}
    for repo in (backend_repo, frontend_repo):
        try:
            r = ecr.describe_repositories(repositoryNames=[repo])["repositories"][0]
        except ecr.exceptions.RepositoryNotFoundException:
            r = ecr.create_repository(repositoryName=repo)["repository"]
        out["repositories"][repo] = r["repositoryUri"]

    arns = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE", sort="DESC")["taskDefinitionArns"]
    # familyPrefix is a prefix match: keep only this exact family.
    arns = [a for a in arns if a.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family]
    if arns:
        td_arn = arns[0]
    else:
        td = task_definition(family, registry, backend_repo, frontend_repo)
        td_arn = ecs.register_task_definition(**td)["taskDefinition"]["taskDefinitionArn"]
    out["task_definition_arn"] = td_arn

    # The real stage runs 0% / 200%, which ctjdeploy's data guard refuses:
    # with a postgres container in the task, 200% starts the new task beside
    # the old one, two postgres servers over one data volume. The example
    # service is configured the way the guard asks stage to be: 0% / 100%
    # (the old task stops before the new one starts).
    deployment_configuration = {"minimumHealthyPercent": 0, "maximumPercent": 100}
    svcs = ecs.describe_services(cluster=cluster, services=[service])["services"]
    svcs = [s for s in svcs if s.get("status") == "ACTIVE"]
    if svcs:
        s = svcs[0]
    else:
        s = ecs.create_service(
            cluster=cluster,
            serviceName=service,
            taskDefinition=td_arn,
            desiredCount=1,
            launchType="EC2",
            deploymentConfiguration=deployment_configuration,
        )["service"]
    dc = s.get("deploymentConfiguration") or {}
    if dc.get("maximumPercent") != deployment_configuration["maximumPercent"]:
        # moto (5.2) drops deploymentConfiguration on CreateService but keeps
        # it from UpdateService: set it there.
        s = ecs.update_service(
            cluster=cluster, service=service, deploymentConfiguration=deployment_configuration
        )["service"]
    out["service_arn"] = s["serviceArn"]
    out["service_task_definition"] = s["taskDefinition"]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5056"))
    p.add_argument("--region", default="us-west-2")
    p.add_argument("--registry", default=os.environ.get("CTJDEPLOY_REGISTRY", "127.0.0.1:5055"))
    p.add_argument("--prefix", default="", help="prepended to every default name")
    for k, v in DEFAULTS.items():
        p.add_argument("--" + k.replace("_", "-"), default=None, help=f"default: PREFIX{v}")
    a = p.parse_args(argv)
    names = {k: getattr(a, k) or (a.prefix + v) for k, v in DEFAULTS.items()}
    ecs, ecr = clients(a.endpoint, a.region)
    out = ensure(ecs, ecr, registry=a.registry, **names)
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
