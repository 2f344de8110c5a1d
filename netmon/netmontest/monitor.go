package netmontest

import (
	"net/netip"
	"sync"

	"github.com/xvs-project/xvs/netmon"
)

// Monitor is a netmon.Monitor its owner feeds: nothing comes from the
// kernel, and Resolve only records what was asked.
type Monitor struct {
	mu      sync.Mutex // guards h, asked
	h       netmon.Handler
	asked   []netip.Addr
	started bool
}

var _ netmon.Monitor = (*Monitor)(nil)

// Start implements netmon.Monitor.
func (m *Monitor) Start(h netmon.Handler) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.h, m.started = h, true
	return nil
}

// Resolve implements netmon.Monitor: it records addr (Asked).
func (m *Monitor) Resolve(ifindex int, addr netip.Addr) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.asked = append(m.asked, addr)
	return nil
}

// Close implements netmon.Monitor.
func (m *Monitor) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.h, m.started = netmon.Handler{}, false
}

// Asked returns the addresses Resolve was asked for, oldest first.
func (m *Monitor) Asked() []netip.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]netip.Addr(nil), m.asked...)
}

// Neighbor delivers n to the handler, on the caller's goroutine; before
// Start or after Close it is dropped.
func (m *Monitor) Neighbor(n netmon.Neighbor) {
	m.mu.Lock()
	h := m.h
	m.mu.Unlock()
	if h.Neighbor != nil {
		h.Neighbor(n)
	}
}

// LinkGone delivers a link deletion to the handler, as Neighbor does.
func (m *Monitor) LinkGone(ifindex int) {
	m.mu.Lock()
	h := m.h
	m.mu.Unlock()
	if h.LinkGone != nil {
		h.LinkGone(ifindex)
	}
}
