package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// grpcurlCmd is how the printed lines find the grpcurl pinned in tools/go.mod.
const grpcurlCmd = "$(GOWORK=off go -C tools tool -n grpcurl)"

// help prints how to call the running services (grpcurl lines) and where to look.
func (s *supervisor) help() {
	c, q := s.byName["command"].grpc, s.byName["query"].grpc
	relay, proj := s.byName["cdc-relay"].grpc, s.byName["projector"].grpc
	ctl := s.rel(filepath.Join(s.bin, "ordersysctl"))
	logs := s.rel(s.logs)
	if s.secure {
		s.secureHelp(c, q, relay, proj, ctl)
		return
	}
	brokers := os.Getenv("ORDERSYS_KAFKA_BROKERS")
	var metrics []string
	for _, name := range []string{"command", "query", "cdc-relay", "projector"} {
		a := s.byName[name].metrics
		if strings.HasPrefix(a, ":") {
			a = "127.0.0.1" + a
		}
		metrics = append(metrics, "http://"+a+"/metrics")
	}
	fmt.Fprintf(s.out, `
ordersys runs: command %[1]s, query %[2]s, cdc-relay %[3]s, projector %[4]s
keyspace %[5]s, Kafka %[6]s (topics order-events, customer-events), logs %[7]s/

Call it from %[8]s with grpcurl (every server has reflection; docs/running.md has every call):

  G=%[9]s
  $G -plaintext %[1]s list
  $G -plaintext -d '{"customer_id":"11111111-1111-4111-8111-111111111111","email":"ada@example.com","first_name":"Ada","last_name":"Lovelace","phone":"+441234567890"}' \
      %[1]s orders.v1.CustomerCommandService/RegisterCustomer
  $G -plaintext -H 'x-correlation-id: demo-1' -d '{"order_id":"22222222-2222-4222-8222-222222222222","customer_id":"11111111-1111-4111-8111-111111111111","items":[{"product_id":"33333333-3333-4333-8333-333333333333","quantity":2,"unit_price_cents":1250}]}' \
      %[1]s orders.v1.OrderCommandService/CreateOrder
  $G -plaintext -d '{"order_id":"22222222-2222-4222-8222-222222222222","min_version":1}' %[2]s orders.v1.OrderQueryService/GetOrder
  %[10]s -relay %[3]s -query %[2]s relay status
  kcat -C -b %[6]s -t order-events -o beginning -e -f '%%k %%h\n'

Look:
  traces   %[11]s  (service command, cdc-relay, projector, query; tag correlation_id=demo-1)
  metrics  %[12]s
  Prometheus %[13]s (targets and the alert rules of deploy/prometheus/alerts.yaml; RUN_PROMETHEUS=0: none)
  logs     tail -f %[7]s/{command,query,cdc-relay,projector}.log

`, c, q, relay, proj, os.Getenv("ORDERSYS_CQL_KEYSPACE"), brokers, logs, s.root, grpcurlCmd, ctl,
		s.jaegerUI, strings.Join(metrics, "  "), s.prometheusUI)
}

// secureHelp prints how to call the services of RUN_SECURE=1 (TLS and tokens).
func (s *supervisor) secureHelp(c, q, relay, proj, ctl string) {
	d := s.rel(s.secrets)
	fmt.Fprintf(s.out, `
ordersys runs with gRPC TLS and bearer tokens: command %[1]s, query %[2]s, cdc-relay %[3]s, projector %[4]s
CA %[5]s/ca.pem; tokens %[5]s/token-writer (commands), %[5]s/token-reader (queries), %[5]s/token-admin (admin)

  G=%[6]s

  $G -cacert %[5]s/ca.pem -H "authorization: Bearer $(cat %[5]s/token-writer)" -d '{"customer_id":"11111111-1111-4111-8111-111111111111","email":"ada@example.com","first_name":"Ada","last_name":"Lovelace"}' \
      %[1]s orders.v1.CustomerCommandService/RegisterCustomer
  $G -cacert %[5]s/ca.pem -H "authorization: Bearer $(cat %[5]s/token-reader)" -d '{"customer_id":"11111111-1111-4111-8111-111111111111"}' %[2]s orders.v1.CustomerQueryService/GetCustomer
  $G -cacert %[5]s/ca.pem -d '{"service":""}' %[1]s grpc.health.v1.Health/Check      # health needs no token
  %[7]s -ca %[5]s/ca.pem -token-file %[5]s/token-admin -relay %[3]s relay status

Kafka: SASL_SSL on 127.0.0.1:9094 (CA %[5]s/ca.pem, SCRAM-SHA-512, user ordersys, password in
.state/kafka-secure/password), deploy/local/kafka-secure.sh; the relay and the projector use it.
Cassandra: TLS only with a password on 127.0.0.1:9142 (CA %[5]s/ca.pem, user cassandra),
deploy/local/cassandra-secure.sh; every service and migrate use it.

`, c, q, relay, proj, d, grpcurlCmd, ctl)
}
