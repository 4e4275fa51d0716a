#!/usr/bin/env bash
# Local Cassandra and Kafka for development and tests, without Docker (see docs/running.md).
#
#   deploy/local/infra.sh up       download (first time), start and wait until both answer requests
#   deploy/local/infra.sh down     stop both (SIGTERM, then SIGKILL after INFRA_STOP_TIMEOUT)
#   deploy/local/infra.sh status   say what runs; exit 0 only when both answer
#   deploy/local/infra.sh logs [cassandra|kafka] [lines]
#
# Jars, configuration, data, pid files and logs all live under .state/ at the repository root
# (git-ignored). `up` is idempotent: servers it started that still answer are left alone, and a
# server of another checkout already answering on the same port is used as it is.
#
# Environment (defaults in brackets):
#   INFRA_STATE_DIR [<repo>/.state]   INFRA_ADDR [127.0.0.1]
#   INFRA_CQL_PORT [9042]  INFRA_STORAGE_PORT [7000]  INFRA_KAFKA_PORT [9092]
#   INFRA_KAFKA_CONTROLLER_PORT [9093]  CASSANDRA_HEAP [1g]  KAFKA_HEAP [512m]
#   CASSANDRA_SKIP_FSYNC [true] (development node: no fsync; false for durable writes)
#   INFRA_START_TIMEOUT [300] seconds per server   INFRA_STOP_TIMEOUT [60] seconds per server
#   CASSANDRA_VERSION [5.0.8]  KAFKA_VERSION [4.3.1]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
STATE=${INFRA_STATE_DIR:-$ROOT/.state}
ADDR=${INFRA_ADDR:-127.0.0.1}
CQL_PORT=${INFRA_CQL_PORT:-9042}
STORAGE_PORT=${INFRA_STORAGE_PORT:-7000}
KAFKA_PORT=${INFRA_KAFKA_PORT:-9092}
CONTROLLER_PORT=${INFRA_KAFKA_CONTROLLER_PORT:-9093}
CASSANDRA_HEAP=${CASSANDRA_HEAP:-1g}
# Development node: no fsync (like ScyllaDB's developer mode); a process crash loses nothing, a
# machine crash may. DROP KEYSPACE flushes every dirty table, which with fsync costs seconds here.
CASSANDRA_SKIP_FSYNC=${CASSANDRA_SKIP_FSYNC:-true}
KAFKA_HEAP=${KAFKA_HEAP:-512m}
START_TIMEOUT=${INFRA_START_TIMEOUT:-300}
STOP_TIMEOUT=${INFRA_STOP_TIMEOUT:-60}
CASSANDRA_VERSION=${CASSANDRA_VERSION:-5.0.8}
KAFKA_VERSION=${KAFKA_VERSION:-4.3.1}

C_DIR=$STATE/cassandra
K_DIR=$STATE/kafka
PROBE=$STATE/bin/infraprobe
# The probe and the tests read the same variables as the services.
export ORDERSYS_CQL_HOSTS="$ADDR:$CQL_PORT"
export ORDERSYS_KAFKA_BROKERS="$ADDR:$KAFKA_PORT"

T0=$SECONDS
say() { printf '[infra +%3ss] %s\n' "$((SECONDS - T0))" "$*"; }
die() { say "ERROR: $*" >&2; exit 1; }
rel() { printf '%s' "${1#"$ROOT"/}"; }

need() {
	local t
	for t in "$@"; do command -v "$t" >/dev/null 2>&1 || die "'$t' is not installed (needed: java 17, mvn, go)"; done
}

# ---------------------------------------------------------------------------------------------
# Jars from Maven Central

# resolve NAME POM_DIR LIB_DIR MAVEN_ARGS...: copy the runtime classpath of POM_DIR/pom.xml into
# LIB_DIR, unless LIB_DIR already holds it for the same pom and arguments.
resolve() {
	local name=$1 pom_dir=$2 lib=$3
	shift 3
	local stamp
	stamp=$( (cat "$pom_dir/pom.xml"; printf '%s\n' "$@") | sha256sum | cut -d' ' -f1)
	if [[ -f $lib/.stamp && $(cat "$lib/.stamp") == "$stamp" ]]; then
		return 0
	fi
	say "resolving $name from Maven Central into $(rel "$lib") (first time only: 1-2 minutes)"
	local tmp=$lib.tmp.$$ attempt mvnlog=$STATE/maven-${name%% *}.log
	mkdir -p "$STATE"
	for attempt in 1 2 3; do
		rm -rf "$tmp"
		if mvn -B -Dstyle.color=never -f "$pom_dir/pom.xml" "$@" \
			dependency:copy-dependencies -DoutputDirectory="$tmp" -DincludeScope=runtime >"$mvnlog" 2>&1; then
			rm -rf "$lib"
			mv "$tmp" "$lib"
			echo "$stamp" >"$lib/.stamp"
			say "$name: $(find "$lib" -name '*.jar' | wc -l) jars ($(du -sh "$lib" | cut -f1))"
			return 0
		fi
		tail -n 30 "$mvnlog" >&2
		say "maven failed for $name (attempt $attempt of 3; full output in $(rel "$mvnlog"))"
		sleep $((attempt * 5))
	done
	rm -rf "$tmp"
	die "could not resolve $name with maven; see the errors above"
}

