#!/usr/bin/env bash
# The whole ordersys system on this machine: Cassandra, Kafka, Jaeger and the four services as
# separate processes.
#
#   deploy/local/run.sh run      everything below, in the foreground; SIGINT, SIGTERM or SIGHUP stops it all
#   deploy/local/run.sh up       start everything and return (detached); `down` stops it
#   deploy/local/run.sh down     stop the services (SIGTERM, then SIGKILL), Jaeger, then Cassandra/Kafka
#   deploy/local/run.sh status   what runs and whether each service's gRPC health is SERVING
#   deploy/local/run.sh build    only build the six binaries into .state/bin
#   deploy/local/run.sh help     print how to call the services (grpcurl lines) and where to look
#
# `up`/`run`: infra-up (deploy/local/infra.sh), Jaeger (deploy/local/jaeger.sh, built on first use),
# `go build` of command, query, cdc-relay, projector, migrate and ordersysctl into .state/bin,
# migrate (keyspace ORDERSYS_CQL_KEYSPACE, profile portable), then the services with logs in
# .state/logs/<name>.log and pid files in .state/run/ (so that `down` from another shell finds
# them), and waits until every one answers grpc.health.v1.Health/Check with SERVING (grpcurl,
# pinned in tools/go.mod and run with `go tool`), then Prometheus (deploy/local/prometheus.sh).
#
# Signals (`run`): a background job of a shell without job control (`make run &` in a script)
# starts with SIGINT ignored, which bash cannot trap, so `run` re-executes itself once through
# `env --default-signal=INT`. make forwards SIGTERM to it, but not a SIGINT sent to make's pid alone
# (docs/running.md: which signal reaches it).
#
# Stopping: the services first (command and query, then cdc-relay, then projector: each SIGTERM,
# SIGKILL after RUN_STOP_TIMEOUT), then Jaeger (after the services flushed their spans), then
# Cassandra and Kafka (`make infra-down`). Everything this script started stops; what already ran
# before it (Cassandra/Kafka of `make infra-up`, a Jaeger of `make jaeger-up`) is left running, and
# RUN_KEEP_INFRA=1 keeps Cassandra and Kafka for the next start (they take a minute to come up).
# Data in Cassandra/Kafka survives a stop; Jaeger keeps traces in memory only.
#
# RUN_SECURE=1 (make run-secure) writes development secrets into .state/secure (pkg/devpki/cmd/
# devsecrets: ca.pem, server and client certificates, dev.jwks.json, token-writer, token-reader,
# token-admin) and starts the services with gRPC TLS and bearer tokens on (docs/security.md);
# the relay and the projector then use a second Kafka node whose only listener is SASL_SSL
# (deploy/local/kafka-secure.sh: 127.0.0.1:9094, TLS with the development CA, SCRAM-SHA-512) and
# every service and migrate a second Cassandra node that speaks only TLS and needs a password
# (deploy/local/cassandra-secure.sh: 127.0.0.1:9142), both stopped with the services. Jaeger stays
# plaintext (OTLP over TLS is tested in pkg/telemetry).
#
# Environment (defaults in brackets): ORDERSYS_CQL_KEYSPACE [ordersys], RUN_KEEP_INFRA [0],
# RUN_STOP_TIMEOUT [20] s, RUN_HEALTH_TIMEOUT [120] s per service, RUN_JAEGER [1] (0: no Jaeger,
# spans not exported), RUN_PROMETHEUS [1] (0: no Prometheus; deploy/local/prometheus.sh),
# ORDERSYS_LOG_LEVEL [info], ORDERSYS_PII_KEK_FILE [.state/pii-kek.json, made once; empty: no
# encryption of personal data], and every ORDERSYS_* of docs/DESIGN.md, which
# the services inherit.
set -euo pipefail

