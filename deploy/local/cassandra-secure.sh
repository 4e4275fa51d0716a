#!/usr/bin/env bash
# A second local Cassandra node that speaks only TLS on its native port and requires a password,
# for `make run-secure` (deploy/local/run.sh with RUN_SECURE=1); the plaintext node of infra.sh,
# which the tests share, is left alone.
#
#   deploy/local/cassandra-secure.sh up SECRETS_DIR   start it (TLS certificate SECRETS_DIR/server.pem
#                                                     and server-key.pem of pkg/devpki) and wait
#                                                     until its port accepts connections
#   deploy/local/cassandra-secure.sh down             stop it
#   deploy/local/cassandra-secure.sh env              print the export lines of a client's
#                                                     ORDERSYS_CQL_* settings (CA: SECRETS_DIR/ca.pem)
#
# It runs the jars infra.sh resolved (.state/cassandra/lib, or $INFRA_STATE_DIR/cassandra/lib)
# with deploy/local/cassandra/cassandra.yaml.in, PasswordAuthenticator instead of
# AllowAllAuthenticator and client_encryption_options (enabled, not optional: TLS only), on
# CASSANDRA_SECURE_PORT [9142] (storage port CASSANDRA_SECURE_STORAGE_PORT [7100]). The client is
# the built-in superuser cassandra/cassandra (a development machine; docs/security.md). Data and
# logs live in .state/cassandra-secure.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
STATE=$ROOT/.state
LIB=${INFRA_STATE_DIR:-$STATE}/cassandra/lib
DIR=$STATE/cassandra-secure
ADDR=127.0.0.1
PORT=${CASSANDRA_SECURE_PORT:-9142}
STORAGE_PORT=${CASSANDRA_SECURE_STORAGE_PORT:-7100}
HEAP=${CASSANDRA_SECURE_HEAP:-512m}
START_TIMEOUT=${INFRA_START_TIMEOUT:-180}
STORE_PASS=changeit # of the PKCS#12 keystore, a file in .state only

say() { printf '[cassandra-secure] %s\n' "$*"; }
die() { say "ERROR: $*" >&2; exit 1; }

pid_of() {
	local pid
	[[ -f $DIR/cassandra.pid ]] || return 1
	pid=$(cat "$DIR/cassandra.pid")
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$DIR/conf/cassandra.yaml" || return 1
	echo "$pid"
}

cmd_env() {
	printf 'export ORDERSYS_CQL_HOSTS=%q ORDERSYS_CQL_USERNAME=cassandra ORDERSYS_CQL_PASSWORD=cassandra\n' "$ADDR:$PORT"
}

cmd_up() {
	local secrets=${1:?usage: cassandra-secure.sh up SECRETS_DIR}
	local jamm
	jamm=$(find "$LIB" -name 'jamm-*.jar' 2>/dev/null | head -n1)
	[[ -n $jamm ]] || die "no Cassandra jars in $LIB: run make infra-up once"
	[[ -f $secrets/server.pem && -f $secrets/server-key.pem ]] || die "no server.pem / server-key.pem in $secrets"
	if pid_of >/dev/null; then
		say "already running on $ADDR:$PORT"
		return 0
	fi
	mkdir -p "$DIR"/{conf,data,commitlog,hints,saved_caches,cdc_raw,triggers,logs}
	chmod 700 "$DIR"
	# Cassandra reads a PKCS#12 keystore (made again at every start: devsecrets may have made a
	# new CA).
	openssl pkcs12 -export -in "$secrets/server.pem" -inkey "$secrets/server-key.pem" -out "$DIR/conf/node.p12" \
		-passout "pass:$STORE_PASS" -name node 2>"$DIR/logs/openssl.log" || { cat "$DIR/logs/openssl.log" >&2; die "openssl pkcs12 failed"; }
	chmod 600 "$DIR/conf/node.p12"
	sed -e "s|@STATE@|$DIR|g" -e "s|@ADDR@|$ADDR|g" -e "s|@CQL_PORT@|$PORT|g" -e "s|@STORAGE_PORT@|$STORAGE_PORT|g" \
		"$HERE/cassandra/cassandra.yaml.in" >"$DIR/conf/cassandra.yaml"
	grep -q 'class_name: AllowAllAuthenticator' "$DIR/conf/cassandra.yaml" ||
		die "cassandra.yaml.in has no AllowAllAuthenticator to replace"
	sed -i 's|class_name: AllowAllAuthenticator|class_name: PasswordAuthenticator|' "$DIR/conf/cassandra.yaml"
	cat >>"$DIR/conf/cassandra.yaml" <<EOF

# TLS only, with a password (cassandra-secure.sh)
client_encryption_options:
  enabled: true
  optional: false
  keystore: $DIR/conf/node.p12
  keystore_password: $STORE_PASS
  store_type: PKCS12
  require_client_auth: false
EOF
	cp "$HERE/cassandra/logback.xml" "$HERE/cassandra/jvm17-server.args" "$DIR/conf/"
	say "starting on $ADDR:$PORT (TLS only, password; log .state/cassandra-secure/logs/system.log)"
	setsid java @"$DIR/conf/jvm17-server.args" -Xms"$HEAP" -Xmx"$HEAP" -XX:HeapDumpPath="$DIR/logs" \
		-javaagent:"$jamm" \
		-Dcassandra.config="file://$DIR/conf/cassandra.yaml" -Dcassandra-foreground=yes \
		-Dcassandra.storagedir="$DIR" -Dcassandra.logdir="$DIR/logs" -Dcassandra.triggers_dir="$DIR/triggers" \
		-Dlogback.configurationFile="file://$DIR/conf/logback.xml" \
		-Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.superuser_setup_delay_ms=0 -Dcassandra.skip_sync=true \
		-cp "$LIB/*" org.apache.cassandra.service.CassandraDaemon \
		</dev/null >"$DIR/logs/stdout.log" 2>&1 9>&- &
	echo $! >"$DIR/cassandra.pid"
	local deadline=$((SECONDS + START_TIMEOUT))
	until grep -q "Starting listening for CQL clients" "$DIR/logs/stdout.log" "$DIR/logs/system.log" 2>/dev/null; do
		pid_of >/dev/null || { tail -n 30 "$DIR/logs/stdout.log" >&2; die "it exited during start-up"; }
		((SECONDS < deadline)) || die "not listening after ${START_TIMEOUT}s (.state/cassandra-secure/logs)"
		sleep 1
	done
	say "ready on $ADDR:$PORT"
}

cmd_down() {
	local pid i
	pid=$(pid_of) || { rm -f "$DIR/cassandra.pid"; return 0; }
	say "stopping (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 120); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$DIR/cassandra.pid"
}

case ${1:-} in
up) shift; cmd_up "$@" ;;
down) cmd_down ;;
env) cmd_env ;;
*) echo "usage: $0 up SECRETS_DIR|down|env" >&2; exit 2 ;;
esac
