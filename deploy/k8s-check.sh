#!/usr/bin/env bash
# k8s-check.sh installs the Helm chart on a real, throw-away Kubernetes API server on loopback.
#
# What it starts (all on 127.0.0.1, free ports picked at start, everything stopped on exit, also on
# failure or Ctrl-C): etcd (Debian's etcd-server, installed with apt-get when missing), the pinned
# kube-apiserver and kube-controller-manager (deploy/k8s-tools.sh), with serving and client
# certificates made by openssl. There are no nodes and no container runtime: pods are created and
# admitted, never scheduled or run.
#
# What it checks, for the chart defaults and every helm/ordersys/ci/*-values.yaml, each in its own
# namespace labelled pod-security.kubernetes.io/{enforce,warn,audit}=restricted:
#   1. server-side dry-run of every rendered object, hooks and test pods included
#      (helm template --validate | kubectl apply --server-side --dry-run=server) in a scratch
#      namespace: fails on any error (Forbidden, Invalid, unknown kind) and on any warning (PodSecurity
#      "would violate", deprecations);
#   2. helm install --no-hooks (hook Jobs would wait forever for pods that never run): every object of
#      the release exists, the controller-manager created every Deployment's pods (so they passed
#      PodSecurity enforcement), no FailedCreate event;
#   3. the release's hooks (migration Job, its Secret, the helm test pods) created for real: the Job
#      controller creates the migration pod, the test pods are admitted;
#   4. helm upgrade to changed values (sample ratio, projector replicas) and helm rollback to
#      revision 1, checking the objects and those values after each;
#   5. the ServiceMonitor guard: without the Prometheus Operator CRDs a release with
#      serviceMonitor.enabled installs without a ServiceMonitor and its notes say so, forcing it fails
#      on the server; with the pinned CRDs (deploy/k8s/crds) an upgrade creates it. The cert-manager
#      guard: without cert-manager's Certificate CRD, ci/cert-manager-values.yaml is refused by the
#      server; the pinned CRD is installed before the first values file that renders a Certificate
#      (no cert-manager controller runs: its Secret is a prereq, see below).
#   6. self-test: every deploy/k8s/violations/*-values.yaml (values that break PodSecurity restricted)
#      must be refused by step 1, so the check is known to catch what it looks for.
# Values files may need objects a user creates first (an existing Secret, ServiceAccount):
# deploy/k8s/prereqs/<values file name> holds them, created before the dry-run and the install, and
# after the install every Secret the pods mount or read must exist (for cert-manager-values.yaml the
# prereq stands in for the Secret cert-manager would write).
#
# With K8S_CHECK_NODES=1 (make k8s-check-nodes) it also starts kube-scheduler and kwok
# (sigs.k8s.io/kwok) with one simulated node: pods are scheduled and marked running and ready by kwok
# (no container runs, no probe is executed), so step 2 becomes a real `helm install --wait` with its
# hooks (the migration Job completes), `helm test` runs its course, and upgrade and rollback --wait,
# for the chart defaults only (slow: kwok moves pods on after seconds to a minute each).
#
# Usage: deploy/k8s-check.sh          (make k8s-check builds the tools first)
# Environment: K8S_CHECK_KEEP=1 keeps the work folder (.state/k8s-check) after a success too;
#              K8S_CHECK_NODES=1 simulated nodes (needs kube-scheduler and kwok in .state/tools/bin).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/.state/tools/bin
HELM=$BIN/helm
KUBECTL=$BIN/kubectl
CHART=$ROOT/helm/ordersys
CRDS=$ROOT/deploy/k8s/crds
PREREQS=$ROOT/deploy/k8s/prereqs
VIOLATIONS=$ROOT/deploy/k8s/violations
WORK=$ROOT/.state/k8s-check
LOGS=$WORK/logs
RELEASE=ordersys
MONITORING_API=monitoring.coreos.com/v1/ServiceMonitor
# One kubectl/helm call may not take longer than this.
REQ_TIMEOUT=60s

T0=$SECONDS
say() { printf '[k8s-check +%3ss] %s\n' "$((SECONDS - T0))" "$*"; }
CHECKED=()
ok() { CHECKED+=("$*"); say "ok: $*"; }
fail() { say "FAIL: $*" >&2; exit 1; }
rel() { printf '%s' "${1#"$ROOT"/}"; }

NODES=${K8S_CHECK_NODES:-0}
KWOK_STAGES=$ROOT/deploy/k8s/kwok/stages.yaml
need=("$HELM" "$KUBECTL" "$BIN/kube-apiserver" "$BIN/kube-controller-manager")
((NODES == 0)) || need+=("$BIN/kube-scheduler" "$BIN/kwok")
for b in "${need[@]}"; do
	[[ -x $b ]] || fail "$(rel "$b") missing: run make k8s-tools helm-tools (or make k8s-check, make k8s-check-nodes)"
