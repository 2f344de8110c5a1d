package netmon

import (
	"net/netip"
	"sync"
)

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

// Manual is a Monitor its owner feeds: nothing comes from the kernel and
// Resolve only records what was asked.
type Manual struct {
	mu      sync.Mutex // guards h, asked
	h       Handler
	asked   []netip.Addr
	started bool
}

var _ Monitor = (*Manual)(nil)

// Start implements Monitor.
func (m *Manual) Start(h Handler) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.h, m.started = h, true
	return nil
}

// Resolve implements Monitor: it records addr (Asked).
func (m *Manual) Resolve(ifindex int, addr netip.Addr) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.asked = append(m.asked, addr)
	return nil
}

// Close implements Monitor.
func (m *Manual) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.h, m.started = Handler{}, false
}

// Asked returns the addresses Resolve was asked for, oldest first.
func (m *Manual) Asked() []netip.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]netip.Addr(nil), m.asked...)
}

// Neighbor delivers n to the handler, on the caller's goroutine; before
// Start or after Close it is dropped.
func (m *Manual) Neighbor(n Neighbor) {
	m.mu.Lock()
	h := m.h
	m.mu.Unlock()
	if h.Neighbor != nil {
		h.Neighbor(n)
	}
}

// LinkGone delivers a link deletion to the handler, as Neighbor does.
func (m *Manual) LinkGone(ifindex int) {
	m.mu.Lock()
	h := m.h
	m.mu.Unlock()
	if h.LinkGone != nil {
		h.LinkGone(ifindex)
	}
}
