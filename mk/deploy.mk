# mk/deploy.mk: checks of the deployment files (Dockerfile, deploy/compose.yaml, helm/ordersys).
# Included by the top Makefile (include mk/*.mk). Each recipe is one POSIX shell command.
#
#   make helm-tools    build the pinned helm (`tool` in tools/go.mod) and link .state/tools/bin/helm to it
#   make helm-lint     helm lint --strict + helm template for the defaults and every ci/*-values.yaml
#   make deploy-check  the Go tests of deploy/check (compose, Dockerfile, rendered chart)
#
# helm-lint runs before the Go tests of `make test` (TEST_PREREQS) and is part of `make lint`.

DEPLOY_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
DEPLOY_BIN := $(DEPLOY_ROOT)/.state/tools/bin
# helm is pinned in tools/go.mod and built by `go tool` into the Go build cache (TOOL_PATH in
# mk/proto.mk); .state/tools/bin/helm is a link to that executable, the path deploy/k8s-check.sh
# and deploy/check's tests look for.
DEPLOY_HELM := $(DEPLOY_BIN)/helm
DEPLOY_CHART := $(DEPLOY_ROOT)/helm/ordersys
# helm built from source (`go tool`) reports Kubernetes v1.20 (its release ldflags are missing); the chart
# needs >= 1.27 (native gRPC probes), so render against a current version explicitly.
DEPLOY_KUBE_VERSION ?= 1.33.0
# helm template has no cluster to discover APIs from: render as for a cluster with the Prometheus
# Operator's CRDs, so the ServiceMonitor of ci/servicemonitor-values.yaml is rendered and counted
# (the chart leaves it out when the API is not served: make k8s-check tests both ways).
DEPLOY_API_VERSIONS ?= monitoring.coreos.com/v1/ServiceMonitor

.PHONY: helm-tools helm-lint deploy-check prometheus-tools

TEST_PREREQS += helm-lint prometheus-tools
tools: helm-tools
lint: helm-lint

## prometheus-tools: install promtool (Debian's prometheus package) for the alert-rule tests.
prometheus-tools:
	@command -v promtool >/dev/null 2>&1 || { echo "installing Debian's prometheus package (promtool)"; \
		{ apt-get install -y -q prometheus >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q prometheus >/dev/null; }; } && \
		command -v promtool >/dev/null; } || { echo "promtool could not be installed (apt-get install prometheus)" >&2; exit 1; }

## helm-tools: build the helm of tools/go.mod (minutes once) and link .state/tools/bin/helm to it.
helm-tools:
	@helm="$$($(call TOOL_PATH,helm))" && mkdir -p "$(DEPLOY_BIN)" && ln -sfn "$$helm" "$(DEPLOY_HELM)"

## helm-lint: lint and render the chart with its defaults and with every ci/*-values.yaml.
helm-lint: helm-tools
	@echo "helm: lint + template $(DEPLOY_CHART) (defaults and ci/*-values.yaml)" && \
		tmp="$$(mktemp -d)" && trap 'rm -rf "$$tmp"' EXIT && \
		"$(DEPLOY_HELM)" lint --strict --kube-version $(DEPLOY_KUBE_VERSION) "$(DEPLOY_CHART)" >"$$tmp/lint.log" 2>&1 || \
			{ cat "$$tmp/lint.log" >&2; echo "helm lint failed: defaults" >&2; exit 1; } ; \
		"$(DEPLOY_HELM)" template ordersys "$(DEPLOY_CHART)" --namespace ordersys \
			--kube-version $(DEPLOY_KUBE_VERSION) >"$$tmp/default.yaml" || { echo "helm template failed: defaults" >&2; exit 1; } ; \
		for f in "$(DEPLOY_CHART)"/ci/*-values.yaml; do \
			n="$$(basename "$$f" .yaml)"; \
			"$(DEPLOY_HELM)" lint --strict --kube-version $(DEPLOY_KUBE_VERSION) "$(DEPLOY_CHART)" -f "$$f" >"$$tmp/lint.log" 2>&1 || \
				{ cat "$$tmp/lint.log" >&2; echo "helm lint failed: $$f" >&2; exit 1; } ; \
			"$(DEPLOY_HELM)" template ordersys "$(DEPLOY_CHART)" --namespace ordersys -f "$$f" \
				--kube-version $(DEPLOY_KUBE_VERSION) --api-versions $(DEPLOY_API_VERSIONS) >"$$tmp/$$n.yaml" || { echo "helm template failed: $$f" >&2; exit 1; } ; \
			echo "  ok: $${f#$(DEPLOY_ROOT)/} ($$(grep -c '^kind:' "$$tmp/$$n.yaml") objects)"; \
		done

## deploy-check: run the deploy/check Go tests (they call the helm built by helm-tools and read docs/configuration.md, checked current first).
deploy-check: helm-tools env-doc-check
	@cd "$(DEPLOY_ROOT)/deploy/check" && go test -count=1 ./...
