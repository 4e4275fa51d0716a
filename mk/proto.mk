# mk/proto.mk: protobuf tooling, code generation and the repository-wide lint gate.
# Included by the top Makefile (include mk/*.mk). Each recipe is one POSIX shell command, so it works
# under /bin/sh or SHELL := /bin/bash, with or without .ONESHELL, and with strict .SHELLFLAGS
# (-eu -o pipefail).
#
#   make tools     build the pinned Go tools once (buf, grpcurl, helm, the protoc plugins; k8s.mk adds
#                  kube-apiserver & co.): later calls only find them in the Go build cache
#   make generate  buf generate (proto/ -> pkg/gen), then gofmt the generated tree
#   make lint      buf lint, buf format check, generated code up to date, gofmt, go vet per module
#   make breaking  buf breaking against branch main (only when main already has .proto files)
#
# tools/generate/lint are declared as prerequisite-only rules, so other mk files can add their own
# steps to the same target names (e.g. `lint: helm-lint`) without overriding these.

# Repository root: the parent of the folder holding this file (computed before any other include).
PROTO_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
# Pinned Go tools are `tool` directives: tools/go.mod (buf, grpcurl, helm) and tools/protoc/go.mod
# (protoc-gen-go and protoc-gen-go-grpc at the versions pkg/gen was generated with, in a module of
# their own because buf requires a newer google.golang.org/protobuf). Neither module is in go.work:
# their requirements would raise the services' dependency versions, hence GOWORK=off.
# $(call TOOL_PATH,NAME[,SUBDIR]) is a shell command printing the tool's executable: `go tool -n`
# builds it on first use into the Go build cache (outside the clone, shared by every clone) and
# afterwards only prints its path (half a second). buf needs Go 1.26.7: where the installed Go is
# older and GOTOOLCHAIN is unset (go.env may say local), `auto` fetches that toolchain.
TOOL_PATH = GOTOOLCHAIN=$${GOTOOLCHAIN:-auto} GOWORK=off go -C "$(PROTO_ROOT)/tools$(if $(2),/$(2))" tool -n $(1)
# Shell prefix of the buf recipes: $$buf is buf, and the pinned plugins come first on PATH, so
# buf.gen.yaml's `local:` plugins resolve to them.
PROTO_ENV = buf="$$($(call TOOL_PATH,buf))" && \
	gen_go="$$($(call TOOL_PATH,protoc-gen-go,protoc))" && \
	gen_grpc="$$($(call TOOL_PATH,protoc-gen-go-grpc,protoc))" && \
	export PATH="$$(dirname "$$gen_go"):$$(dirname "$$gen_grpc"):$$PATH"
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

## proto-tools: build buf, grpcurl and the protoc plugins (tools/go.mod, tools/protoc/go.mod; minutes once).
proto-tools:
	@echo "tools: go tool -n buf grpcurl protoc-gen-go protoc-gen-go-grpc (first time: minutes)" && \
		for t in buf grpcurl; do $(call TOOL_PATH,$$t) >/dev/null; done && \
		for t in protoc-gen-go protoc-gen-go-grpc; do $(call TOOL_PATH,$$t,protoc) >/dev/null; done

## proto-generate: regenerate pkg/gen from proto/ (buf.gen.yaml has clean: true).
proto-generate:
	@cd "$(PROTO_ROOT)" && echo "generate: buf generate -> $(PROTO_GEN_DIR)" && \
		$(PROTO_ENV) && "$$buf" generate && gofmt -w "$(PROTO_GEN_DIR)"

## proto-lint: buf lint (STANDARD + comments, see buf.yaml).
proto-lint:
	@cd "$(PROTO_ROOT)" && echo "lint: buf lint" && $(PROTO_ENV) && "$$buf" lint

## proto-format-check: .proto files must be `buf format` clean (fix: buf format -w).
proto-format-check:
	@cd "$(PROTO_ROOT)" && echo "lint: buf format" && \
		$(PROTO_ENV) && if ! "$$buf" format -d --exit-code; then \
			echo "proto files are not formatted: run \"$$buf\" format -w (buf of tools/go.mod)" >&2; exit 1; \
		fi

## proto-stale-check: regenerate into a temp dir and compare with the committed pkg/gen.
proto-stale-check:
	@cd "$(PROTO_ROOT)" && echo "lint: generated code up to date" && \
		tmp="$$(mktemp -d)" && trap 'rm -rf "$$tmp"' EXIT && \
		$(PROTO_ENV) && "$$buf" generate --output "$$tmp" && gofmt -w "$$tmp/$(PROTO_GEN_DIR)" && \
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
proto-breaking:
	@cd "$(PROTO_ROOT)" && \
		if git ls-tree -r --name-only "$(PROTO_BREAKING_BRANCH)" -- proto 2>/dev/null | grep -q '\.proto$$'; then \
			echo "breaking: buf breaking --against '$(PROTO_BREAKING_AGAINST)'" && \
			$(PROTO_ENV) && "$$buf" breaking proto --against '$(PROTO_BREAKING_AGAINST)'; \
		else \
			echo "breaking: branch $(PROTO_BREAKING_BRANCH) has no .proto files under proto/: nothing to compare, skipped"; \
		fi
