#!/usr/bin/env bash
# bench/deploy.sh — deploy benchmark on the local stack, through the ECS
# simulator (internal/ecssim: a model of ECS's rollout in front of moto,
# which never runs a task). Runs the pipeline's stack tests that measure,
# and prints:
#   - AWS API calls by operation per deploy of the example, excluding polls
#     (target ≤ 12), counted at the simulator, which every AWS call crosses;
#   - an unchanged redeploy (same commit): bytes uploaded and new revisions
#     (target 0 and 0; the test fails otherwise);
#   - time from the simulator answering "deployment failed / rolled back"
#     to the pipeline returning exit 3 (target ≤ one poll interval, ≤ 5 s);
#   - time per phase (the JSON output's timings) of the first deploy.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/stack up >/dev/null
set -a; source "${CTJDEPLOY_STACK_DIR:-/tmp/ctjdeploy-stack}/env"; set +a
go test -count=1 -v -run 'TestDeployThenUnchangedRedeploy|TestRolledBackExit3AndJSON' ./deploy/ 2>&1 |
  grep -E 'AWS calls|phase timings|unchanged redeploy|after the simulator|^--- |^(ok|FAIL)' | sed 's/^ *stack_test.go:[0-9]*: /  /'
