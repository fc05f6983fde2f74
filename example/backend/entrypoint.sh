#!/bin/sh
# Stand-in for Civic Tech Jobs' backend entrypoint (collectstatic, migrate,
# then daphne on :8000). It only prints what it would do and stays up, so the
# image behaves like a long-running service in an ECS task.
set -eu
echo "ctj-example backend: revision ${GIT_REVISION:-unknown}"
./manage.py collectstatic --noinput
./manage.py migrate --noinput
echo "would run: daphne -b 0.0.0.0 -p 8000 ctj_api.asgi:application"
exec sleep 2147483647