done
command -v openssl >/dev/null || fail "openssl is not installed (apt-get install openssl)"

# ---- work folder, stop-everything trap ----
rm -rf "$WORK"
mkdir -p "$WORK" "$LOGS" "$WORK/pki"
# etcd's data on tmpfs when there is one: its fsyncs cost nothing there, and it is thrown away.
if [[ -d /dev/shm && -w /dev/shm ]]; then
	ETCD_DATA=$(mktemp -d /dev/shm/ordersys-k8s-check-etcd.XXXXXX)
else
	ETCD_DATA=$WORK/etcd
fi
PIDS=()
NAMES=()
cleanup() {
	local status=$? i pid
	trap - EXIT INT TERM
	# TERM to all (the last started first), then up to 3 s for each before KILL: they are throw-away
	# servers, and kube-apiserver keeps retrying etcd for longer than that once etcd has stopped
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill -TERM "${PIDS[i]}" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 15); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	((${#PIDS[@]} == 0)) || say "stopped ${NAMES[*]}"
	rm -rf "$ETCD_DATA"
	if ((status != 0)); then
		for n in kube-apiserver kube-controller-manager kube-scheduler kwok etcd; do
			[[ -s $LOGS/$n.log ]] || continue
			echo "---- last lines of $(rel "$LOGS/$n.log")" >&2
			tail -n 15 "$LOGS/$n.log" >&2
		done
		say "FAILED (exit $status) after $((SECONDS - T0))s; logs and rendered files in $(rel "$WORK")" >&2
	elif [[ ${K8S_CHECK_KEEP:-} != 1 ]]; then
		rm -rf "$WORK"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- etcd from Debian's packages (idempotent) ----
if ! command -v etcd >/dev/null; then
	say "installing etcd-server from Debian's packages (apt-get)"
	if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends etcd-server >"$LOGS/apt.log" 2>&1 ||
		{ apt-get update >>"$LOGS/apt.log" 2>&1 &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends etcd-server >>"$LOGS/apt.log" 2>&1; }; }; then
		tail -n 20 "$LOGS/apt.log" >&2
		fail "apt-get install etcd-server failed (log $(rel "$LOGS/apt.log"))"
	fi
fi


start() { # start NAME CMD...: runs CMD in the background, logging to $LOGS/NAME.log
	local name=$1
	shift
	"$@" >"$LOGS/$name.log" 2>&1 </dev/null &
	PIDS+=("$!")
	NAMES+=("$name")
}
alive() { kill -0 "${PIDS[$1]}" 2>/dev/null || fail "${NAMES[$1]} exited (log $(rel "$LOGS/${NAMES[$1]}.log"))"; }

# free_port prints a loopback TCP port nothing listens on (none of those already handed out).
USED_PORTS=" "
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 20000))
		[[ $USED_PORTS == *" $p "* ]] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			USED_PORTS+="$p "
			echo "$p"
			return 0
		fi
	done
	fail "no free loopback port found"
}

# ---- certificates ----
pki=$WORK/pki
{
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=ordersys-k8s-check-ca" \
		-keyout "$pki/ca.key" -out "$pki/ca.crt"
	# kube-apiserver serving certificate: 127.0.0.1 and localhost only
	openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr"
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$pki/apiserver.ext"
	openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
		-days 1 -extfile "$pki/apiserver.ext" -out "$pki/apiserver.crt"
	# admin client (group system:masters), used by kubectl, helm and the controller-manager
	openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=ordersys-k8s-check-admin" \
		-keyout "$pki/admin.key" -out "$pki/admin.csr"
	printf 'extendedKeyUsage=clientAuth\n' >"$pki/admin.ext"
	openssl x509 -req -in "$pki/admin.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
		-days 1 -extfile "$pki/admin.ext" -out "$pki/admin.crt"
	# the certificate and key deploy/k8s/prereqs/* Secrets hold (K8S_CHECK_TLS_* placeholders): the
	# API server warns about a kubernetes.io/tls Secret without PEM data, and none is checked in
	openssl req -newkey rsa:2048 -nodes -subj "/CN=ordersys" -keyout "$pki/workload.key" -out "$pki/workload.csr"
	printf 'subjectAltName=DNS:ordersys-command,DNS:ordersys-query,DNS:ordersys-cdc-relay,DNS:ordersys-projector\nextendedKeyUsage=serverAuth,clientAuth\n' >"$pki/workload.ext"
	openssl x509 -req -in "$pki/workload.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
		-days 1 -extfile "$pki/workload.ext" -out "$pki/workload.crt"
	# service account token signing key
	openssl genrsa -out "$pki/sa.key" 2048
	openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
} >"$LOGS/openssl.log" 2>&1 || { cat "$LOGS/openssl.log" >&2; fail "openssl could not make the certificates"; }

# ---- etcd ----
etcd_port=$(free_port)
etcd_peer=$(free_port)
start etcd etcd --name k8s-check --data-dir "$ETCD_DATA" \
	--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
	--listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
	--initial-cluster "k8s-check=http://127.0.0.1:$etcd_peer" --initial-cluster-state new
