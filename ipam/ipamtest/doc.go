// Package ipamtest holds what tests of ipam.Store implementations share:
// the conformance tests every store must pass (TestStore) and the
// invariant check run after crashes and random operations (CheckStore).
//
// Concurrency and allocation: test code; each function is called from one
// test goroutine.
package ipamtest
