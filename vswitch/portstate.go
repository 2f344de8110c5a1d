package vswitch

import (
	"net/netip"
	"sync/atomic"

	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
)

// portState is a port as the switch sees it: what its workers see, and
// the control side's own (its config, link, queues and status).
type portState struct {
	*dataplane.Port
	cfg     spec.PortConfig
	ifindex int
	// primary is the uplink port a queue port belongs to (nil for the
	// first queue and every other port); queues are the primary's others.
	primary *portState
	queues  []*portState
	// frames is how many of its worker's Umem frames the port keeps in
	// its fill ring (port.Opened.Frames), counted in Switch.frames.
	frames int
	status atomic.Pointer[portStatusDyn]
	// linkDown is set while a port whose link comes and goes under it
	// (port.LinkNotifier: memif) has no peer: its pod routes are out of
	// the FIB. linkPending says the port reported a change the event loop
	// has not applied yet.
	linkDown    bool
	linkPending atomic.Bool
}

type portStatusDyn struct {
	up     bool
	reason string
	mode   spec.Mode
}

func (ps *portState) setStatus(up bool, mode spec.Mode, reason string) {
	ps.status.Store(&portStatusDyn{up: up, mode: mode, reason: reason})
}

func (ps *portState) snapshot() spec.PortStatus {
	st := ps.status.Load()
	out := spec.PortStatus{
		ID: ps.ID, Name: ps.Name, Kind: ps.Kind, MAC: ps.MAC, PeerMAC: ps.PeerMAC,
		Addrs: append([]netip.Prefix(nil), ps.cfg.Addrs...), MTU: ps.MTU, Worker: ps.Worker,
		Stats: spec.PortStats{
			RxPackets: ps.Stats.RxPackets.Load(), RxBytes: ps.Stats.RxBytes.Load(),
			TxPackets: ps.Stats.TxPackets.Load(), TxBytes: ps.Stats.TxBytes.Load(),
			TxDrops: ps.Stats.TxDrops.Load(),
		},
	}
	if st != nil {
		out.Up, out.Mode, out.Reason = st.up, st.mode, st.reason
	}
	if sf, ok := ps.Dev.(port.StatusFiller); ok {
		sf.FillStatus(&out)
	}
	if ks, ok := ps.Dev.(port.KernelStats); ok {
		if k, err := ks.Stats(); err == nil {
			out.Stats.KernelRxDropped = k.Rx_dropped
			out.Stats.KernelRxRingFull = k.Rx_ring_full
			out.Stats.KernelFillEmpty = k.Rx_fill_ring_empty_descs
			out.Stats.KernelTxInvalid = k.Tx_invalid_descs
		}
	}
	return out
}
