#!/bin/sh
# Stand-in for Civic Tech Jobs' backend entrypoint (collectstatic, migrate,
# then daphne on :8000). It prints what it would do and serves a stand-in of
# /api/healthcheck on :8000, so the image behaves like the long-running
# service of an ECS task.
set -eu
echo "ctj-example backend: revision ${GIT_REVISION:-unknown}"
./manage.py collectstatic --noinput
./manage.py migrate --noinput
echo "would run: daphne -b 0.0.0.0 -p 8000 ctj_api.asgi:application"
# Instead, answer GET /api/healthcheck on :8000 (healthcheck.sh), so a smoke
# check can prove this revision runs.
date +%s >/tmp/started
echo "serving /api/healthcheck on :8000"
exec nc -ll -p 8000 -e ./healthcheck.sh
