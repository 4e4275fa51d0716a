// Package e2e holds the end-to-end test of ordersys: the four services (command, query, cdc-relay,
// projector) built from this workspace and started as separate OS processes against the real
// Cassandra and Kafka of `make infra-up` and a real Jaeger, driven only through their public
// surfaces: gRPC (the generated clients of pkg/gen/orders/v1), the Jaeger query API and the
// Kafka topics read with kcat as an outside consumer.
//
// Run it with `make e2e` (or as part of `make test`); `make bench-e2e` measures the
// command-to-query latency. The test builds the binaries itself (E2E_BIN_DIR points it at
// prebuilt ones), works in a fresh keyspace, a fresh consumer group and fresh topics
// (e2e-<run>-order-events, e2e-<run>-customer-events, given to command, cdc-relay and projector as
// ORDERSYS_ORDER_TOPIC / ORDERSYS_CUSTOMER_TOPIC and deleted at the end), and keeps every
// process's log under .state/e2e/<run>/ for inspection. Environment: ORDERSYS_CQL_HOSTS and
// ORDERSYS_KAFKA_BROKERS (the servers), E2E_JAEGER_BIN (default .state/tools/bin/jaeger),
// E2E_KCAT (default kcat on PATH), E2E_KEEP=1 (keep the keyspace), CI=true (a missing Jaeger
// fails the tracing check instead of skipping it), E2E_ORDERSYS_<X>=v (passed to
// every service as ORDERSYS_<X>=v, e.g. E2E_ORDERSYS_RELAY_SAFETY_WINDOW=50ms for the benchmark).
package e2e
