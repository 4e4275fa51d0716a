// Package kafka holds the ordersys helpers for the Kafka protocol (Apache Kafka here, Redpanda in
// production) on top of github.com/segmentio/kafka-go: how to reach a cluster (Cluster, with TLS
// and SASL, built from the ORDERSYS_KAFKA_* settings by ClusterFrom), topic creation, a keyed
// publisher whose partitioner agrees with the Java client's default (murmur2 of the key), the
// event header names of the public contract (docs API.md) with helpers to build and parse them
// and to carry the W3C trace context, dead-letter topic naming, and consumer helpers.
//
// The package imports segmentio/kafka-go as kafkago; callers usually import this one under a
// short alias (for example okafka) for the same reason.
package kafka
