#!/usr/bin/env bash
# bench/push.sh [RUNS] — push and build-cache benchmark on the local stack.
#
# Side by side, interleaved (the order of the tools rotates every run), RUNS
# times (default 5):
#   cold push of both images, each run into fresh repositories and with fresh
#   random data (so no tool can mount or skip a blob it has seen before):
#     ctjdeploy (bench/pushbench: the push package, TAG + ENV)
#     docker push (/usr/bin/docker, both images at once: today's workflow)
#     crane push  (docker save + crane push, both images at once)
#   re-push of the unchanged images with ctjdeploy under a new tag, on the
#   same machine (digest cache) and as a fresh runner would (no cache);
#   rebuild after a source change on an engine without build cache for the
#   app, with the registry cache (--cache-from the pushed ENV image) vs without.
# Images: the example's django and next images plus two COPY layers of 50 MB
# of random data each (4 layers, 200 MB, incompressible), generated here.
#
# Needs root (the stack), go, python3. Prints a Markdown summary (medians and
# min–max of per-run ratios) and leaves raw timings in $OUT (default
# bench/results-<time>.tsv). Registry credentials for docker and crane come
# from the same ctjdeploy credential helper (ECR GetAuthorizationToken via
# moto), through a temporary DOCKER_CONFIG; nothing is written to ~/.docker.
# Disk: each run adds ~600 MB of blobs to the stack's registry storage.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${1:-5}"
MB="${BENCH_LAYER_MB:-50}"     # size of each of the 4 random layers
SLOW="${BENCH_SLOW_SECONDS:-8}" # the cache benchmark's slow step (stands for poetry install / npm ci)
OUT="${OUT:-$ROOT/bench/results-$(date +%Y%m%d-%H%M%S).tsv}"
DOCKER=/usr/bin/docker

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now() { echo "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.3f", b-a}'; }

eval "$("$ROOT/scripts/stack" up 2>/dev/null)"
REG="$CTJDEPLOY_REGISTRY"
W="$(mktemp -d /tmp/ctjdeploy-bench.XXXXXX)"
N="b$(date +%s)"
IMAGES=()
cleanup() {
	for i in "${IMAGES[@]}"; do "$DOCKER" rmi -f "$i" >/dev/null 2>&1 || true; done
	rm -rf "$W"
}
trap cleanup EXIT

log "building bench/pushbench and crane"
(cd "$ROOT" && go build -o "$W/pushbench" ./bench/pushbench)
GGCR=$(cd "$ROOT" && go list -m -f '{{.Version}}' github.com/google/go-containerregistry)
CRANE="$(go env GOPATH)/bin/crane"
if ! [ -x "$CRANE" ] || ! "$CRANE" version 2>/dev/null | grep -q "${GGCR#v}"; then
	(cd / && GOBIN="$W" go install "github.com/google/go-containerregistry/cmd/crane@$GGCR")
	CRANE="$W/crane"
fi
log "crane $("$CRANE" version) (go-containerregistry $GGCR, as in go.mod)"

# Credentials for docker push and crane: the same helper, in memory only.
mkdir -p "$W/bin" "$W/dockercfg"
ln -s "$W/pushbench" "$W/bin/docker-credential-ctjdeploy"
printf '{"credHelpers":{"%s":"ctjdeploy"}}\n' "$REG" >"$W/dockercfg/config.json"
export DOCKER_CONFIG="$W/dockercfg" PATH="$W/bin:$PATH" CTJDEPLOY_ECR_REGION="${AWS_REGION:-us-west-2}"