resolve_cassandra() {
	resolve "cassandra $CASSANDRA_VERSION" "$HERE/cassandra" "$C_DIR/lib" -Dcassandra.version="$CASSANDRA_VERSION"
}
resolve_kafka() {
	resolve "kafka $KAFKA_VERSION" "$HERE/kafka" "$K_DIR/lib" -Dkafka.version="$KAFKA_VERSION"
}

# port_open PORT: something accepts TCP connections on ADDR:PORT.
port_open() { (exec 3<>"/dev/tcp/$ADDR/$1") 2>/dev/null; }

# ---------------------------------------------------------------------------------------------
# Readiness probe (pkg/testinfra/cmd/infraprobe), rebuilt when its sources change

probe_fresh() {
	local src=$ROOT/pkg
	[[ -x $PROBE && -z $(find "$src/testinfra" "$src/go.mod" "$src/go.sum" -newer "$PROBE" \
		\( -name '*.go' ! -name '*_test.go' -o -name 'go.*' \) -print -quit) ]]
}

build_probe() {
	local src=$ROOT/pkg
	probe_fresh && return 0
	mkdir -p "$(dirname "$PROBE")"
	# GOWORK=off: the probe needs pkg only, so half-edited service modules cannot break it.
	(cd "$src" && GOWORK=off go build -buildvcs=false -o "$PROBE.tmp" ./testinfra/cmd/infraprobe)
	mv "$PROBE.tmp" "$PROBE"
}

probe() { "$PROBE" -timeout "${2:-5s}" "$1"; }

# ---------------------------------------------------------------------------------------------
# Processes

# pid_of NAME: the pid in NAME's pid file if that process is alive and still ours.
pid_of() {
	local name=$1 dir main pid
	case $name in
	cassandra) dir=$C_DIR main=org.apache.cassandra.service.CassandraDaemon ;;
	kafka) dir=$K_DIR main=kafka.Kafka ;;
	esac
	[[ -f $dir/$name.pid ]] || return 1
	pid=$(cat "$dir/$name.pid")
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$main" || return 1
	echo "$pid"
}

# keep_previous FILE...: move each FILE to FILE.prev, so that a failing start shows its own log.
keep_previous() {
	local f
	for f in "$@"; do [[ -f $f ]] && mv -f "$f" "$f.prev"; done
	return 0
}

render() { # render TEMPLATE OUT STATE_DIR
	sed -e "s|@STATE@|$3|g" -e "s|@ADDR@|$ADDR|g" -e "s|@CQL_PORT@|$CQL_PORT|g" \
		-e "s|@STORAGE_PORT@|$STORAGE_PORT|g" -e "s|@BROKER_PORT@|$KAFKA_PORT|g" \
		-e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" "$1" >"$2"
}

