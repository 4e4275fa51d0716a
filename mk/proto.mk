# mk/proto.mk: protobuf tooling, code generation and the repository-wide lint gate.
# Included by the top Makefile (include mk/*.mk). Each recipe is one POSIX shell command, so it works
# under /bin/sh or SHELL := /bin/bash, with or without .ONESHELL, and with strict .SHELLFLAGS
# (-eu -o pipefail).
#
#   make tools     install the pinned buf, protoc-gen-go, protoc-gen-go-grpc into .state/tools/bin
#   make generate  buf generate (proto/ -> pkg/gen), then gofmt the generated tree
#   make lint      buf lint, buf format check, generated code up to date, gofmt, go vet per module
#   make breaking  buf breaking against branch main (only when main already has .proto files)
#
# tools/generate/lint are declared as prerequisite-only rules, so other mk files can add their own
# steps to the same target names (e.g. `lint: helm-lint`) without overriding these.

# Repository root: the parent of the folder holding this file (computed before any other include).
PROTO_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
PROTO_BIN := $(PROTO_ROOT)/.state/tools/bin
# Pinned plugins and buf come first on PATH, so buf.gen.yaml's `local:` plugins resolve to them.
PROTO_ENV := PATH="$(PROTO_BIN):$$PATH"
PROTO_BUF := $(PROTO_ENV) "$(PROTO_BIN)/buf"
# Generated Go (must match the `out:` of buf.gen.yaml).
PROTO_GEN_DIR := pkg/gen
# Baseline for `make breaking`: branch and the folder (inside it) holding the .proto files.
PROTO_BREAKING_BRANCH ?= main
PROTO_BREAKING_AGAINST ?= .git\#branch=$(PROTO_BREAKING_BRANCH),subdir=proto

.PHONY: tools generate lint breaking \
	proto-tools proto-generate proto-lint proto-format-check proto-stale-check proto-breaking \
	lint-gofmt lint-govet

tools: proto-tools
generate: proto-generate
lint: proto-lint proto-format-check proto-stale-check lint-gofmt lint-govet
breaking: proto-breaking

## proto-tools: install pinned tools (idempotent: skips a tool already at its pinned version).
proto-tools:
	@"$(PROTO_ROOT)/deploy/tools.sh" "$(PROTO_BIN)"

## proto-generate: regenerate pkg/gen from proto/ (buf.gen.yaml has clean: true).
proto-generate: proto-tools
	@cd "$(PROTO_ROOT)" && echo "generate: buf generate -> $(PROTO_GEN_DIR)" && \
		$(PROTO_BUF) generate && gofmt -w "$(PROTO_GEN_DIR)"

## proto-lint: buf lint (STANDARD + comments, see buf.yaml).
proto-lint: proto-tools
	@cd "$(PROTO_ROOT)" && echo "lint: buf lint" && $(PROTO_BUF) lint

## proto-format-check: .proto files must be `buf format` clean (fix: buf format -w).
proto-format-check: proto-tools
	@cd "$(PROTO_ROOT)" && echo "lint: buf format" && \
		if ! $(PROTO_BUF) format -d --exit-code; then \
			echo "proto files are not formatted: run $(PROTO_BIN)/buf format -w" >&2; exit 1; \
		fi

## proto-stale-check: regenerate into a temp dir and compare with the committed pkg/gen.
proto-stale-check: proto-tools
	@cd "$(PROTO_ROOT)" && echo "lint: generated code up to date" && \
		tmp="$$(mktemp -d)" && trap 'rm -rf "$$tmp"' EXIT && \
		$(PROTO_BUF) generate --output "$$tmp" && gofmt -w "$$tmp/$(PROTO_GEN_DIR)" && \
		if ! diff -r "$$tmp/$(PROTO_GEN_DIR)" "$(PROTO_GEN_DIR)" >&2; then \
			echo "generated code is stale: run make generate" >&2; exit 1; \
		fi

## lint-gofmt: every tracked .go file (still present on disk) must be gofmt clean.
lint-gofmt:
	@cd "$(PROTO_ROOT)" && echo "lint: gofmt" && \
		unformatted="$$(git ls-files -- '*.go' | \
			while IFS= read -r f; do if [ -f "$$f" ]; then printf '%s\n' "$$f"; fi; done | \
			xargs -r -d '\n' gofmt -l)" && \
		if [ -n "$$unformatted" ]; then \
			echo "not gofmt clean (fix: gofmt -w <file>):" >&2; echo "$$unformatted" >&2; exit 1; \
		fi

## lint-govet: go vet ./... in every module of the workspace (go.work); a module without any
## package yet is skipped.
lint-govet:
	@cd "$(PROTO_ROOT)" && echo "lint: go vet" && \
		mods="$$(go list -m -f '{{.Dir}}')" && status=0 && \
		for dir in $$mods; do \
			if [ -z "$$(cd "$$dir" && go list -e ./... 2>/dev/null)" ]; then \
				echo "  $${dir#$(PROTO_ROOT)/}: no packages yet, skipped"; continue; \
			fi; \
			echo "  go vet $${dir#$(PROTO_ROOT)/}/..."; \
			(cd "$$dir" && go vet ./...) || status=1; \
		done && \
		if [ "$$status" -ne 0 ]; then echo "go vet failed (see above)" >&2; exit 1; fi

## proto-breaking: buf breaking (FILE rules, see buf.yaml) against branch main's proto/ folder.
## Skipped, with a note, while that branch has no .proto files yet (nothing to break). Compare
## with another baseline: make breaking PROTO_BREAKING_BRANCH=release-1.
proto-breaking: proto-tools
	@cd "$(PROTO_ROOT)" && \
		if git ls-tree -r --name-only "$(PROTO_BREAKING_BRANCH)" -- proto 2>/dev/null | grep -q '\.proto$$'; then \
			echo "breaking: buf breaking --against '$(PROTO_BREAKING_AGAINST)'" && \
			$(PROTO_BUF) breaking proto --against '$(PROTO_BREAKING_AGAINST)'; \
		else \
			echo "breaking: branch $(PROTO_BREAKING_BRANCH) has no .proto files under proto/: nothing to compare, skipped"; \
		fi
