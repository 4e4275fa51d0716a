# mk/generate.mk: documents generated from the code, and the checks that they are current.
# Included by the top Makefile (include mk/*.mk).
#
#   make env-doc        rewrite docs/configuration.md, the reference of every ORDERSYS_* variable,
#                       from the binaries' --help=json and the config structs' doc comments
#                       (go generate ./pkg/config, which runs pkg/config/cmd/envdoc)
#   make env-doc-check  fail when the committed docs/configuration.md differs from what env-doc
#                       writes (part of `make test` and `make lint`)
#
# Needs nothing but Go and the module cache: the generator builds the five binaries itself.

GENERATE_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
# The generated reference (must match docPath in pkg/config/cmd/envdoc).
ENV_DOC := docs/configuration.md

.PHONY: env-doc env-doc-check

generate: env-doc
lint: env-doc-check
TEST_PREREQS += env-doc-check

## env-doc: regenerate docs/configuration.md (the ORDERSYS_* reference) from the binaries.
env-doc:
	@cd "$(GENERATE_ROOT)/pkg/config" && echo "generate: go generate ./pkg/config -> $(ENV_DOC)" && go generate .

## env-doc-check: fail when docs/configuration.md is not what make env-doc writes.
env-doc-check:
	@cd "$(GENERATE_ROOT)" && echo "check: $(ENV_DOC) up to date" && \
		tmp="$$(mktemp -d)" && trap 'rm -rf "$$tmp"' EXIT && \
		(cd pkg/config && go run ./cmd/envdoc -o "$$tmp/configuration.md") && \
		if ! diff -u "$(ENV_DOC)" "$$tmp/configuration.md" >&2; then \
			echo "$(ENV_DOC) is stale (a config struct's env tag, default or comment changed):" \
				"run make env-doc and commit the result" >&2; exit 1; \
		fi
