// Package app is the query service's use-case layer. It reads the projected read models through
// the ReadModel port and the event store through the es.EventStore port, and knows nothing of
// gRPC or protobuf.
//
// Choices where the public contract is silent (docs: services/query/README.md):
//
//   - GetOrder with a min_version the read model has not reached (or whose row is missing) polls
//     the read model with a backoff growing from Options.MinPoll to Options.MaxPoll until the
//     version is there or the call's deadline is near, then fails with an error matching
//     context.DeadlineExceeded (DEADLINE_EXCEEDED, as the RPC's comment promises) that says which
//     version the read model is at. A call without deadline waits at most Options.MaxWait.
//   - A missing row is NOT_FOUND only when the event store holds no order with that id either;
//     when it does (the projector lags behind a just-created order), GetOrder waits as if
//     min_version were 1.
//   - Lists: page_size 0 means Options.DefaultPageSize (20), above Options.MaxPageSize (100) it
//     is clamped (the proto says "the server caps it"), negative is INVALID_ARGUMENT. Page
//     tokens are pkg/readmodel's: opaque, bound to their list; a bad or foreign one is
//     INVALID_ARGUMENT on page_token.
//   - GetOrderAt by version: the newest snapshot at or below the version plus the events after
//     it. A version beyond the order's current one is FAILED_PRECONDITION (rule
//     RuleVersionNotReached): the order exists, that version does not yet.
//   - GetOrderAt by time: the state after the longest prefix of the stream whose events occurred
//     at or before the time. A snapshot is used when the last event it covers (its UpdatedAt)
//     occurred at or before the time, which is exact because occurred_at does not decrease
//     along an aggregate's stream (commands on one aggregate are serialized by its version).
//     A time before the order's creation is NOT_FOUND.
//   - An id that names another aggregate kind (a customer) is NOT_FOUND for the order RPCs.
package app
