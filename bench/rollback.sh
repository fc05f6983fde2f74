#!/usr/bin/env bash
# bench/rollback.sh [RUNS] — rollback benchmark on the local stack.
#
# Builds ctjdeploy, then (bench/rollbackbench) sets up a service with two
# ctjdeploy deploys in moto behind the rollout simulator and a counting proxy
# in front of the registry, and runs the real binary RUNS times (default 7)
# per variant, the service put back on the last deploy between runs:
#   rollback            (to the recorded previous revision)
#   rollback --to A     (an ACTIVE revision already runs A's digests: reused)
#   rollback --to C     (pushed, never deployed: render + register)
# and, when the deploy command is implemented, one full deploy of the same
# app. Reports AWS calls before UpdateService, the tool's time from process
# start to UpdateService, and bytes uploaded to the registry. Rollbacks run
# with DOCKER_HOST pointing nowhere: a build could not happen.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${1:-7}"
eval "$("$ROOT/scripts/stack" up 2>/dev/null)"
BIN="$(mktemp -d /tmp/ctjdeploy-rbench.XXXXXX)/ctjdeploy"
(cd "$ROOT" && go build -o "$BIN" ./cmd/ctjdeploy)
cd "$ROOT"
CTJDEPLOY_BIN="$BIN" BENCH_RUNS="$RUNS" go test -count=1 -run TestRollbackBench -v -timeout 20m ./bench/rollbackbench/ |
	grep -v -E '^(=== RUN|--- PASS|PASS|ok )'
