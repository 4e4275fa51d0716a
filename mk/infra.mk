# mk/infra.mk: the local Cassandra and Kafka (deploy/local/infra.sh) and `make test`.
#
#   make infra-up      download (first time) and start both; returns once both answer requests
#   make infra-down    stop both
#   make infra-status  what runs and answers
#   make infra-logs    tails of both servers' logs
#   make test          infra-up, then $(TEST_PREREQS), go vet and go test -race over every module
#                      of go.work, then a summary, then a short fuzz (test-fuzz)
#   make chaos         the whole-system chaos test for CHAOS_DURATION (5m); CLUSTER=3 runs it on
#                      three Cassandra nodes and three Kafka brokers (127.0.0.1-3, RF 3)
#
# Other mk files add steps to `make test` with `TEST_PREREQS += <target>`: they run after
# infra-up and before go vet / go test (secondary expansion sees additions from any mk file).

INFRA_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
INFRA_SH := $(INFRA_ROOT)/deploy/local/infra.sh
# Flags of the Go test run (override e.g. GO_TEST_FLAGS='-count=1 -run TestX').
GO_TEST_FLAGS ?= -race -count=1 -timeout 25m
# Output of the last go test run, for the summary and for CI.
GO_TEST_LOG := $(INFRA_ROOT)/.state/test/go-test.log
# Tests reach the servers where infra.sh puts them (same INFRA_* overrides).
INFRA_TEST_ENV := \
	ORDERSYS_CQL_HOSTS="$${ORDERSYS_CQL_HOSTS:-$${INFRA_ADDR:-127.0.0.1}:$${INFRA_CQL_PORT:-9042}}" \
	ORDERSYS_KAFKA_BROKERS="$${ORDERSYS_KAFKA_BROKERS:-$${INFRA_ADDR:-127.0.0.1}:$${INFRA_KAFKA_PORT:-9092}}"

.PHONY: infra-up infra-down infra-status infra-logs test test-vet test-go test-fuzz chaos

## infra-up: start Cassandra 5 and Kafka 4 under .state/ (downloads them on first use); idempotent.
infra-up:
	@"$(INFRA_SH)" up

## infra-down: stop the Cassandra and Kafka started by infra-up.
infra-down:
	@"$(INFRA_SH)" down

## infra-status: say whether Cassandra and Kafka run and answer requests.
infra-status:
	@"$(INFRA_SH)" status

## infra-logs: show the last lines of both servers' logs.
infra-logs:
	@"$(INFRA_SH)" logs all 50

# Static checks that run before the tests (defined in mk/proto.mk): buf lint and format, generated
# code up to date, gofmt. go vet runs in test-vet.
TEST_CHECKS := proto-lint proto-format-check proto-stale-check lint-gofmt

.SECONDEXPANSION:
## test: every test: infra-up, $(TEST_PREREQS), go vet and go test -race over all modules.
test: infra-up $$(TEST_PREREQS) $(TEST_CHECKS) test-vet test-go test-fuzz
	@echo "test: all steps passed"

# How much `make test` fuzzes the edge-to-downstream contract (FuzzOrderRoundTrip); its seed
# corpus (the f.Add seeds and services/command/testdata/fuzz) also runs in every go test. A count
# of executions, not a duration (20–80 s on 2 cores): Go 1.26's fuzzing coordinator can
# report its own -fuzztime deadline as a failure, "context deadline exceeded" without a failing
# input, when its workers are starved at that moment (golang/go#75804, fixed in Go 1.27); it
# did in a CI run on 2026-12-01. A count has no deadline.
FUZZTIME ?= 10000x

## test-fuzz: fuzz the command edge against the real servers, $(FUZZTIME) (FuzzOrderRoundTrip).
test-fuzz: infra-up
	@cd "$(INFRA_ROOT)/services/command" && echo "== go test -fuzz FuzzOrderRoundTrip -fuzztime $(FUZZTIME)" && \
		$(INFRA_TEST_ENV) go test -count=1 -run '^$$' -fuzz '^FuzzOrderRoundTrip$$' -fuzztime $(FUZZTIME) .

# How long `make chaos` injects faults (`make test` runs the same test for 30 s).
CHAOS_DURATION ?= 5m
# CLUSTER=3: `make chaos` on three-node Cassandra and Kafka clusters (empty: the shared Cassandra
# and one private broker).
CLUSTER ?=

## chaos: the whole-system chaos test (e2e TestChaos) with $(CHAOS_DURATION) of faults; prints its counts.
chaos: infra-up
	@cd "$(INFRA_ROOT)/e2e" && echo "== TestChaos for $(CHAOS_DURATION)" && \
		$(INFRA_TEST_ENV) E2E_CHAOS_DURATION=$(CHAOS_DURATION) E2E_CHAOS_CLUSTER=$(CLUSTER) go test -count=1 -timeout 90m -run '^TestChaos$$' -v .

## test-vet: go vet ./... in every module of go.work.
test-vet:
	@cd "$(INFRA_ROOT)" && mods="$$(go list -m -f '{{.Dir}}/...')" && \
		echo "== go vet over: $$(echo $$mods | sed 's|$(INFRA_ROOT)/||g')" && \
		go vet $$mods

## test-go: go test $(GO_TEST_FLAGS) over every module of go.work (needs infra-up), with a summary.
test-go: infra-up helm-tools
	@cd "$(INFRA_ROOT)" && mkdir -p "$(dir $(GO_TEST_LOG))" && \
		mods="$$(go list -m -f '{{.Dir}}/...')" && \
		echo "== go test $(GO_TEST_FLAGS) over: $$(echo $$mods | sed 's|$(INFRA_ROOT)/||g')" && \
		start=$$SECONDS && status=0 && \
		{ $(INFRA_TEST_ENV) go test $(GO_TEST_FLAGS) $$mods 2>&1 | tee "$(GO_TEST_LOG)" || status=$$?; } && \
		ok=$$(grep -cE '^ok[[:space:]]' "$(GO_TEST_LOG)" || true) && \
		failed=$$(grep -cE '^FAIL[[:space:]]+[^[:space:]]+' "$(GO_TEST_LOG)" || true) && \
		none=$$(grep -cE '\[no test files\]$$' "$(GO_TEST_LOG)" || true) && \
		echo "== go test summary ($$((SECONDS - start))s, log: $(GO_TEST_LOG:$(INFRA_ROOT)/%=%)):" && \
		{ grep -E '^(FAIL[[:space:]]+[^[:space:]]+|--- FAIL)' "$(GO_TEST_LOG)" | sed 's/^/   /' || true; } && \
		echo "   $$none package(s) without tests" && \
		echo "packages: $$ok passed, $$failed failed" && \
		if [ "$$status" -ne 0 ]; then echo "go test failed (exit $$status)" >&2; exit "$$status"; fi