deadline=$((SECONDS + 30))
until curl -fsS --max-time 2 "http://127.0.0.1:$etcd_port/health" 2>/dev/null | grep -q '"health":"true"'; do
	alive 0
	((SECONDS < deadline)) || fail "etcd did not become healthy in 30s"
	sleep 0.3
done
say "etcd $(etcd --version | sed -n 's/^etcd Version: //p') on 127.0.0.1:$etcd_port"

# ---- kube-apiserver ----
api_port=$(free_port)
start kube-apiserver "$BIN/kube-apiserver" \
	--etcd-servers "http://127.0.0.1:$etcd_port" \
	--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
	--endpoint-reconciler-type none \
	--tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
	--client-ca-file "$pki/ca.crt" \
	--service-account-issuer https://kubernetes.default.svc --service-account-key-file "$pki/sa.pub" \
	--service-account-signing-key-file "$pki/sa.key" --api-audiences https://kubernetes.default.svc \
	--service-cluster-ip-range 10.96.0.0/16 \
	--authorization-mode RBAC --allow-privileged=false --profiling=false
export KUBECONFIG=$WORK/kubeconfig
cat >"$KUBECONFIG" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: k8s-check
    cluster:
      server: https://127.0.0.1:$api_port
      certificate-authority: $pki/ca.crt
users:
  - name: admin
    user:
      client-certificate: $pki/admin.crt
      client-key: $pki/admin.key
contexts:
  - name: k8s-check
    context: {cluster: k8s-check, user: admin}
current-context: k8s-check
EOF
chmod 600 "$KUBECONFIG"
# helm keeps its config, cache and data in the work folder, not in the user's home
export HELM_CONFIG_HOME=$WORK/helm/config HELM_CACHE_HOME=$WORK/helm/cache HELM_DATA_HOME=$WORK/helm/data
k() { "$KUBECTL" --request-timeout="$REQ_TIMEOUT" "$@"; }
deadline=$((SECONDS + 90))
until [[ $(k get --raw /readyz 2>/dev/null) == ok ]]; do
	alive 1
	((SECONDS < deadline)) || fail "kube-apiserver not ready in 90s"
	sleep 0.5
done
server_version=$(k version -o json | sed -n '/"serverVersion"/,/}/s/.*"gitVersion": "\(.*\)".*/\1/p')
say "kube-apiserver $server_version ready on https://127.0.0.1:$api_port"

# ---- kube-controller-manager ----
start kube-controller-manager "$BIN/kube-controller-manager" \
	--kubeconfig "$KUBECONFIG" --leader-elect=false --secure-port 0 \
	--service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
	--use-service-account-credentials=false
deadline=$((SECONDS + 60))
until k -n default get serviceaccount default >/dev/null 2>&1; do
	alive 2
	((SECONDS < deadline)) || fail "kube-controller-manager did not create the default ServiceAccount in 60s"
	sleep 0.5
done
say "kube-controller-manager running (it created the default ServiceAccount)"

# ---- simulated node: kube-scheduler + kwok (K8S_CHECK_NODES=1) ----
if ((NODES)); then
	start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$KUBECONFIG" --leader-elect=false \
		--bind-address 127.0.0.1 --secure-port "$(free_port)" \
		--authentication-kubeconfig "$KUBECONFIG" --authorization-kubeconfig "$KUBECONFIG"
	# kwok serves nothing (no --server-address); the node IP and pod CIDR are only status data.
	start kwok "$BIN/kwok" --kubeconfig "$KUBECONFIG" --config "$KWOK_STAGES" \
		--manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
		--node-ip 127.0.0.1 --cidr 10.244.0.0/16
	k apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: kwok-node-0
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
status:
  allocatable: {cpu: "64", memory: 256Gi, pods: "500"}
  capacity: {cpu: "64", memory: 256Gi, pods: "500"}
EOF
	k wait --for condition=Ready node/kwok-node-0 --timeout=60s >/dev/null ||
		{ alive 3; alive 4; fail "the kwok node did not become Ready in 60s"; }
	say "kube-scheduler and kwok running, simulated node kwok-node-0 Ready"
fi

# ---- helpers ----

# restricted_ns NS: a namespace enforcing (and warning and auditing) PodSecurity restricted, once
# the controller-manager has given it its default ServiceAccount.
restricted_ns() {
	k create namespace "$1" >/dev/null
	k label namespace "$1" pod-security.kubernetes.io/enforce=restricted \
		pod-security.kubernetes.io/enforce-version=latest pod-security.kubernetes.io/warn=restricted \
		pod-security.kubernetes.io/warn-version=latest pod-security.kubernetes.io/audit=restricted >/dev/null
	local deadline=$((SECONDS + 30))
	until k -n "$1" get serviceaccount default >/dev/null 2>&1; do
		((SECONDS < deadline)) || fail "namespace $1: no default ServiceAccount after 30s"
		sleep 0.3
	done
}

