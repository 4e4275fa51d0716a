#!/usr/bin/env bash
# A local Prometheus (Debian's prometheus package, `make prometheus-tools`) scraping the ordersys
# services and loading the alert rules of deploy/prometheus/alerts.yaml.
#
#   deploy/local/prometheus.sh up HOST:PORT...   write the config for these /metrics targets, start,
#                                                wait until /-/ready answers
#   deploy/local/prometheus.sh down              stop the Prometheus started by `up`
#   deploy/local/prometheus.sh status            exit 0 only when it answers
#
# Environment (defaults in brackets): PROMETHEUS_ADDR [127.0.0.1:9090] (the UI and API),
# PROMETHEUS_STATE_DIR [<repo>/.state/prometheus] (config, data, pid, log),
# PROMETHEUS_SCRAPE_INTERVAL [5s], PROMETHEUS_START_TIMEOUT [60] s.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ADDR=${PROMETHEUS_ADDR:-127.0.0.1:9090}
DIR=${PROMETHEUS_STATE_DIR:-$ROOT/.state/prometheus}
INTERVAL=${PROMETHEUS_SCRAPE_INTERVAL:-5s}
START_TIMEOUT=${PROMETHEUS_START_TIMEOUT:-60}
PID_FILE=$DIR/prometheus.pid
RULES=$ROOT/deploy/prometheus/alerts.yaml

T0=$SECONDS
say() { printf '[prometheus +%3ss] %s\n' "$((SECONDS - T0))" "$*"; }
die() { say "ERROR: $*" >&2; exit 1; }

ready() { curl -fsS -m 2 "http://$ADDR/-/ready" >/dev/null 2>&1; }

cmd_up() {
	(($# > 0)) || die "usage: $0 up HOST:PORT..."
	command -v prometheus >/dev/null || die "prometheus not found: make prometheus-tools (Debian's prometheus package)"
	if ready; then
		say "already answers on $ADDR: used as it is"
		return 0
	fi
	mkdir -p "$DIR/data"
	{
		echo "# Written by deploy/local/prometheus.sh."
		echo "global: {scrape_interval: $INTERVAL, evaluation_interval: $INTERVAL}"
		echo "rule_files: ['$RULES']"
		echo "scrape_configs:"
		echo "  - job_name: ordersys"
		echo "    static_configs:"
		echo "      - targets:"
		local t
		for t in "$@"; do
			[[ $t == :* ]] && t=127.0.0.1$t
			echo "          - '$t'"
		done
	} >"$DIR/prometheus.yml"
	promtool check config "$DIR/prometheus.yml" >/dev/null || die "invalid configuration $DIR/prometheus.yml"
	prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/data" --web.listen-address="$ADDR" \
		--storage.tsdb.retention.time=1d >"$DIR/prometheus.log" 2>&1 &
	echo $! >"$PID_FILE"
	local i
	for ((i = 0; i < START_TIMEOUT * 2; i++)); do
		if ready; then
			say "ready on http://$ADDR (targets: $*; rules: ${RULES#"$ROOT"/})"
			return 0
		fi
		kill -0 "$(cat "$PID_FILE")" 2>/dev/null || { tail -n 20 "$DIR/prometheus.log" >&2; die "prometheus exited"; }
		sleep 0.5
	done
	die "prometheus did not answer within ${START_TIMEOUT}s (log $DIR/prometheus.log)"
}

cmd_down() {
	[[ -f $PID_FILE ]] || return 0
	local pid i
	pid=$(cat "$PID_FILE")
	kill "$pid" 2>/dev/null || true
	for ((i = 0; i < 40; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.25
	done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$PID_FILE"
	say "stopped"
}

case ${1:-} in
up) shift; cmd_up "$@" ;;
down) cmd_down ;;
status) ready ;;
*)
	echo "usage: $0 up HOST:PORT... | down | status" >&2
	exit 2
	;;
esac
