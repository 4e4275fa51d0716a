// Package pkg is the root of the code shared by the ordersys services: the event-sourcing core,
// the domain model, the protobuf contract and the CQL and Kafka adapters live in its sub-packages.
package pkg