# prereqs NS VALUES_NAME: the objects a values file expects to exist already. In Secrets' data,
# K8S_CHECK_TLS_CRT, K8S_CHECK_TLS_KEY and K8S_CHECK_CA_CRT become (base64) a certificate, its key
# and the CA made above; any warning of the server fails the check.
prereqs() {
	local f=$PREREQS/$2 log=$WORK/$2.prereqs.log
	[[ -f $f ]] || return 0
	sed -e "s|K8S_CHECK_TLS_CRT|$(base64 -w0 <"$pki/workload.crt")|g" \
		-e "s|K8S_CHECK_TLS_KEY|$(base64 -w0 <"$pki/workload.key")|g" \
		-e "s|K8S_CHECK_CA_CRT|$(base64 -w0 <"$pki/ca.crt")|g" "$f" |
		k -n "$1" create -f - >"$log" 2>&1 || { cat "$log" >&2; fail "$2: could not create $(rel "$f") in $1"; }
	! grep -qi warning "$log" || { cat "$log" >&2; fail "$2: warnings creating $(rel "$f") in $1"; }
}

# secrets_present NS WHAT KINDS: every Secret that the release's objects of KINDS (e.g.
# deployments, or jobs,pods) mount or read a variable from exists in NS. A Secret the chart does not
# render is one the values file expects to exist (deploy/k8s/prereqs), or one cert-manager writes.
secrets_present() {
	local ns=$1 what=$2 kinds=$3 names s missing=()
	names=$(k -n "$ns" get "$kinds" -l "app.kubernetes.io/instance=$RELEASE" -o jsonpath='{range .items[*]}{.spec.template.spec.volumes[*].secret.secretName} {.spec.template.spec.containers[*].env[*].valueFrom.secretKeyRef.name} {.spec.volumes[*].secret.secretName} {.spec.containers[*].env[*].valueFrom.secretKeyRef.name} {end}' |
		tr ' ' '\n' | grep . | sort -u || true)
	for s in $names; do
		k -n "$ns" get secret "$s" >/dev/null 2>&1 || missing+=("$s")
	done
	((${#missing[@]} == 0)) ||
		fail "$what: the pods reference Secrets that do not exist: ${missing[*]} (what a values file expects to exist belongs in $(rel "$PREREQS"))"
	ok "$what: every Secret the pods mount or read exists ($(paste -sd, - <<<"$names"))"
}

# docs KIND FILE: the documents of FILE whose top-level kind is KIND (multi-document YAML).
docs() {
	awk -v kind="$1" '
		function flush() { if (doc != "" && keep) printf "---\n%s", doc; doc = ""; keep = 0 }
		/^---/ { flush(); next }
		{ doc = doc $0 "\n" }
		$0 == "kind: " kind { keep = 1 }
		END { flush() }' "$2"
}

# install_crds GROUP: the pinned CRDs of one API group ($CRDS/GROUP_*.yaml), once.
CRDS_INSTALLED=" "
install_crds() {
	local group=$1 files=()
	[[ $CRDS_INSTALLED == *" $group "* ]] && return 0
	files=("$CRDS/${group}_"*.yaml)
	[[ -f ${files[0]} ]] || fail "no pinned CRDs of $group in $(rel "$CRDS")"
	local f args=()
	for f in "${files[@]}"; do args+=(-f "$f"); done
	k apply --server-side "${args[@]}" >/dev/null || fail "could not install the $group CRDs of $(rel "$CRDS")"
	k wait --for condition=Established --timeout=60s "${args[@]}" >/dev/null ||
		fail "the $group CRDs of $(rel "$CRDS") did not become Established"
	CRDS_INSTALLED+="$group "
	ok "$group CRDs installed ($(printf '%s\n' "${files[@]}" | xargs -n1 basename | sed 's/\.yaml$//' | paste -sd, -))"
}

# render NS OUT ARGS...: helm template with the server's capabilities (--validate), hooks and tests
# included.
render() {
	local ns=$1 out=$2
	shift 2
	"$HELM" template "$RELEASE" "$CHART" --namespace "$ns" --validate "$@" >"$out" 2>"$out.err" ||
		{ cat "$out.err" >&2; return 1; }
}

# dry_run NAME ARGS...: renders the chart into a scratch restricted namespace and dry-runs every
# object on the server. Prints the kubectl output to $WORK/NAME.dry-run.log; returns non-zero on any
# error or warning.
dry_run() {
	local name=$1 ns out=$WORK/$1.rendered.yaml log=$WORK/$1.dry-run.log
	ns=dry-$(slug "$1")
	shift
	restricted_ns "$ns"
	prereqs "$ns" "$name"
	render "$ns" "$out" "$@" || { k delete namespace "$ns" --wait=false >/dev/null; return 1; }
	# The pods' ServiceAccount must exist for the ServiceAccount admission plugin (the real install
	# creates it first): create the rendered ServiceAccounts for real, dry-run everything.
	docs ServiceAccount "$out" >"$out.sa"
	[[ ! -s $out.sa ]] || k -n "$ns" create -f "$out.sa" >/dev/null
	local status=0
	k -n "$ns" apply --server-side --force-conflicts --field-manager k8s-check --dry-run=server -f "$out" >"$log" 2>&1 || status=$?
	k delete namespace "$ns" --wait=false >/dev/null
	if ((status != 0)) || grep -q -i 'warning' "$log"; then
		return 1
	fi
	DRY_RUN_COUNT=$(grep -c 'serverside-applied (server dry run)' "$log" || true)
}

# check_objects NS REV WHAT: the release is deployed at revision REV and every object of its manifest
# exists on the server; every Deployment got its pods from the controller-manager, no FailedCreate.
check_objects() {
	local ns=$1 rev=$2 what=$3 manifest=$WORK/$1.manifest.$2.yaml
	local hist hrev status
	hist=$("$HELM" history "$RELEASE" -n "$ns" --max 1 -o json)
	hrev=$(grep -o '"revision":[0-9]*' <<<"$hist" | head -1 | cut -d: -f2)
	status=$(grep -o '"status":"[a-z-]*"' <<<"$hist" | head -1 | cut -d'"' -f4)
	[[ $hrev == "$rev" && $status == deployed ]] || fail "$what: release is $status at revision $hrev, want deployed at $rev"
	"$HELM" get manifest "$RELEASE" -n "$ns" >"$manifest"
	local want have
	want=$(grep -c '^kind: ' "$manifest" || true)
	have=$(k -n "$ns" get -f "$manifest" -o name | wc -l) || fail "$what: objects of the release's manifest are missing on the server"
	[[ $have == "$want" ]] || fail "$what: $have of the manifest's $want objects on the server"
	# Deployments: pods created for the current template (so admitted under enforce=restricted).
	# A fresh install creates every replica; after an upgrade that changes the pod template the
	# rollout creates the first new pod and then waits for it to become available, which never
	# happens without nodes: there, at least one pod of the new template.
	local deadline=$((SECONDS + 60)) pending
	while :; do
		pending=$(k -n "$ns" get deployments -l "app.kubernetes.io/instance=$RELEASE" -o \
			jsonpath='{range .items[*]}{.metadata.name} {.spec.replicas} {.status.updatedReplicas} {.status.observedGeneration} {.metadata.generation}{"\n"}{end}' |
			while read -r d want upd obs gen; do
				upd=${upd:-0}
				if [[ $obs != "$gen" ]] || { [[ $rev == 1 ]] && ((upd != want)); } || ((want > 0 && upd < 1)); then
					printf '%s(%s/%s) ' "$d" "$upd" "$want"
				fi
			done)
		[[ -z $pending ]] && break
		((SECONDS < deadline)) || {
			k -n "$ns" get events --field-selector reason=FailedCreate >&2 || true
			fail "$what: Deployments without all their pods after 60s: $pending"
		}
		sleep 0.5
	done
	local failed
	failed=$(k -n "$ns" get events --field-selector reason=FailedCreate -o name | wc -l)
	((failed == 0)) || { k -n "$ns" get events --field-selector reason=FailedCreate >&2; fail "$what: $failed FailedCreate events"; }
	local pods
	pods=$(k -n "$ns" get pods -l "app.kubernetes.io/instance=$RELEASE" -o name | wc -l)
	ok "$what: $status revision $rev, all $want objects on the server, Deployments' pods created ($pods pods of the release now), no FailedCreate"
}

# values_of NS: "<sample ratios of the ConfigMaps> <projector replicas>", to follow upgrade/rollback.
values_of() {
	local ratios replicas
	ratios=$(k -n "$1" get configmaps -l "app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component" -o \
		jsonpath='{range .items[*]}{.data.ORDERSYS_TRACE_SAMPLE_RATIO}{" "}{end}' | tr ' ' '\n' | sort -u | paste -sd, -)
	replicas=$(k -n "$1" get deployments -l "app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component=projector" \
		-o jsonpath='{.items[0].spec.replicas}')
	echo "ratio=$ratios projector=$replicas"
}

# slug NAME: a namespace-safe short name for a scenario.
slug() { printf '%s' "${1%-values.yaml}" | tr -c 'a-z0-9-' '-' | cut -c1-40; }

# helm_ok WHAT LOG: helm printed no PodSecurity (or other) warning.
helm_ok() {
	if grep -i -E 'warning|would violate' "$2" | grep -v -E '^WARNING: no CQL password' | grep -q .; then
		cat "$2" >&2
		fail "$1: helm printed warnings (above)"
	fi
}

# scenario NAME ARGS...: the whole check for one set of values.
scenario() {
	local name=$1 ns
	shift
	ns=ck-$(slug "$name")
	say "== $name (namespace $ns)"
	# CRDs the values need: render as for a cluster that has them, look for their API groups
	# (monitoring.coreos.com: the Prometheus Operator's; cert-manager.io: a Certificate).
	local crd_groups g
	crd_groups=$("$HELM" template "$RELEASE" "$CHART" --kube-version "$server_version" --api-versions "$MONITORING_API" "$@" |
		sed -n 's#^apiVersion: \(monitoring\.coreos\.com\|cert-manager\.io\)/.*#\1#p' | sort -u)
	for g in $crd_groups; do
		install_crds "$g"
	done
	dry_run "$name" "$@" || { cat "$WORK/$name.dry-run.log" >&2; fail "$name: server-side dry-run refused or warned (above)"; }
	ok "$name: server-side dry-run of all $DRY_RUN_COUNT rendered objects (hooks, tests included): no error, no warning"

	restricted_ns "$ns"
	prereqs "$ns" "$name"
	if ((NODES)); then
		scenario_nodes "$name" "$ns" "$@"
		return
	fi
	local log=$WORK/$name.install.log
	"$HELM" install "$RELEASE" "$CHART" -n "$ns" --no-hooks --timeout "$REQ_TIMEOUT" "$@" >"$log" 2>&1 ||
		{ cat "$log" >&2; fail "$name: helm install failed"; }
	helm_ok "$name: helm install" "$log"
	check_objects "$ns" 1 "$name: helm install --no-hooks"
	secrets_present "$ns" "$name: Deployments" deployments
	local before
	before=$(values_of "$ns")

	# hooks for real: the migration Job (the Job controller creates its pod) and the test pods
	local hooks=$WORK/$name.hooks.yaml
	"$HELM" get hooks "$RELEASE" -n "$ns" >"$hooks"
	k -n "$ns" create -f "$hooks" >"$log.hooks" 2>&1 || { cat "$log.hooks" >&2; fail "$name: creating the release's hooks failed"; }
	grep -i -q warning "$log.hooks" && { cat "$log.hooks" >&2; fail "$name: warnings creating the hooks"; }
	local jobs tests deadline=$((SECONDS + 60)) j
	jobs=$(k -n "$ns" get -f "$hooks" -o jsonpath='{range .items[?(@.kind=="Job")]}{.metadata.name}{" "}{end}')
	tests=$(k -n "$ns" get -f "$hooks" -o jsonpath='{range .items[?(@.kind=="Pod")]}{.metadata.name}{" "}{end}')
	[[ -n $jobs ]] || fail "$name: no hook Job (the migration) in the release"
	for j in $jobs; do
		until [[ -n $(k -n "$ns" get pods -l "batch.kubernetes.io/job-name=$j" -o name) ]]; do
			((SECONDS < deadline)) || {
				k -n "$ns" get events --field-selector "involvedObject.name=$j" >&2 || true
				fail "$name: the Job controller created no pod for hook Job $j in 60s"
			}
			sleep 0.5
		done
	done
	ok "$name: hooks created for real: Job(s) $jobs-> pod created and admitted; $(wc -w <<<"$tests") helm test pods admitted"
	secrets_present "$ns" "$name: hooks (migration Job, helm test pods)" jobs,pods
	k -n "$ns" delete -f "$hooks" --wait=false >/dev/null

	log=$WORK/$name.upgrade.log
	"$HELM" upgrade "$RELEASE" "$CHART" -n "$ns" --no-hooks --timeout "$REQ_TIMEOUT" --reuse-values \
		--set-json tracing.sampleRatio=0.5 --set projector.replicaCount=1 >"$log" 2>&1 ||
		{ cat "$log" >&2; fail "$name: helm upgrade failed"; }
	helm_ok "$name: helm upgrade" "$log"
	check_objects "$ns" 2 "$name: helm upgrade (sampleRatio 0.5, projector 1 replica)"
	local after
	after=$(values_of "$ns")
	[[ $after == "ratio=0.5 projector=1" ]] || fail "$name: after the upgrade the server has $after, want ratio=0.5 projector=1"
	ok "$name: upgraded values on the server: $after (were $before)"

	log=$WORK/$name.rollback.log
	"$HELM" rollback "$RELEASE" 1 -n "$ns" --no-hooks --timeout "$REQ_TIMEOUT" >"$log" 2>&1 ||
		{ cat "$log" >&2; fail "$name: helm rollback failed"; }
	helm_ok "$name: helm rollback" "$log"
	check_objects "$ns" 3 "$name: helm rollback to revision 1"
	after=$(values_of "$ns")
	[[ $after == "$before" ]] || fail "$name: after the rollback the server has $after, want $before"
	ok "$name: rolled-back values on the server: $after"

	"$HELM" uninstall "$RELEASE" -n "$ns" --timeout "$REQ_TIMEOUT" >/dev/null || fail "$name: helm uninstall failed"
	k delete namespace "$ns" --wait=false >/dev/null
}

# scenario_nodes NAME NS ARGS...: with a simulated node, the real course: install --wait with hooks
# (the migration Job must complete), helm test, upgrade and rollback --wait.
scenario_nodes() {
	local name=$1 ns=$2 log
	shift 2
	log=$WORK/$name.install.log
	"$HELM" install "$RELEASE" "$CHART" -n "$ns" --wait --timeout 180s "$@" >"$log" 2>&1 ||
		{ cat "$log" >&2; k -n "$ns" get pods,jobs >&2 || true; fail "$name: helm install --wait failed"; }
	helm_ok "$name: helm install --wait" "$log"
	check_objects "$ns" 1 "$name: helm install --wait (migration hook Job completed)"
	k -n "$ns" wait --for condition=Available deployments -l "app.kubernetes.io/instance=$RELEASE" --timeout=60s >/dev/null ||
		fail "$name: Deployments not Available"
	ok "$name: every Deployment Available (pods scheduled on the simulated node, ready by kwok)"
	log=$WORK/$name.test.log
	"$HELM" test "$RELEASE" -n "$ns" --timeout 120s >"$log" 2>&1 || { cat "$log" >&2; fail "$name: helm test failed"; }
	ok "$name: helm test: $(grep -c 'Phase: *Succeeded' "$log") test pods Succeeded"
	local before after
	before=$(values_of "$ns")
	log=$WORK/$name.upgrade.log
	"$HELM" upgrade "$RELEASE" "$CHART" -n "$ns" --wait --timeout 180s --reuse-values \
		--set-json tracing.sampleRatio=0.5 --set projector.replicaCount=1 >"$log" 2>&1 ||
		{ cat "$log" >&2; fail "$name: helm upgrade --wait failed"; }
	helm_ok "$name: helm upgrade --wait" "$log"
	check_objects "$ns" 2 "$name: helm upgrade --wait (pre-upgrade migration completed)"
	after=$(values_of "$ns")
	[[ $after == "ratio=0.5 projector=1" ]] || fail "$name: after the upgrade the server has $after, want ratio=0.5 projector=1"
	log=$WORK/$name.rollback.log
	"$HELM" rollback "$RELEASE" 1 -n "$ns" --wait --timeout 180s >"$log" 2>&1 ||
		{ cat "$log" >&2; fail "$name: helm rollback --wait failed"; }
	check_objects "$ns" 3 "$name: helm rollback --wait to revision 1"
	after=$(values_of "$ns")
	[[ $after == "$before" ]] || fail "$name: after the rollback the server has $after, want $before"
	ok "$name: upgrade ($before -> ratio=0.5 projector=1) and rollback rolled out"
	"$HELM" uninstall "$RELEASE" -n "$ns" --wait --timeout 120s >/dev/null || fail "$name: helm uninstall failed"
	k delete namespace "$ns" --wait=false >/dev/null
}

# ---- 1. the ServiceMonitor guard, before any CRD is installed ----
guard_values=$CHART/ci/servicemonitor-values.yaml
say "== ServiceMonitor guard without the Prometheus Operator CRDs ($(rel "$guard_values"))"
[[ $CRDS_INSTALLED == " " ]] || fail "CRDs installed before the guard check"
if k api-resources --api-group monitoring.coreos.com -o name | grep -q .; then
	fail "the server already serves monitoring.coreos.com"
fi
ns=ck-guard
restricted_ns "$ns"
log=$WORK/guard.install.log
"$HELM" install "$RELEASE" "$CHART" -n "$ns" --no-hooks --timeout "$REQ_TIMEOUT" -f "$guard_values" >"$log" 2>&1 ||
	{ cat "$log" >&2; fail "guard: helm install with serviceMonitor.enabled and no CRD failed (the chart must leave the ServiceMonitor out)"; }
if "$HELM" get manifest "$RELEASE" -n "$ns" | grep -Eq '^kind: (ServiceMonitor|PrometheusRule)'; then
	fail "guard: the release has a ServiceMonitor or PrometheusRule although the server does not serve monitoring.coreos.com"
fi
grep -q 'NO ServiceMonitor was created' "$log" || { cat "$log" >&2; fail "guard: the release notes do not say that no ServiceMonitor was created"; }
grep -q 'NO PrometheusRule was created' "$log" || { cat "$log" >&2; fail "guard: the release notes do not say that no PrometheusRule was created"; }
ok "guard: serviceMonitor/prometheusRule.enabled without the CRDs: installed without them, the notes say so"
log=$WORK/guard.force.log
if "$HELM" install forced "$CHART" -n "$ns" --dry-run=server --no-hooks -f "$guard_values" --set serviceMonitor.force=true >"$log" 2>&1; then
	fail "guard: serviceMonitor.force=true without the CRD was accepted by the server"
fi
grep -q 'ServiceMonitor' "$log" || { cat "$log" >&2; fail "guard: forcing without the CRD failed for another reason than the ServiceMonitor"; }
ok "guard: serviceMonitor.force=true without the CRD renders it and the server refuses it ($(grep -o 'no matches for kind[^;]*' "$log" | head -1 || echo 'ServiceMonitor refused'))"
install_crds monitoring.coreos.com
log=$WORK/guard.upgrade.log
"$HELM" upgrade "$RELEASE" "$CHART" -n "$ns" --no-hooks --timeout "$REQ_TIMEOUT" --reuse-values >"$log" 2>&1 ||
	{ cat "$log" >&2; fail "guard: helm upgrade after installing the CRDs failed"; }
k -n "$ns" get servicemonitor "$RELEASE" >/dev/null 2>&1 ||
	fail "guard: after the CRDs were installed, helm upgrade did not create the ServiceMonitor"
k -n "$ns" get prometheusrule "$RELEASE" -o jsonpath='{.spec.groups[0].rules[*].alert}' 2>/dev/null | grep -q 'Ordersys' ||
	fail "guard: after the CRDs were installed, helm upgrade did not create the PrometheusRule with the alert rules"
k -n "$ns" get configmap "$RELEASE-dashboard" -o jsonpath='{.metadata.labels.grafana_dashboard}' 2>/dev/null | grep -qx 1 ||
	fail "guard: the Grafana dashboard ConfigMap with label grafana_dashboard=1 is missing"
! grep -Eq 'NO (ServiceMonitor|PrometheusRule) was created' "$log" || fail "guard: the notes still warn although the ServiceMonitor and PrometheusRule were created"
ok "guard: with the CRDs installed, helm upgrade created ServiceMonitor and PrometheusRule $ns/$RELEASE (the alert rules), and the dashboard ConfigMap is there"
"$HELM" uninstall "$RELEASE" -n "$ns" --timeout "$REQ_TIMEOUT" >/dev/null
k delete namespace "$ns" --wait=false >/dev/null

# ---- 2. the self-test: values that break PodSecurity restricted must be refused ----
for f in "$VIOLATIONS"/*-values.yaml; do
	[[ -f $f ]] || continue
	n=$(basename "$f")
	if dry_run "violation-$n" -f "$f"; then
		cat "$WORK/violation-$n.dry-run.log" >&2
		fail "self-test: $(rel "$f") breaks PodSecurity restricted, yet the dry-run passed"
	fi
	grep -q -E 'PodSecurity|Forbidden' "$WORK/violation-$n.dry-run.log" ||
		{ cat "$WORK/violation-$n.dry-run.log" >&2; fail "self-test: $(rel "$f") failed, but not on PodSecurity"; }
	ok "self-test: $(rel "$f") is refused: $(grep -o -m1 'violate PodSecurity "restricted:latest": [^(]*' "$WORK/violation-$n.dry-run.log" | head -1)"
done

# ---- 3. the Certificate needs cert-manager: without its CRD the server refuses the release ----
cm_values=$CHART/ci/cert-manager-values.yaml
say "== cert-manager guard without the Certificate CRD ($(rel "$cm_values"))"
[[ $CRDS_INSTALLED != *" cert-manager.io "* ]] || fail "the cert-manager CRD was installed before the guard check"
ns=ck-cm-guard
restricted_ns "$ns"
log=$WORK/cm-guard.log
if "$HELM" install "$RELEASE" "$CHART" -n "$ns" --dry-run=server --no-hooks -f "$cm_values" >"$log" 2>&1; then
	fail "cert-manager guard: grpc.tls.certManager without the Certificate CRD was accepted by the server"
fi
grep -q 'Certificate' "$log" || { cat "$log" >&2; fail "cert-manager guard: refused for another reason than the Certificate"; }
ok "cert-manager guard: without cert-manager's CRD the release is refused, naming the Certificate ($(grep -o 'no matches for kind "Certificate"[^;]*' "$log" | head -1 || echo 'Certificate refused'))"
k delete namespace "$ns" --wait=false >/dev/null

# ---- 4. every values set ----
scenario chart-defaults
if ((NODES)); then
	# With the simulated node the chart defaults alone: kwok takes from seconds to a minute to move
	# each pod on (observed: about 6 minutes for install, test, upgrade and rollback of one release).
	say "simulated node: only the chart defaults were installed with --wait and tested (the ci/*-values.yaml run in plain make k8s-check)"
else
	for f in "$CHART"/ci/*-values.yaml; do
		scenario "$(basename "$f")" -f "$f"
	done
fi

if ((NODES)); then
	setup="etcd, kube-controller-manager, kube-scheduler, one kwok node; no container runtime: no container ran"
else
	setup="etcd, kube-controller-manager; no nodes, no container runtime: no pod ran"
fi
say "k8s-check: all ${#CHECKED[@]} checks above passed against kube-apiserver $server_version in $((SECONDS - T0))s ($setup)"
