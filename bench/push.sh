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
#   same machine (digest cache) and as a fresh runner would (no cache: the
#   layers are known from the image the registry holds under ENV);
#   top layer changed (the last 50 MB layer of each image rebuilt with new
#   data): ctjdeploy as a fresh runner vs docker push vs crane push;
#   same image into new repositories: ctjdeploy (same machine: the digest
#   cache remembers where each layer went, so it mounts) vs docker push
#   (which mounts from the repositories it pushed to);
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

# An already loaded stack env (source /tmp/ctjdeploy-stack/env) is used as is.
if [ -z "${CTJDEPLOY_REGISTRY:-}" ]; then eval "$("$ROOT/scripts/stack" up 2>/dev/null)"; fi
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
# BENCH_BEFORE_REV=REV: a second ctjdeploy in the cold push, the tree as of
# REV (before/after under the same load). The engine image moved from
# push/image.go to internal/engineimage, so one file alone no longer builds
# against the other side's tree.
if [ -n "${BENCH_BEFORE_REV:-}" ]; then
	mkdir -p "$W/before"
	(cd "$ROOT" && git archive "$BENCH_BEFORE_REV" | tar -xf - -C "$W/before")
	(cd "$W/before" && go build -o "$W/pushbench-before" ./bench/pushbench)
fi
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
export DOCKER_CONFIG="$W/dockercfg" PATH="$W/bin:$PATH" CTJDEPLOY_ECR_REGION="${AWS_REGION:-us-west-2}" CTJDEPLOY_ECR_REGISTRY="$REG"

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
		rm -f "$d/big2" # big1 stays for make_top
	done
}

# make_top R: both images of run R with the top layer (big2) rebuilt from
# new random data, tagged :R-top; big1 is the same file, so its layer is too.
make_top() {
	local r="$1" img d
	for img in django next; do
		d="$W/ctx-$img"
		head -c "${MB}M" /dev/urandom >"$d/big2"
		"$DOCKER" build -q -t "ctjdeploy-bench/$img:$r-top" "$d" >/dev/null
		IMAGES+=("ctjdeploy-bench/$img:$r-top")
		rm -f "$d/big1" "$d/big2"
	done
}

printf 'kind\trun\ttool\tseconds\tuploaded_bytes\tread_bytes\n' >"$OUT"
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${6:-}" >>"$OUT"; }
json() { python3 -c "import json,sys; print(json.loads(sys.stdin.read()).get('$1', ''))"; }

