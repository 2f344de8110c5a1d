package netmon

import "net/netip"

// Neighbor is one change of the kernel's neighbour table.
type Neighbor struct {
	Ifindex int
	Addr    netip.Addr // unmapped; never multicast
	MAC     [6]byte    // set when Valid
	State   string     // the NUD state: "reachable", "stale", "incomplete", "failed", ...
	// Valid: the entry can be used as a next hop (a usable state and a
	// MAC). An entry that is not valid was lost or never resolved.
	Valid bool
	// Deleted: the kernel removed the entry.
	Deleted bool
}

// Handler receives a Monitor's events. Nil fields are not called.
type Handler struct {
	Neighbor func(Neighbor)
	// LinkGone is called when the link with ifindex was deleted.
	LinkGone func(ifindex int)
	// Error reports a failed subscription read; the monitor goes on.
	Error func(error)
}

// Monitor delivers the kernel's neighbour and link events to a Handler.
type Monitor interface {
	// Start begins delivering events to h, the existing neighbours first.
	Start(h Handler) error
	// Resolve asks the kernel to resolve addr on the link ifindex; the
	// answer arrives as a Neighbor event.
	Resolve(ifindex int, addr netip.Addr) error
	// Close stops the events and waits until no handler runs.
	Close()
}
