# ordersys: the top Makefile only sets the shell and includes mk/*.mk, where each area keeps its
# targets (mk/infra.mk: servers and tests, mk/proto.mk: code generation and lint, ...).
# `make` alone lists the documented targets: a line `## name: what it does` above a rule.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

# Repository root, whatever the directory make was started from (make -C, make -f).
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))

include $(sort $(wildcard $(ROOT)/mk/*.mk))

.PHONY: help
## help: list the documented targets.
help:
	@echo "usage: make <target>   (targets documented in Makefile and mk/*.mk)"
	@grep -hE '^## [A-Za-z0-9_.-]+: ' $(MAKEFILE_LIST) | sed -E 's/^## ([^:]+): /\1\t/' | \
		sort -u | awk -F'\t' '{ printf "  %-22s %s\n", $$1, $$2 }'
