// Package apitest has a fake Dataplane and a helper that serves it on a
// unix socket, for tests of the API, xvsctl and the CNI plugin that need no
// kernel. The fake keeps ports and routes in maps under one mutex; it
// resolves routes by a linear longest-prefix scan. Safe for concurrent use.
//
// # Concurrency
//
// Every Fake method takes the Fake's one mutex; Serve's server runs until
// the test's cleanup stops it.
//
// # Allocation
//
// Tests only; nothing here is tuned.
package apitest
