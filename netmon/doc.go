// Package netmon follows what the host's kernel knows about the links and
// neighbours of the switch's namespace: the neighbour table (ARP and NDP
// entries, existing ones first, then every change) and links that go
// away. The switch never answers or sends ARP/NDP on an uplink, the
// host's kernel owns that link; it asks the kernel to resolve a next hop
// (Resolve, NTF_USE, as if it had traffic for the address) and follows
// the table through a Monitor.
//
// Netlink is the Monitor on the kernel's netlink subscriptions; package
// netmontest has one a test feeds by hand.
//
// # Concurrency
//
// A Monitor calls its Handler from its own goroutines, one event at a
// time per kind, until Close returns; Close waits for them. Resolve is
// safe from any goroutine.
//
// # Allocation
//
// Control-plane code: events allocate; nothing here is on a packet path.
package netmon
