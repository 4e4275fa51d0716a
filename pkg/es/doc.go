// Package es is the event-sourcing core of ordersys: the event envelope, the aggregate contract,
// replay, the event type registry with schema versions and upcasters, snapshots, and the sentinel
// errors every layer shares. It imports only the standard library.
package es