push_ctj() { # run
	local r="$1" t0 out
	t0=$(now)
	out=$("$W/pushbench" push -create -cache "$W/cache-$r" -tags "$r,stage" \
		"ctjdeploy-bench/django:$r=$N-$r-ctj-django" "ctjdeploy-bench/next:$r=$N-$r-ctj-next")
	record cold "$r" ctjdeploy "$(since "$t0")" "$(json uploaded_bytes <<<"$out")"
}
push_ctjbefore() { # run: the pushbench of BENCH_BEFORE_REV
	local r="$1" t0 out
	t0=$(now)
	out=$("$W/pushbench-before" push -create -cache "$W/cache-before-$r" -tags "$r,stage" \
		"ctjdeploy-bench/django:$r=$N-$r-ctjb-django" "ctjdeploy-bench/next:$r=$N-$r-ctjb-next")
	record cold "$r" ctjdeploy-before "$(since "$t0")" "$(json uploaded_bytes <<<"$out")"
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
if [ -n "${BENCH_BEFORE_REV:-}" ]; then TOOLS+=(ctjbefore); fi
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
for ((i = 1; i <= ${BENCH_PUSH_RUNS:-$RUNS}; i++)); do
	r="r$i"
	make_images "$r"
	log "run $i/$RUNS: cold pushes (load average $(cut -d' ' -f1-3 /proc/loadavg))"
	for ((k = 0; k < ${#TOOLS[@]}; k++)); do
		"push_${TOOLS[(i + k) % ${#TOOLS[@]}]}" "$r"
	done
	if [ -n "${BENCH_COLD_ONLY:-}" ]; then # the cold push only
		for img in django next; do "$DOCKER" rmi "ctjdeploy-bench/$img:$r" >/dev/null; done
		continue
	fi
	log "run $i/$RUNS: re-pushes"
	t0=$(now)
	out=$("$W/pushbench" push -cache "$W/cache-$r" -tags "$r-again,stage" \
		"ctjdeploy-bench/django:$r=$N-$r-ctj-django" "ctjdeploy-bench/next:$r=$N-$r-ctj-next")
	record repush "$r" ctjdeploy-cache "$(since "$t0")" "$(json uploaded_bytes <<<"$out")"
	t0=$(now)
	out=$("$W/pushbench" push -cache "" -tags "$r-fresh,stage" \
		"ctjdeploy-bench/django:$r=$N-$r-ctj-django" "ctjdeploy-bench/next:$r=$N-$r-ctj-next")
	record repush "$r" ctjdeploy-nocache "$(since "$t0")" "$(json uploaded_bytes <<<"$out")" "$(json engine_read_bytes <<<"$out")"

	log "run $i/$RUNS: top layer changed"
	make_top "$r"
	for ((k = 0; k < 3; k++)); do
		case "${TOOLS[(i + k) % 3]}" in
		ctj)
			t0=$(now)
			out=$("$W/pushbench" push -cache "" -tags "$r-top,stage" \
				"ctjdeploy-bench/django:$r-top=$N-$r-ctj-django" "ctjdeploy-bench/next:$r-top=$N-$r-ctj-next")
			record top "$r" ctjdeploy-nocache "$(since "$t0")" "$(json uploaded_bytes <<<"$out")" "$(json engine_read_bytes <<<"$out")"
			;;
		docker)
			for img in django next; do "$DOCKER" tag "ctjdeploy-bench/$img:$r-top" "$REG/$N-$r-docker-$img:$r-top"; done
			t0=$(now)
			"$DOCKER" push -q "$REG/$N-$r-docker-django:$r-top" >/dev/null &
			a=$!
			"$DOCKER" push -q "$REG/$N-$r-docker-next:$r-top" >/dev/null &
			b=$!
			wait "$a" && wait "$b"
			record top "$r" docker "$(since "$t0")" ""
			for img in django next; do "$DOCKER" rmi "$REG/$N-$r-docker-$img:$r-top" >/dev/null; done
			;;
		crane)
			t0=$(now)
			pids=()
			for img in django next; do
				("$DOCKER" save "ctjdeploy-bench/$img:$r-top" >"$W/$img.tar" && "$CRANE" push --insecure "$W/$img.tar" "$REG/$N-$r-crane-$img:$r-top" >/dev/null 2>&1) &
				pids+=($!)
			done
			wait "${pids[0]}" && wait "${pids[1]}"
			record top "$r" crane "$(since "$t0")" ""
			rm -f "$W"/*.tar
			;;
		esac
	done

	log "run $i/$RUNS: same images into new repositories"
	if ((i % 2)); then order=(ctj docker); else order=(docker ctj); fi
	for tool in "${order[@]}"; do
		if [ "$tool" = ctj ]; then
			t0=$(now)
			out=$("$W/pushbench" push -create -cache "$W/cache-$r" -tags "$r" \
				"ctjdeploy-bench/django:$r=$N-$r-ctj-django-new" "ctjdeploy-bench/next:$r=$N-$r-ctj-next-new")
			record newrepo "$r" ctjdeploy-cache "$(since "$t0")" "$(json uploaded_bytes <<<"$out")" "$(json engine_read_bytes <<<"$out")"
		else
			for img in django next; do "$DOCKER" tag "ctjdeploy-bench/$img:$r" "$REG/$N-$r-docker-$img-new:$r"; done
			t0=$(now)
			"$DOCKER" push -q "$REG/$N-$r-docker-django-new:$r" >/dev/null &
			a=$!
			"$DOCKER" push -q "$REG/$N-$r-docker-next-new:$r" >/dev/null &
			b=$!
			wait "$a" && wait "$b"
			record newrepo "$r" docker "$(since "$t0")" ""
			for img in django next; do "$DOCKER" rmi "$REG/$N-$r-docker-$img-new:$r" >/dev/null; done
		fi
	done
	for img in django next; do "$DOCKER" rmi "ctjdeploy-bench/$img:$r" "ctjdeploy-bench/$img:$r-top" >/dev/null; done
done

# The cases summarize.py does not know: fresh-runner re-push, top layer
# changed, new repository; per-run ratios, median (min–max).
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
{
	echo "Machine: $(nproc) CPUs; load average (1, 5, 15 min) $LOAD_START at the start of the push cases, $LOAD_END at their end."
	echo
} >"$W/push-summary.md"
python3 - "$OUT" >>"$W/push-summary.md" <<'PY'
import csv, statistics, sys
from collections import defaultdict
t, b, rd = defaultdict(dict), defaultdict(dict), defaultdict(dict)
for r in csv.DictReader(open(sys.argv[1]), delimiter="\t"):
    k = (r["kind"], r["tool"])
    t[k][r["run"]] = float(r["seconds"])
    if r.get("uploaded_bytes"): b[k][r["run"]] = int(r["uploaded_bytes"])
    if r.get("read_bytes"): rd[k][r["run"]] = int(r["read_bytes"])
def ratio(n, d):
    xs = [t[n][k] / t[d][k] for k in t[n] if k in t[d]]
    return f"{statistics.median(xs):.2f}× ({min(xs):.2f}–{max(xs):.2f})" if xs else "n/a"
def rng(m, k):
    v = sorted(m[k].values())
    return f"{v[0]:,}–{v[-1]:,}" if v else "not reported"
print("| measure | median (min–max) | target |")
print("|---|---|---|")
print(f"| cold push, ctjdeploy ÷ docker push | {ratio(('cold','ctjdeploy'),('cold','docker'))} | ≤ 0.5× (stretch 0.3×) |")
print(f"| cold push, ctjdeploy ÷ crane | {ratio(('cold','ctjdeploy'),('cold','crane'))} | |")
if ("cold","ctjdeploy-before") in t:
    print(f"| cold push, ctjdeploy before (BENCH_BEFORE_REV) ÷ docker push | {ratio(('cold','ctjdeploy-before'),('cold','docker'))} | |")
    print(f"| cold push, ctjdeploy ÷ ctjdeploy before | {ratio(('cold','ctjdeploy'),('cold','ctjdeploy-before'))} | |")
print(f"| fresh-runner re-push ÷ cold ctjdeploy | {ratio(('repush','ctjdeploy-nocache'),('cold','ctjdeploy'))} | ≤ 0.1×, no layer read |")
print(f"| top layer changed, fresh runner ÷ docker push | {ratio(('top','ctjdeploy-nocache'),('top','docker'))} | bytes = that layer's |")
print(f"| top layer changed, fresh runner ÷ crane | {ratio(('top','ctjdeploy-nocache'),('top','crane'))} | |")
print(f"| same image into a new repository ÷ docker push (mount) | {ratio(('newrepo','ctjdeploy-cache'),('newrepo','docker'))} | ≤ 1.5× |")
print()
print("| bytes (ctjdeploy, both images) | uploaded | layer bytes read from the engine |")
print("|---|---|---|")
for k, what in [(("cold","ctjdeploy"),"cold push"), (("repush","ctjdeploy-nocache"),"fresh-runner re-push"),
                (("top","ctjdeploy-nocache"),"top layer changed"), (("newrepo","ctjdeploy-cache"),"new repository")]:
    print(f"| {what} | {rng(b, k)} | {rng(rd, k)} |")
print()
print("| seconds | median (min–max) |")
print("|---|---|")
for k in sorted(t):
    v = list(t[k].values())
    if not v:
        continue  # a case not run (BENCH_COLD_ONLY)
    print(f"| {k[0]} {k[1]} | {statistics.median(v):.2f} ({min(v):.2f}–{max(v):.2f}) |")
PY

if [ -n "${BENCH_PUSH_ONLY:-}" ]; then
	log "raw results: $OUT"
	cat "$W/push-summary.md"
	exit 0
fi

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
echo
cat "$W/push-summary.md"
