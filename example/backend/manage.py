#!/bin/sh
# Fake Django manage.py: the example image has no Python, only busybox.
# It accepts the subcommands the entrypoint uses and prints them.
echo "manage.py $*"