start_cassandra() {
	resolve_cassandra
	mkdir -p "$C_DIR"/{conf,data,commitlog,hints,saved_caches,cdc_raw,triggers,logs}
	render "$HERE/cassandra/cassandra.yaml.in" "$C_DIR/conf/cassandra.yaml" "$C_DIR"
	cp "$HERE/cassandra/logback.xml" "$HERE/cassandra/jvm17-server.args" "$C_DIR/conf/"
	local jamm
	jamm=$(find "$C_DIR/lib" -name 'jamm-*.jar' | head -n1)
	[[ -n $jamm ]] || die "no jamm jar in $(rel "$C_DIR/lib")"
	keep_previous "$C_DIR/logs/system.log" "$C_DIR/logs/stdout.log"
	say "starting cassandra $CASSANDRA_VERSION on $ADDR:$CQL_PORT (log: $(rel "$C_DIR/logs/system.log"))"
	# setsid: own session, so the server outlives the shell that started it; 9>&- : do not
	# inherit the lock of this script.
	setsid java @"$C_DIR/conf/jvm17-server.args" \
		-Xms"$CASSANDRA_HEAP" -Xmx"$CASSANDRA_HEAP" \
		-XX:HeapDumpPath="$C_DIR/logs" \
		-javaagent:"$jamm" \
		-Dcassandra.config="file://$C_DIR/conf/cassandra.yaml" \
		-Dcassandra-foreground=yes \
		-Dcassandra.storagedir="$C_DIR" \
		-Dcassandra.logdir="$C_DIR/logs" \
		-Dcassandra.triggers_dir="$C_DIR/triggers" \
		-Dlogback.configurationFile="file://$C_DIR/conf/logback.xml" \
		-Dcassandra.skip_wait_for_gossip_to_settle=0 \
		-Dcassandra.superuser_setup_delay_ms=0 \
		-Dcassandra.test.flush_local_schema_changes=false \
		-Dcassandra.skip_sync="$CASSANDRA_SKIP_FSYNC" \
		-cp "$C_DIR/lib/*" org.apache.cassandra.service.CassandraDaemon \
		</dev/null >"$C_DIR/logs/stdout.log" 2>&1 9>&- &
	echo $! >"$C_DIR/cassandra.pid"
}

start_kafka() {
	resolve_kafka
	mkdir -p "$K_DIR"/{conf,data,logs}
	render "$HERE/kafka/server.properties.in" "$K_DIR/conf/server.properties" "$K_DIR"
	cp "$HERE/kafka/log4j2.xml" "$K_DIR/conf/"
	local jvm=(-Dlog4j2.configurationFile="$K_DIR/conf/log4j2.xml" -Dkafka.logs.dir="$K_DIR/logs"
		-Djava.awt.headless=true -cp "$K_DIR/lib/*")
	if [[ ! -f $K_DIR/data/meta.properties ]]; then
		local id
		if [[ ! -s $K_DIR/cluster.id ]]; then
			# What `StorageTool random-uuid` prints (a base64url UUID, not starting with '-'),
			# without paying for a JVM start.
			id=-
			while [[ $id == -* ]]; do
				id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' | cut -c1-22)
			done
			echo "$id" >"$K_DIR/cluster.id"
		fi
		id=$(tr -d '[:space:]' <"$K_DIR/cluster.id")
		say "formatting kafka storage (KRaft, cluster id $id)"
		java "${jvm[@]}" kafka.tools.StorageTool format --standalone -t "$id" \
			-c "$K_DIR/conf/server.properties" --ignore-formatted >"$K_DIR/logs/format.log" 2>&1 ||
			{ cat "$K_DIR/logs/format.log" >&2; die "kafka storage format failed"; }
	fi
	keep_previous "$K_DIR/logs/server.log" "$K_DIR/logs/stdout.log"
	say "starting kafka $KAFKA_VERSION on $ADDR:$KAFKA_PORT (log: $(rel "$K_DIR/logs/server.log"))"
	setsid java -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
		-XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
		-XX:HeapDumpPath="$K_DIR/logs" "${jvm[@]}" kafka.Kafka "$K_DIR/conf/server.properties" \
		</dev/null >"$K_DIR/logs/stdout.log" 2>&1 9>&- &
	echo $! >"$K_DIR/kafka.pid"
}

# show_log NAME [LINES]: the tail of NAME's main log and of its captured stdout.
show_log() {
	local name=$1 n=${2:-50} dir main
	case $name in
	cassandra) dir=$C_DIR main=$C_DIR/logs/system.log ;;
	kafka) dir=$K_DIR main=$K_DIR/logs/server.log ;;
	esac
	if [[ -s $main ]]; then
		echo "----- last $n lines of $(rel "$main") -----"
		tail -n "$n" "$main"
	fi
	if [[ -s $dir/logs/stdout.log ]]; then
		echo "----- last 20 lines of $(rel "$dir/logs/stdout.log") -----"
		tail -n 20 "$dir/logs/stdout.log"
	fi
	echo "-----"
}

# wait_ready NAME: wait until NAME answers a real request, its process dies, or the timeout.
wait_ready() {
	local name=$1 start=$SECONDS last=$SECONDS out pid
	while :; do
		if out=$(probe "$name" 2>&1); then
			say "$name ready after $((SECONDS - start))s: $out"
			return 0
		fi
		if ! pid=$(pid_of "$name"); then
			say "$name exited before answering; last probe: $out" >&2
			show_log "$name" 50 >&2
			return 1
		fi
		if ((SECONDS - start >= START_TIMEOUT)); then
			say "$name (pid $pid) did not answer within ${START_TIMEOUT}s; last probe: $out" >&2
			show_log "$name" 50 >&2
			return 1
		fi
		if ((SECONDS - last >= 15)); then
			say "waiting for $name (pid $pid, $((SECONDS - start))s)..."
			last=$SECONDS
		fi
		sleep 1
	done
}

