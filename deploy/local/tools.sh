#!/usr/bin/env bash
# Outside clients used by `make run` and the end-to-end test, installed idempotently:
#
#   grpcurl  go install github.com/fullstorydev/grpcurl/cmd/grpcurl@GRPCURL_VERSION into .state/tools/bin
#   kcat     the Debian package `kcat` (apt-get; needs root, as on CI's fresh machines)
#   jaeger   built once by deploy/local/jaeger.sh build (only with the argument `jaeger` or `all`)
#
# Usage: deploy/local/tools.sh [grpcurl] [kcat] [jaeger] [all]   (no argument: grpcurl kcat)
#
# A tool already present at the pinned version is left alone; a failure says what failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN_DIR=${TOOLS_BIN_DIR:-$ROOT/.state/tools/bin}
GRPCURL_VERSION=${GRPCURL_VERSION:-v1.9.3}

say() { printf '[tools] %s\n' "$*"; }
die() { say "ERROR: $*" >&2; exit 1; }

install_grpcurl() {
	local bin=$BIN_DIR/grpcurl have=""
	if [[ -x $bin ]]; then
		have=$(go version -m "$bin" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/fullstorydev/grpcurl" { print $3 }')
		if [[ $have == "$GRPCURL_VERSION" ]]; then
			say "grpcurl $GRPCURL_VERSION already installed"
			return 0
		fi
	fi
	mkdir -p "$BIN_DIR"
	say "installing grpcurl $GRPCURL_VERSION into ${BIN_DIR#"$ROOT"/} (was: ${have:-none})"
	# GOWORK=off: exactly grpcurl's own module graph, independent of this repo's go.work.
	(cd "$BIN_DIR" && GOWORK=off GOFLAGS= GOBIN="$BIN_DIR" nice -n 10 \
		go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION") ||
		die "go install grpcurl@$GRPCURL_VERSION failed"
}

install_kcat() {
	if command -v kcat >/dev/null 2>&1; then
		say "kcat already installed: $(kcat -V 2>&1 | head -n1)"
		return 0
	fi
	command -v apt-get >/dev/null 2>&1 || die "kcat is missing and there is no apt-get: install kcat (Debian/Ubuntu package 'kcat')"
	local sudo=""
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null 2>&1 || die "kcat is missing: run 'apt-get install -y kcat' as root"
		sudo="sudo -n"
	fi
	export DEBIAN_FRONTEND=noninteractive
	# apt-cache knows no candidate before the first `apt-get update` on a fresh machine.
	if ! apt-cache policy kcat 2>/dev/null | grep -q 'Candidate: [0-9]'; then
		say "apt-get update (package lists do not know kcat yet)"
		$sudo apt-get update -qq || die "apt-get update failed"
	fi
	say "apt-get install -y kcat"
	$sudo apt-get install -y -qq kcat >/dev/null || die "apt-get install kcat failed"
	say "kcat installed: $(kcat -V 2>&1 | head -n1)"
}

want=("$@")
((${#want[@]})) || want=(grpcurl kcat)
for w in "${want[@]}"; do
	case $w in
	grpcurl) install_grpcurl ;;
	kcat) install_kcat ;;
	jaeger) "$HERE/jaeger.sh" build ;;
	all) install_grpcurl; install_kcat; "$HERE/jaeger.sh" build ;;
	*) die "unknown tool '$w' (grpcurl, kcat, jaeger, all)" ;;
	esac
done
