#!/usr/bin/env bash
# The whole ordersys system on this machine (make run, run-secure, run-detached, stop, run-status):
# builds the supervisor pkg/testinfra/cmd/devrun into .state/bin and runs it (its doc comment and
# docs/running.md say what it does).
#
#   deploy/local/run.sh run      everything in the foreground; SIGINT, SIGTERM or SIGHUP stops it all
#   deploy/local/run.sh up       start everything, return once every service is SERVING; `down` stops it
#   deploy/local/run.sh down     stop what run or up started
#   deploy/local/run.sh status   what runs and each service's gRPC health
#   deploy/local/run.sh build    only build the services, migrate and ordersysctl into .state/bin
#   deploy/local/run.sh help     how to call the services (grpcurl lines) and where to look
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mkdir -p "$ROOT/.state/bin"
# GOWORK=off: devrun needs pkg only, so half-edited service modules cannot break it. exec: signals
# reach devrun itself.
# A failed build (pkg half-edited) falls back to the last devrun built, so that `make stop` and
# `make run-status` still work on a system already running.
bin=$ROOT/.state/bin/devrun
if (cd "$ROOT/pkg" && GOWORK=off go build -buildvcs=false -o "$bin.tmp" ./testinfra/cmd/devrun); then
	mv -f "$bin.tmp" "$bin"
elif [[ -x $bin ]]; then
	echo "run.sh: building devrun failed; using the one built before ($bin)" >&2
else
	exit 1
fi
exec "$bin" -root "$ROOT" "$@"