log "building the example images as bases"
for app in django:backend next:frontend; do
	img=${app%%:*} ctx=${app#*:}
	"$DOCKER" build -q -t "ctjdeploy-bench/$img-base:$N" -f "$ROOT/example/stage/$img.dockerfile" "$ROOT/example/$ctx" >/dev/null
	IMAGES+=("ctjdeploy-bench/$img-base:$N")
done

# make_images R: both images with fresh random layers, tagged :R.
make_images() {
	local r="$1" img d
	for img in django next; do
		d="$W/ctx-$img"
		rm -rf "$d" && mkdir -p "$d"
		head -c "${MB}M" /dev/urandom >"$d/big1"
		head -c "${MB}M" /dev/urandom >"$d/big2"
		printf 'FROM ctjdeploy-bench/%s-base:%s\nCOPY big1 /data/big1\nCOPY big2 /data/big2\n' "$img" "$N" >"$d/Dockerfile"
		"$DOCKER" build -q -t "ctjdeploy-bench/$img:$r" "$d" >/dev/null
		IMAGES+=("ctjdeploy-bench/$img:$r")
		rm -f "$d/big1" "$d/big2"
	done
}

printf 'kind\trun\ttool\tseconds\tuploaded_bytes\n' >"$OUT"
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$OUT"; }
json() { python3 -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }

push_ctj() { # run
	local r="$1" t0 out
	t0=$(now)
	out=$("$W/pushbench" push -create -cache "$W/cache-$r" -tags "$r,stage" \
		"ctjdeploy-bench/django:$r=$N-$r-ctj-django" "ctjdeploy-bench/next:$r=$N-$r-ctj-next")
	record cold "$r" ctjdeploy "$(since "$t0")" "$(json uploaded_bytes <<<"$out")"
}
push_docker() {
	local r="$1" t0 img
	for img in django next; do "$DOCKER" tag "ctjdeploy-bench/$img:$r" "$REG/$N-$r-docker-$img:$r"; done
	t0=$(now)
	"$DOCKER" push -q "$REG/$N-$r-docker-django:$r" >/dev/null &
	a=$!
	"$DOCKER" push -q "$REG/$N-$r-docker-next:$r" >/dev/null &
	b=$!
	wait "$a" && wait "$b"
	record cold "$r" docker "$(since "$t0")" ""
	for img in django next; do "$DOCKER" rmi "$REG/$N-$r-docker-$img:$r" >/dev/null; done
}
push_crane() {
	local r="$1" t0 img pids=()
	t0=$(now)
	for img in django next; do
		("$DOCKER" save "ctjdeploy-bench/$img:$r" >"$W/$img.tar" && "$CRANE" push --insecure "$W/$img.tar" "$REG/$N-$r-crane-$img:$r" >/dev/null 2>&1) &
		pids+=($!)
	done
	wait "${pids[0]}" && wait "${pids[1]}"
	record cold "$r" crane "$(since "$t0")" ""
	rm -f "$W"/*.tar
}

TOOLS=(ctj docker crane)
for ((i = 1; i <= ${BENCH_PUSH_RUNS:-$RUNS}; i++)); do
	r="r$i"
	make_images "$r"
	log "run $i/$RUNS: cold pushes"
	for ((k = 0; k < 3; k++)); do
		"push_${TOOLS[(i + k) % 3]}" "$r"
	done
	log "run $i/$RUNS: re-pushes"
	t0=$(now)
	out=$("$W/pushbench" push -cache "$W/cache-$r" -tags "$r-again,stage" \
		"ctjdeploy-bench/django:$r=$N-$r-ctj-django" "ctjdeploy-bench/next:$r=$N-$r-ctj-next")
	record repush "$r" ctjdeploy-cache "$(since "$t0")" "$(json uploaded_bytes <<<"$out")"
	t0=$(now)
	out=$("$W/pushbench" push -cache "" -tags "$r-fresh,stage" \
		"ctjdeploy-bench/django:$r=$N-$r-ctj-django" "ctjdeploy-bench/next:$r=$N-$r-ctj-next")
	record repush "$r" ctjdeploy-nocache "$(since "$t0")" "$(json uploaded_bytes <<<"$out")"
	for img in django next; do "$DOCKER" rmi "ctjdeploy-bench/$img:$r" >/dev/null; done
done

# --- build cache from the registry -------------------------------------------
log "build cache: slow step ${SLOW}s"
C="$W/cachectx"
mkdir -p "$C"
printf 'FROM python:3.13-alpine\nRUN echo %s && sleep %s && head -c 20000000 /dev/urandom > /deps\nCOPY app.txt /app/app.txt\n' "$N" "$SLOW" >"$C/Dockerfile"
echo v0 >"$C/app.txt"
"$W/pushbench" build -context "$C" -dockerfile "$C/Dockerfile" -tag "ctjdeploy-bench/cache:$N" >/dev/null
IMAGES+=("ctjdeploy-bench/cache:$N")
"$W/pushbench" push -create -tags stage "ctjdeploy-bench/cache:$N=$N-cache" >/dev/null
build_cached() {
	local r="$1" out
	"$DOCKER" rmi -f "ctjdeploy-bench/cache:$N" >/dev/null 2>&1 || true
	"$ROOT/bench/prune-steps.py" "$N"
	out=$("$W/pushbench" build ${BENCH_VERBOSE:+-v} -context "$C" -dockerfile "$C/Dockerfile" -tag "ctjdeploy-bench/cache:$N" -cache-from "$REG/$N-cache:stage")
	record rebuild "$r" registry-cache "$(json seconds <<<"$out")" ""
}
build_plain() {
	local r="$1" out
	"$DOCKER" rmi -f "ctjdeploy-bench/cache:$N" >/dev/null 2>&1 || true
	"$ROOT/bench/prune-steps.py" "$N"
	out=$("$W/pushbench" build -context "$C" -dockerfile "$C/Dockerfile" -tag "ctjdeploy-bench/cache:$N")
	record rebuild "$r" no-cache "$(json seconds <<<"$out")" ""
}
for ((i = 1; i <= RUNS; i++)); do
	echo "change $i" >"$C/app.txt"
	if ((i % 2)); then build_cached "r$i" && build_plain "r$i"; else build_plain "r$i" && build_cached "r$i"; fi
done
"$ROOT/bench/prune-steps.py" "$N"

log "raw results: $OUT"
python3 "$ROOT/bench/summarize.py" "$OUT"
