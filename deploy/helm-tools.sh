#!/usr/bin/env bash
# helm-tools.sh installs the pinned helm CLI into .state/tools/bin (git-ignored).
#
# Idempotent: helm is rebuilt only when the binary is missing or was built from another module
# version (read from the binary's build info with `go version -m`). Needs only the Go module proxy
# (helm.sh/helm/v3 builds with `go install`; no release tarball download).
#
# Usage: deploy/helm-tools.sh [bin-dir]     (default: <repo>/.state/tools/bin)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${1:-${repo_root}/.state/tools/bin}"
mkdir -p "${bin_dir}"
bin_dir="$(cd "${bin_dir}" && pwd)"

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
bin="${bin_dir}/helm"

if [[ -x "${bin}" ]]; then
	have="$(go version -m "${bin}" 2>/dev/null | awk '$1 == "mod" && $2 == "helm.sh/helm/v3" { print $3 }')"
	if [[ "${have}" == "${HELM_VERSION}" ]]; then
		exit 0
	fi
	echo "helm-tools: helm is ${have:-unknown}, want ${HELM_VERSION}: reinstalling"
fi
echo "helm-tools: installing helm.sh/helm/v3/cmd/helm@${HELM_VERSION} into ${bin_dir} (a few minutes on a cold module cache)"
# GOWORK=off: build exactly helm's own module graph, independent of this repo's go.work.
# -p 1 keeps the build from taking every core from whoever else is compiling on this machine.
(cd "${bin_dir}" && GOWORK=off GOFLAGS="${GOFLAGS:-} -p=1" GOBIN="${bin_dir}" go install "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}")
echo "helm-tools: $("${bin}" version --short)"
