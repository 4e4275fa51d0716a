#!/usr/bin/env bash
# tools.sh installs the pinned code-generation tools into .state/tools/bin (git-ignored).
#
# Idempotent: a tool is rebuilt only when the binary is missing or was built from another module
# version (read from the binary's build info with `go version -m`). Needs only the Go module proxy.
#
# Usage: deploy/tools.sh [bin-dir]     (default: <repo>/.state/tools/bin)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${1:-${repo_root}/.state/tools/bin}"
mkdir -p "${bin_dir}"
bin_dir="$(cd "${bin_dir}" && pwd)"

# Pinned versions. protoc-gen-go matches google.golang.org/protobuf in pkg/go.mod; protoc-gen-go-grpc
# v1.6.x output needs google.golang.org/grpc >= 1.64 at run time (pkg pins v1.85.0).
BUF_VERSION="${BUF_VERSION:-v1.75.0}"
PROTOC_GEN_GO_VERSION="${PROTOC_GEN_GO_VERSION:-v1.36.12}"
PROTOC_GEN_GO_GRPC_VERSION="${PROTOC_GEN_GO_GRPC_VERSION:-v1.6.1}"

# install <binary> <module whose version is checked> <package path> <version>
install_tool() {
	local name="$1" module="$2" pkg="$3" version="$4"
	local bin="${bin_dir}/${name}"
	if [[ -x "${bin}" ]]; then
		local have
		have="$(go version -m "${bin}" 2>/dev/null | awk -v m="${module}" '$1 == "mod" && $2 == m { print $3 }')"
		if [[ "${have}" == "${version}" ]]; then
			echo "tools: ${name} ${version} already installed"
			return 0
		fi
		echo "tools: ${name} is ${have:-unknown}, want ${version}: reinstalling"
	fi
	echo "tools: installing ${pkg}@${version} into ${bin_dir}"
	# GOWORK=off: install exactly the pinned module graph, independent of this repo's go.work.
	(cd "${bin_dir}" && GOWORK=off GOBIN="${bin_dir}" go install "${pkg}@${version}")
}

install_tool buf github.com/bufbuild/buf github.com/bufbuild/buf/cmd/buf "${BUF_VERSION}"
install_tool protoc-gen-go google.golang.org/protobuf google.golang.org/protobuf/cmd/protoc-gen-go "${PROTOC_GEN_GO_VERSION}"
install_tool protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "${PROTOC_GEN_GO_GRPC_VERSION}"