# `run` re-executes itself once with SIGINT's default action restored (see Signals above).
if [[ ${1:-} == run && -z ${RUN_SIGINT_RESET:-} ]]; then
	exec env --default-signal=INT RUN_SIGINT_RESET=1 "${BASH_SOURCE[0]}" "$@"
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
STATE=$ROOT/.state
BIN=$STATE/bin
LOGS=$STATE/logs
RUN=$STATE/run
KEEP_INFRA=${RUN_KEEP_INFRA:-0}
STOP_TIMEOUT=${RUN_STOP_TIMEOUT:-20}
HEALTH_TIMEOUT=${RUN_HEALTH_TIMEOUT:-120}
WITH_JAEGER=${RUN_JAEGER:-1}
WITH_PROMETHEUS=${RUN_PROMETHEUS:-1}
PROMETHEUS_UI=http://${PROMETHEUS_ADDR:-127.0.0.1:9090}
JAEGER_UI=${JAEGER_QUERY_URL:-http://127.0.0.1:16686}
SECURE=${RUN_SECURE:-0}
SECRETS=$STATE/secure
# grpcurl's transport flags: plaintext, or TLS trusting the development CA (RUN_SECURE=1).
GRPCURL_TLS=(-plaintext)
[[ $SECURE == 1 ]] && GRPCURL_TLS=(-cacert "$SECRETS/ca.pem")

export ORDERSYS_CQL_KEYSPACE=${ORDERSYS_CQL_KEYSPACE:-ordersys}
export ORDERSYS_CQL_HOSTS=${ORDERSYS_CQL_HOSTS:-${INFRA_ADDR:-127.0.0.1}:${INFRA_CQL_PORT:-9042}}
export ORDERSYS_KAFKA_BROKERS=${ORDERSYS_KAFKA_BROKERS:-${INFRA_ADDR:-127.0.0.1}:${INFRA_KAFKA_PORT:-9092}}
export ORDERSYS_TRACE_SAMPLE_RATIO=${ORDERSYS_TRACE_SAMPLE_RATIO:-1.0}

# Services in start order (the relay and projector before the command service would work too:
# each waits for what it needs). Stop order is the reverse groups: writers and readers first.
SERVICES=(projector cdc-relay query command)
declare -A PKG=(
	[command]=github.com/ordersys/ordersys/services/command/cmd/command
	[migrate]=github.com/ordersys/ordersys/services/command/cmd/migrate
	[query]=github.com/ordersys/ordersys/services/query/cmd/query
	[cdc-relay]=github.com/ordersys/ordersys/services/cdc-relay/cmd/cdc-relay
	[projector]=github.com/ordersys/ordersys/services/projector/cmd/projector
	[ordersysctl]=github.com/ordersys/ordersys/services/ordersysctl/cmd/ordersysctl
)
# Addresses: ORDERSYS_<NAME>_GRPC_ADDR / _METRICS_ADDR override the API.md defaults per service
# (ORDERSYS_GRPC_ADDR itself is per process, so it cannot be set once for all four).
declare -A GRPC=(
	[command]=${ORDERSYS_COMMAND_GRPC_ADDR:-127.0.0.1:50051}
	[query]=${ORDERSYS_QUERY_GRPC_ADDR:-127.0.0.1:50052}
	[cdc-relay]=${ORDERSYS_CDC_RELAY_GRPC_ADDR:-127.0.0.1:50053}
	[projector]=${ORDERSYS_PROJECTOR_GRPC_ADDR:-127.0.0.1:50054}
)
declare -A METRICS=(
	[command]=${ORDERSYS_COMMAND_METRICS_ADDR:-:9101}
	[query]=${ORDERSYS_QUERY_METRICS_ADDR:-:9102}
	[cdc-relay]=${ORDERSYS_CDC_RELAY_METRICS_ADDR:-:9103}
	[projector]=${ORDERSYS_PROJECTOR_METRICS_ADDR:-:9104}
)

T0=$SECONDS
say() { printf '[run +%3ss] %s\n' "$((SECONDS - T0))" "$*"; }
die() { say "ERROR: $*" >&2; exit 1; }
rel() { printf '%s' "${1#"$ROOT"/}"; }

pid_of() { # pid_of NAME: the pid of a service started by this script, if it still runs
	local f=$RUN/$1.pid pid
	[[ -f $f ]] || return 1
	pid=$(cat "$f")
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# grpcurl is pinned in tools/go.mod: `go tool -n` builds it on first use, later only finds it.
# need_grpcurl resolves it once in the calling shell (health runs in subshells).
GRPCURL= GRPCURL_CMD='$(GOWORK=off go -C tools tool -n grpcurl)' # the latter for the lines `help` prints
need_grpcurl() {
	[[ -n $GRPCURL ]] || GRPCURL=$(GOWORK=off go -C "$ROOT/tools" tool -n grpcurl) ||
		die "could not build grpcurl (GOWORK=off go -C tools tool -n grpcurl)"
}
grpcurl() { need_grpcurl && "$GRPCURL" "$@"; }

health() { # health NAME: prints the health status (SERVING, NOT_SERVING, ...) or nothing
	{ grpcurl "${GRPCURL_TLS[@]}" -max-time 3 "${GRPC[$1]}" grpc.health.v1.Health/Check 2>/dev/null || true; } |
		sed -n 's/.*"status": *"\([A-Z_]*\)".*/\1/p'
}

# ---------------------------------------------------------------------------------------------
# Build

cmd_build() {
	mkdir -p "$BIN"
	say "go build command query cdc-relay projector migrate ordersysctl -> $(rel "$BIN")"
	local start=$SECONDS
	(cd "$ROOT" && go build -o "$BIN/" "${PKG[@]}") || die "go build failed (see above)"
	say "built in $((SECONDS - start))s"
}

# ---------------------------------------------------------------------------------------------
# Start

start_service() { # start_service NAME
	local name=$1 pid
	if pid=$(pid_of "$name"); then
		say "$name already running (pid $pid)"
		return 0
	fi
	mkdir -p "$LOGS" "$RUN"
	say "starting $name on ${GRPC[$name]} (metrics ${METRICS[$name]}), log $(rel "$LOGS/$name.log")"
	# setsid: each service in its own session, so a Ctrl-C on the terminal reaches only this script,
	# whose trap stops the services in order.
	ORDERSYS_GRPC_ADDR=${GRPC[$name]} ORDERSYS_METRICS_ADDR=${METRICS[$name]} \
		setsid "$BIN/$name" >>"$LOGS/$name.log" 2>&1 </dev/null &
	echo $! >"$RUN/$name.pid"
}

wait_healthy() { # wait_healthy NAME
	local name=$1 deadline=$((SECONDS + HEALTH_TIMEOUT)) status=""
	while :; do
		if ! pid_of "$name" >/dev/null; then
			tail -n 30 "$LOGS/$name.log" >&2 || true
			die "$name exited during start-up (log $(rel "$LOGS/$name.log"))"
		fi
		status=$(health "$name")
		[[ $status == SERVING ]] && break
		if ((SECONDS >= deadline)); then
			tail -n 30 "$LOGS/$name.log" >&2 || true
			die "$name not SERVING after ${HEALTH_TIMEOUT}s (last: ${status:-no answer}; log $(rel "$LOGS/$name.log"))"
		fi
		sleep 0.5
	done
	say "$name SERVING on ${GRPC[$name]}"
}

cmd_up() {
	mkdir -p "$RUN"
	# Markers of a previous run that ended without `down` (killed): none of its services runs.
	local n alive=0
	for n in "${SERVICES[@]}"; do pid_of "$n" >/dev/null && alive=1; done
	((alive)) || rm -f "$RUN/infra.started" "$RUN/jaeger.started" "$RUN/prometheus.started"
	# Stop only what this script started: Cassandra/Kafka or Jaeger already running (make
	# infra-up, another user of the same servers) are left running by `down`.
	if "$HERE/infra.sh" status >/dev/null 2>&1; then
		say "Cassandra and Kafka already run: used as they are, and left running on stop"
	else
		touch "$RUN/infra.started"
		"$HERE/infra.sh" up
	fi
	if [[ $WITH_JAEGER == 1 ]]; then
		"$HERE/jaeger.sh" status >/dev/null 2>&1 || touch "$RUN/jaeger.started"
		"$HERE/jaeger.sh" up || die "jaeger did not start (RUN_JAEGER=0 runs without it)"
		export ORDERSYS_OTLP_ENDPOINT=${ORDERSYS_OTLP_ENDPOINT-127.0.0.1:4317}
	else
		say "RUN_JAEGER=0: spans are not exported"
		export ORDERSYS_OTLP_ENDPOINT=
	fi
	say "grpcurl: go tool (tools/go.mod; built once into the Go build cache, a minute or two)"
	need_grpcurl
	cmd_build

	# Customers' personal data is encrypted (docs/privacy.md) with a development KEK kept in
	# .state (made once; ORDERSYS_PII_KEK_FILE= set empty runs without encryption).
	if [[ -z ${ORDERSYS_PII_KEK_FILE+x} ]]; then
		export ORDERSYS_PII_KEK_FILE=$STATE/pii-kek.json
		if [[ ! -f $ORDERSYS_PII_KEK_FILE ]]; then
			"$BIN/ordersysctl" pii-kek new "$ORDERSYS_PII_KEK_FILE" >/dev/null || die "could not write the development KEK $ORDERSYS_PII_KEK_FILE"
		fi
		say "personal data encrypted with the development KEK $(rel "$ORDERSYS_PII_KEK_FILE")"
	fi

	if [[ $SECURE == 1 ]]; then
		(cd "$ROOT" && go run ./pkg/devpki/cmd/devsecrets -dir "$SECRETS") || die "devsecrets failed"
		export ORDERSYS_GRPC_TLS_CERT_FILE=$SECRETS/server.pem ORDERSYS_GRPC_TLS_KEY_FILE=$SECRETS/server-key.pem
		export ORDERSYS_AUTH_JWKS_FILE=$SECRETS/dev.jwks.json ORDERSYS_AUTH_ISSUER=https://issuer.test ORDERSYS_AUTH_AUDIENCE=ordersys
		"$HERE/kafka-secure.sh" up "$SECRETS" || die "the SASL_SSL Kafka did not start"
		eval "$("$HERE/kafka-secure.sh" env)"
		export ORDERSYS_KAFKA_TLS_CA_FILE=$SECRETS/ca.pem
		"$HERE/cassandra-secure.sh" up "$SECRETS" || die "the TLS-only Cassandra did not start"
		eval "$("$HERE/cassandra-secure.sh" env)"
		export ORDERSYS_CQL_TLS_CA_FILE=$SECRETS/ca.pem
		say "RUN_SECURE=1: gRPC TLS (CA $(rel "$SECRETS/ca.pem")) and bearer tokens on; Kafka over SASL_SSL on $ORDERSYS_KAFKA_BROKERS (SCRAM-SHA-512); Cassandra over TLS with a password on $ORDERSYS_CQL_HOSTS; OTLP to the local Jaeger stays plaintext"
	fi

	mkdir -p "$LOGS"
	say "migrate: keyspace $ORDERSYS_CQL_KEYSPACE (profile portable), log $(rel "$LOGS/migrate.log")"
	local try
	for try in 1 2 3 4 5 6; do # a fresh node may refuse the login for a few seconds
		ORDERSYS_CQL_PROFILE=${ORDERSYS_CQL_PROFILE:-portable} "$BIN/migrate" >>"$LOGS/migrate.log" 2>&1 && break
		((try < 6)) || {
			tail -n 20 "$LOGS/migrate.log" >&2
			die "migrate failed (log $(rel "$LOGS/migrate.log"))"
		}
		sleep 5
	done


	local name
	for name in "${SERVICES[@]}"; do start_service "$name"; done
	for name in "${SERVICES[@]}"; do wait_healthy "$name"; done
	say "all four services SERVING"
	if [[ $WITH_PROMETHEUS == 1 ]]; then
		local targets=()
		for name in "${SERVICES[@]}"; do targets+=("${METRICS[$name]}"); done
		"$HERE/prometheus.sh" status || touch "$RUN/prometheus.started"
		"$HERE/prometheus.sh" up "${targets[@]}" || die "prometheus did not start (RUN_PROMETHEUS=0 runs without it)"
	fi
}

# ---------------------------------------------------------------------------------------------
# Stop

stop_group() { # stop_group NAME...: SIGTERM to each, then wait; SIGKILL what outlives STOP_TIMEOUT
	local name pid pids=() names=()
	for name in "$@"; do
		if pid=$(pid_of "$name"); then
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
			names+=("$name")
		else
			rm -f "$RUN/$name.pid"
		fi
	done
	((${#pids[@]})) || return 0
	say "stopping ${names[*]} (SIGTERM)"
	local deadline=$((SECONDS + STOP_TIMEOUT)) i alive
	while :; do
		alive=0
		for i in "${!pids[@]}"; do kill -0 "${pids[$i]}" 2>/dev/null && alive=1; done
		((alive)) || break
		if ((SECONDS >= deadline)); then
			for i in "${!pids[@]}"; do
				if kill -0 "${pids[$i]}" 2>/dev/null; then
					say "${names[$i]} (pid ${pids[$i]}) still running after ${STOP_TIMEOUT}s: SIGKILL"
					kill -KILL "${pids[$i]}" 2>/dev/null || true
				fi
			done
			break
		fi
		sleep 0.2
	done
	for name in "${names[@]}"; do rm -f "$RUN/$name.pid"; done
}

cmd_down() {
	stop_group command query
	stop_group cdc-relay
	stop_group projector
	"$HERE/kafka-secure.sh" down
	"$HERE/cassandra-secure.sh" down
	if [[ -f $RUN/prometheus.started ]]; then
		"$HERE/prometheus.sh" down
		rm -f "$RUN/prometheus.started"
	fi
	if [[ -f $RUN/jaeger.started ]]; then
		"$HERE/jaeger.sh" down
		rm -f "$RUN/jaeger.started"
	elif "$HERE/jaeger.sh" status >/dev/null 2>&1; then
		say "Jaeger was running before: left running (make jaeger-down stops it)"
	fi
	if [[ ! -f $RUN/infra.started ]]; then
		say "Cassandra and Kafka were running before: left running (make infra-down stops them)"
	elif [[ $KEEP_INFRA == 1 ]]; then
		say "RUN_KEEP_INFRA=1: Cassandra and Kafka keep running (make infra-down stops them)"
	else
		"$HERE/infra.sh" down
		rm -f "$RUN/infra.started"
	fi
	say "stopped"
}

cmd_status() {
	local name pid st ok=0
	need_grpcurl
	for name in "${SERVICES[@]}"; do
		pid=$(pid_of "$name") || pid=""
		st=$(health "$name")
		printf '  %-10s %-22s pid %-8s health %s\n' "$name" "${GRPC[$name]}" "${pid:--}" "${st:-no answer}"
		[[ $st == SERVING ]] || ok=1
	done
	"$HERE/jaeger.sh" status || ok=1
	"$HERE/infra.sh" status || ok=1
	return $ok
}

# ---------------------------------------------------------------------------------------------
# How to call it

metrics_url() { local a=${METRICS[$1]}; [[ $a == :* ]] && a=127.0.0.1$a; echo "http://$a/metrics"; }

cmd_help() {
	local c=${GRPC[command]} q=${GRPC[query]} ctl
	ctl=$(rel "$BIN")/ordersysctl
	if [[ $SECURE == 1 ]]; then
		secure_help '$G' "$c" "$q"
		return
	fi
	cat <<EOF

ordersys runs: command $c, query $q, cdc-relay ${GRPC[cdc-relay]}, projector ${GRPC[projector]}
keyspace $ORDERSYS_CQL_KEYSPACE, Kafka $ORDERSYS_KAFKA_BROKERS (topics order-events, customer-events), logs $(rel "$LOGS")/

Call it from $ROOT with grpcurl (every server has reflection; docs/running.md has every call):

  G=$GRPCURL_CMD
  \$G -plaintext $c list
  \$G -plaintext -d '{"customer_id":"11111111-1111-4111-8111-111111111111","email":"ada@example.com","first_name":"Ada","last_name":"Lovelace","phone":"+441234567890"}' \\
      $c orders.v1.CustomerCommandService/RegisterCustomer
  \$G -plaintext -H 'x-correlation-id: demo-1' -d '{"order_id":"22222222-2222-4222-8222-222222222222","customer_id":"11111111-1111-4111-8111-111111111111","items":[{"product_id":"33333333-3333-4333-8333-333333333333","quantity":2,"unit_price_cents":1250}]}' \\
      $c orders.v1.OrderCommandService/CreateOrder
  \$G -plaintext -d '{"order_id":"22222222-2222-4222-8222-222222222222","min_version":1}' $q orders.v1.OrderQueryService/GetOrder
  $ctl -relay ${GRPC[cdc-relay]} -query $q relay status
  kcat -C -b $ORDERSYS_KAFKA_BROKERS -t order-events -o beginning -e -f '%k %h\n'

Look:
  traces   $JAEGER_UI  (service command, cdc-relay, projector, query; tag correlation_id=demo-1)
  metrics  $(metrics_url command)  $(metrics_url query)  $(metrics_url cdc-relay)  $(metrics_url projector)
  Prometheus $PROMETHEUS_UI (targets and the alert rules of deploy/prometheus/alerts.yaml; RUN_PROMETHEUS=0: none)
  logs     tail -f $(rel "$LOGS")/{command,query,cdc-relay,projector}.log

EOF
}

# secure_help G C Q: how to call the services of RUN_SECURE=1 (TLS and tokens).
secure_help() {
	local g=$1 c=$2 q=$3 s
	s=$(rel "$SECRETS")
	cat <<EOF

ordersys runs with gRPC TLS and bearer tokens: command $c, query $q, cdc-relay ${GRPC[cdc-relay]}, projector ${GRPC[projector]}
CA $s/ca.pem; tokens $s/token-writer (commands), $s/token-reader (queries), $s/token-admin (admin)

  G=$GRPCURL_CMD

  $g -cacert $s/ca.pem -H "authorization: Bearer \$(cat $s/token-writer)" -d '{"customer_id":"11111111-1111-4111-8111-111111111111","email":"ada@example.com","first_name":"Ada","last_name":"Lovelace"}' \\
      $c orders.v1.CustomerCommandService/RegisterCustomer
  $g -cacert $s/ca.pem -H "authorization: Bearer \$(cat $s/token-reader)" -d '{"customer_id":"11111111-1111-4111-8111-111111111111"}' $q orders.v1.CustomerQueryService/GetCustomer
  $g -cacert $s/ca.pem -d '{"service":""}' $c grpc.health.v1.Health/Check      # health needs no token
  $(rel "$BIN")/ordersysctl -ca $s/ca.pem -token-file $s/token-admin -relay ${GRPC[cdc-relay]} relay status

Kafka: SASL_SSL on 127.0.0.1:9094 (CA $s/ca.pem, SCRAM-SHA-512, user ordersys, password in
.state/kafka-secure/password), deploy/local/kafka-secure.sh; the relay and the projector use it.
Cassandra: TLS only with a password on 127.0.0.1:9142 (CA $s/ca.pem, user cassandra),
deploy/local/cassandra-secure.sh; every service and migrate use it.

EOF
}

# ---------------------------------------------------------------------------------------------

cmd_run() {
	local stopping=0
	on_signal() {
		((stopping)) && return
		stopping=1
		# A reader of this output (`make run | tee log`) may have died of the same Ctrl-C: then
		# the rest goes to .state/logs/run.log instead of ending this script with SIGPIPE.
		trap '' PIPE
		{ echo; } 2>/dev/null || exec >>"$LOGS/run.log" 2>&1
		say "interrupted: stopping everything"
		cmd_down
		exit 0
	}
	trap on_signal INT TERM HUP
	# A failed start stops what it had started, too.
	trap '[[ $? -ne 0 && $stopping -eq 0 ]] && { stopping=1; say "start failed: stopping what was started"; cmd_down; }' EXIT
	cmd_up
	cmd_help
	local what="the four services"
	[[ -f $RUN/jaeger.started ]] && what+=", Jaeger"
	[[ -f $RUN/prometheus.started ]] && what+=", Prometheus"
	[[ -f $RUN/infra.started && $KEEP_INFRA != 1 ]] && what+=", Cassandra and Kafka"
	say "running (pid $$); Ctrl-C, SIGTERM or make stop stops $what"
	# Watch the services: one that dies is reported, and the rest keep running; once `make stop`
	# (down) has removed every pid file, there is nothing left to watch.
	local -A reported=()
	local name left
	while :; do
		left=0
		for name in "${SERVICES[@]}"; do [[ -f $RUN/$name.pid ]] && left=1; done
		if ((left == 0)); then
			say "the services were stopped (make stop): done"
			exit 0
		fi
		for name in "${SERVICES[@]}"; do
			if [[ -z ${reported[$name]:-} ]] && ! pid_of "$name" >/dev/null; then
				reported[$name]=1
				say "WARNING: $name exited; last lines of $(rel "$LOGS/$name.log"):"
				tail -n 10 "$LOGS/$name.log" >&2 || true
			fi
		done
		sleep 2 &
		wait $! || true
	done
}

case ${1:-} in
run) cmd_run ;;
up) cmd_up; cmd_help ;;
down) cmd_down ;;
status) cmd_status ;;
build) cmd_build ;;
help) cmd_help ;;
*)
	echo "usage: $0 run|up|down|status|build|help" >&2
	exit 2
	;;
esac