# ensure NAME: start NAME unless it already runs (ours) or answers (someone else's); a NAME that
# has to be waited for is added to WAIT.
WAIT=()
ensure() {
	local name=$1 pid out
	if pid=$(pid_of "$name"); then
		if out=$(probe "$name" 2>&1); then
			say "$name already running (pid $pid): $out"
		else
			say "$name is starting (pid $pid)"
			WAIT+=("$name")
		fi
		return 0
	fi
	if out=$(probe "$name" 2>&1); then
		say "$name already answered by a process not started from $(rel "$STATE"): $out"
		return 0
	fi
	"start_$name"
	WAIT+=("$name")
}

lock() {
	mkdir -p "$STATE"
	exec 9>"$STATE/infra.lock"
	if ! flock -n 9; then
		say "another infra.sh holds $(rel "$STATE/infra.lock"); waiting for it"
		flock 9
	fi
}

# ---------------------------------------------------------------------------------------------
# Commands

cmd_up() {
	need java mvn go setsid flock
	lock
	local probe_pid rc=0
	probe_fresh || say "building the readiness probe (pkg/testinfra/cmd/infraprobe) in the background"
	build_probe >"$STATE/probe-build.log" 2>&1 &
	probe_pid=$!
	# While the probe builds: download what will have to start. Both servers' jars are resolved
	# even when their ports already answer: tests start private servers from them (the relay's
	# outage test a Kafka, the CQL TLS test a Cassandra), and with a warm ~/.m2 this is a local
	# copy.
	resolve_cassandra
	resolve_kafka
	if ! wait "$probe_pid"; then
		cat "$STATE/probe-build.log" >&2
		die "building the readiness probe failed"
	fi
	ensure cassandra
	ensure kafka
	local name
	for name in "${WAIT[@]}"; do
		wait_ready "$name" || rc=1
	done
	if ((rc != 0)); then
		die "infrastructure did not come up (see the log tails above; 'make infra-down' stops what started)"
	fi
	say "up: CQL on $ORDERSYS_CQL_HOSTS, Kafka on $ORDERSYS_KAFKA_BROKERS"
}

# stop NAME...: SIGTERM each, then SIGKILL whatever is left after STOP_TIMEOUT.
cmd_down() {
	need flock
	lock
	local name pid pids=() names=()
	for name in kafka cassandra; do
		if pid=$(pid_of "$name"); then
			say "stopping $name (pid $pid)"
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
			names+=("$name")
		else
			say "$name is not running (from $(rel "$STATE"))"
		fi
	done
	local i deadline=$((SECONDS + STOP_TIMEOUT))
	for i in "${!pids[@]}"; do
		while kill -0 "${pids[$i]}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
		if kill -0 "${pids[$i]}" 2>/dev/null; then
			say "${names[$i]} still running after ${STOP_TIMEOUT}s: SIGKILL"
			kill -KILL "${pids[$i]}" 2>/dev/null || true
			while kill -0 "${pids[$i]}" 2>/dev/null; do sleep 0.2; done
		fi
		say "${names[$i]} stopped"
	done
	rm -f "$C_DIR/cassandra.pid" "$K_DIR/kafka.pid"
}

cmd_status() {
	local name pid out rc=0
	probe_fresh || build_probe
	for name in cassandra kafka; do
		pid=$(pid_of "$name") || pid=""
		if out=$(probe "$name" 2>&1); then
			echo "$name: ${pid:+running (pid $pid), }$out"
		else
			echo "$name: ${pid:+process $pid is running but }not answering: $out"
			rc=3
		fi
	done
	return $rc
}

cmd_logs() {
	local which=${1:-all} n=${2:-50}
	case $which in
	cassandra | kafka) show_log "$which" "$n" ;;
	all) show_log cassandra "$n"; show_log kafka "$n" ;;
	*) die "usage: infra.sh logs [cassandra|kafka|all] [lines]" ;;
	esac
}

case ${1:-} in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
logs) shift; cmd_logs "$@" ;;
*)
	echo "usage: $0 up|down|status|logs [cassandra|kafka] [lines]" >&2
	exit 2
	;;
esac
