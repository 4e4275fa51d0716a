// Package codec translates between the ordersys domain and its protobuf contract (package
// orders.v1): domain events ⇄ protobuf binary payloads through an es.Registry that knows every
// event type's schema version and upcasters, es.Envelope ⇄ orders.v1.EventEnvelope, JSON
// rendering of payloads for humans, snapshot encoding of the Order and Customer aggregates, and
// the value mappings (statuses, tiers, addresses, payment methods, items) that the services need
// at their gRPC edge.
package codec
