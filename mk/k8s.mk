# mk/k8s.mk: the Helm chart installed on a real Kubernetes API server on loopback.
# Included by the top Makefile (include mk/*.mk). Each recipe is one POSIX shell command.
#
#   make k8s-tools   build the pinned kube-apiserver, kube-controller-manager and kubectl from the
#                    Go module proxy into .state/tools/bin (deploy/k8s-tools.sh; ~7 min once, then
#                    a version check)
#   make k8s-check   etcd (Debian's etcd-server) + kube-apiserver + kube-controller-manager on
#                    127.0.0.1, then for the defaults and every helm/ordersys/ci/*-values.yaml: a
#                    server-side dry-run of every rendered object, helm install into a namespace
#                    enforcing PodSecurity restricted, hooks, upgrade, rollback; the ServiceMonitor
#                    guard with and without the Prometheus Operator CRDs, the cert-manager
#                    Certificate with and without its CRD (deploy/k8s-check.sh)
#
# k8s-check runs in `make test` (TEST_PREREQS), after helm-lint.

K8S_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
K8S_BIN := $(K8S_ROOT)/.state/tools/bin
# The whole check stops (and stops its servers) after this many seconds; it takes about a minute.
K8S_CHECK_TIMEOUT ?= 600
# k8s-check-nodes: one release with a simulated node took about 6 minutes here.
K8S_CHECK_NODES_TIMEOUT ?= 1200

.PHONY: k8s-tools k8s-check k8s-check-nodes

TEST_PREREQS += k8s-check
tools: k8s-tools

## k8s-tools: build kube-apiserver, kube-controller-manager, kubectl v1.37.2 (idempotent; ~7 min once).
k8s-tools:
	@"$(K8S_ROOT)/deploy/k8s-tools.sh" "$(K8S_BIN)"

## k8s-check: install the chart (defaults and ci/*-values.yaml) on a throw-away API server on loopback.
k8s-check: helm-tools k8s-tools
	@timeout --signal=TERM --kill-after=30 $(K8S_CHECK_TIMEOUT) "$(K8S_ROOT)/deploy/k8s-check.sh"

## k8s-check-nodes: k8s-check with a simulated node (kube-scheduler + kwok): install --wait, helm test (not in make test).
k8s-check-nodes: helm-tools
	@K8S_TOOLS_NODES=1 "$(K8S_ROOT)/deploy/k8s-tools.sh" "$(K8S_BIN)" && \
		K8S_CHECK_NODES=1 timeout --signal=TERM --kill-after=30 $(K8S_CHECK_NODES_TIMEOUT) "$(K8S_ROOT)/deploy/k8s-check.sh"
