package conntrack

import "unsafe"

// uintptrOf orders buckets for lock2; buckets live in one slice that the
// garbage collector never moves.
func uintptrOf(b *bucket) uintptr { return uintptr(unsafe.Pointer(b)) }
