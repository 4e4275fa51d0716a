// Package app is the command service's use-case layer: it executes a domain command against one
// event-sourced aggregate, through the es.EventStore port.
//
// Execute decides a command on an aggregate this Service holds in its cache without reading the
// store (the append's condition, "still at that version and this command id unrecorded",
// checks what the read would have; when it fails, the command goes on as below). Otherwise it
// loads the aggregate (from the cache caught up with the events appended since, or else the
// newest snapshot plus the events after it), recognises a repeated command id (returning the
// first outcome, or the first rejection), checks the client's expected version, lets the
// aggregate decide, and appends the resulting events with optimistic concurrency. A lost race is retried a bounded number of times with a jittered backoff when the
// client did not pin a version. A snapshot is written in the background when the append crosses
// a multiple of the snapshot interval. Within one Service, commands on one aggregate run one at
// a time in arrival order; races between processes are settled by the store.
//
// The package knows nothing of gRPC or protobuf: the transport edge turns requests into domain
// commands and maps the errors returned here (es.ValidationError, es.RuleError,
// es.ConflictError, es.ErrNotFound, es.ErrAlreadyExists, es.ErrUnavailable,
// es.ErrCommandIDReused) to status codes.
package app
