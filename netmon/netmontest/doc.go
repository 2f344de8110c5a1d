// Package netmontest has a netmon.Monitor for tests, fed by hand: a
// switch under test then leaves the host's kernel alone, and the test
// plays the kernel's neighbour and link events.
//
// # Concurrency
//
// Safe for concurrent use; events run the handler on the caller's
// goroutine.
//
// # Allocation
//
// For tests: it allocates freely.
package netmontest
