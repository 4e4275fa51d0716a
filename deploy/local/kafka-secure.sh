#!/usr/bin/env bash
# A second local Kafka node whose only client listener is SASL_SSL, for `make run-secure`
# (deploy/local/run.sh with RUN_SECURE=1); the plaintext node of infra.sh, which the tests share,
# is left alone.
#
#   deploy/local/kafka-secure.sh up SECRETS_DIR   start it (TLS certificate SECRETS_DIR/server.pem
#                                                 and server-key.pem of pkg/devpki) and wait for it
#   deploy/local/kafka-secure.sh down             stop it
#   deploy/local/kafka-secure.sh env              print the export lines of a client's ORDERSYS_KAFKA_*
#                                                 settings (for eval; the CA is SECRETS_DIR/ca.pem)
#
# It runs the jars infra.sh resolved (.state/kafka/lib, or $INFRA_STATE_DIR/kafka/lib) with the
# settings of deploy/local/kafka/server.properties.in, on KAFKA_SECURE_PORT [9094] (SASL_SSL,
# SCRAM-SHA-512 for user ordersys, whose random password is created with the data in
# .state/kafka-secure/password) plus loopback listeners for itself on the next two ports. Data and
# logs live in .state/kafka-secure.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
STATE=$ROOT/.state
LIB=${INFRA_STATE_DIR:-$STATE}/kafka/lib
DIR=$STATE/kafka-secure
ADDR=127.0.0.1
PORT=${KAFKA_SECURE_PORT:-9094}
INTERNAL_PORT=$((PORT + 1))
CONTROLLER_PORT=$((PORT + 2))
USER_NAME=ordersys
START_TIMEOUT=${INFRA_START_TIMEOUT:-120}

say() { printf '[kafka-secure] %s\n' "$*"; }
die() { say "ERROR: $*" >&2; exit 1; }

pid_of() {
	local pid
	[[ -f $DIR/kafka.pid ]] || return 1
	pid=$(cat "$DIR/kafka.pid")
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$DIR/conf/server.properties" || return 1
	echo "$pid"
}

cmd_env() {
	[[ -s $DIR/password ]] || die "not started yet"
	printf 'export ORDERSYS_KAFKA_BROKERS=%q ORDERSYS_KAFKA_SASL_MECHANISM=SCRAM-SHA-512 ORDERSYS_KAFKA_SASL_USERNAME=%q ORDERSYS_KAFKA_SASL_PASSWORD=%q\n' \
		"$ADDR:$PORT" "$USER_NAME" "$(cat "$DIR/password")"
}

cmd_up() {
	local secrets=${1:?usage: kafka-secure.sh up SECRETS_DIR}
	[[ -f $LIB/.stamp ]] || die "no Kafka jars in $LIB: run make infra-up once"
	[[ -f $secrets/server.pem && -f $secrets/server-key.pem ]] || die "no server.pem / server-key.pem in $secrets"
	if pid_of >/dev/null; then
		say "already running on $ADDR:$PORT"
		return 0
	fi
	mkdir -p "$DIR"/{conf,data,logs}
	chmod 700 "$DIR"
	# Kafka's PEM key store: the key in PKCS#8, then the certificate (read again at every start,
	# since devsecrets may have made a new CA).
	{ openssl pkcs8 -topk8 -nocrypt -in "$secrets/server-key.pem" && cat "$secrets/server.pem"; } >"$DIR/conf/keystore.pem"
	chmod 600 "$DIR/conf/keystore.pem"
	# The plaintext node's settings with the listeners replaced: SASL_SSL for clients,
	# loopback plaintext for the node itself.
	sed -e "s|@STATE@|$DIR|g" -e "s|@ADDR@|$ADDR|g" -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
		-e '/^listeners=/d' -e '/^advertised.listeners=/d' -e '/^inter.broker.listener.name=/d' \
		-e '/^listener.security.protocol.map=/d' "$HERE/kafka/server.properties.in" >"$DIR/conf/server.properties"
	cat >>"$DIR/conf/server.properties" <<EOF

# SASL_SSL for clients (kafka-secure.sh)
listeners=SECURE://$ADDR:$PORT,INTERNAL://$ADDR:$INTERNAL_PORT,CONTROLLER://$ADDR:$CONTROLLER_PORT
advertised.listeners=SECURE://$ADDR:$PORT,INTERNAL://$ADDR:$INTERNAL_PORT,CONTROLLER://$ADDR:$CONTROLLER_PORT
inter.broker.listener.name=INTERNAL
listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SECURE:SASL_SSL
listener.name.secure.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.secure.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.secure.ssl.keystore.type=PEM
listener.name.secure.ssl.keystore.location=$DIR/conf/keystore.pem
EOF
	cp "$HERE/kafka/log4j2.xml" "$DIR/conf/"
	local jvm=(-Dlog4j2.configurationFile="$DIR/conf/log4j2.xml" -Dkafka.logs.dir="$DIR/logs"
		-Djava.awt.headless=true -cp "$LIB/*")
	if [[ ! -f $DIR/data/meta.properties ]]; then
		head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$DIR/password"
		chmod 600 "$DIR/password"
		local id
		id=$(java "${jvm[@]}" kafka.tools.StorageTool random-uuid)
		say "formatting storage with SCRAM-SHA-512 user $USER_NAME"
		java "${jvm[@]}" kafka.tools.StorageTool format --standalone -t "$id" -c "$DIR/conf/server.properties" \
			--add-scram "SCRAM-SHA-512=[name=$USER_NAME,password=$(cat "$DIR/password")]" >"$DIR/logs/format.log" 2>&1 ||
			{ cat "$DIR/logs/format.log" >&2; die "storage format failed"; }
	fi
	say "starting on $ADDR:$PORT (SASL_SSL; log .state/kafka-secure/logs/server.log)"
	: >"$DIR/logs/server.log"
	setsid java -Xms256m -Xmx512m -XX:+UseSerialGC "${jvm[@]}" kafka.Kafka "$DIR/conf/server.properties" \
		</dev/null >"$DIR/logs/stdout.log" 2>&1 9>&- &
	echo $! >"$DIR/kafka.pid"
	local deadline=$((SECONDS + START_TIMEOUT))
	until grep -q 'Kafka Server started' "$DIR/logs/server.log" 2>/dev/null; do
		pid_of >/dev/null || { tail -n 30 "$DIR/logs/stdout.log" >&2; die "it exited during start-up"; }
		((SECONDS < deadline)) || die "not started after ${START_TIMEOUT}s (.state/kafka-secure/logs/server.log)"
		sleep 0.5
	done
	say "ready on $ADDR:$PORT"
}

cmd_down() {
	local pid i
	pid=$(pid_of) || { rm -f "$DIR/kafka.pid"; return 0; }
	say "stopping (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 120); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$DIR/kafka.pid"
}

case ${1:-} in
up) shift; cmd_up "$@" ;;
down) cmd_down ;;
env) cmd_env ;;
*) echo "usage: $0 up SECRETS_DIR|down|env" >&2; exit 2 ;;
esac
