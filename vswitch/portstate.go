package vswitch

import (
	"net/netip"
	"sync/atomic"

	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
)

// Port is one port as its worker sees it. Its fields are set before the
// port is handed to the workers (Worker.AddPort) and change only through
// closures run on the workers (Worker.Do); the worker reads them without
// synchronisation. Stats are atomics, read by anyone.
type Port struct {
	ID      uint16
	Name    string
	Kind    spec.PortKind
	Dev     port.Port      // the driver's port; nil once closed
	Large   port.LargePort // Dev, when it takes super-frames; else nil
	Worker  int            // the worker that receives from it
	MAC     [6]byte        // our MAC on this link: the gateway MAC on pod ports
	PeerMAC [6]byte        // the pod's MAC (pod ports); zero until known
	MTU     int            // L3 MTU: the largest IP packet the port sends
	// Passive: the kernel sees every frame this port sees (AF_PACKET on the
	// uplink), so the switch answers nothing there and only forwards.
	Passive   bool
	Gateway   bool     // pod and host ports: the switch answers ARP/NDP/echo for the gateway here
	Tunnel    bool     // the VXLAN tunnel's pseudo-port (Worker.tun): replies are routed, not sent out of it
	NeedLearn bool     // pod port whose MAC is not known yet: learn it from traffic
	TCFast    bool     // pod port whose tc program forwards: what it sends out of an uplink is asked for the fast path (ReqRemote)
	ICMPSrc4  [4]byte  // source of ICMP errors for packets that came in here
	ICMPSrc6  [16]byte // likewise for ICMPv6
	Own4      [4]byte  // pod ports: the pod's own IPv4 (not proxied), zero if none
	Own6      [16]byte // pod ports: the pod's own IPv6, zero if none

	Stats PortCounters
}

// PortCounters count a port's traffic, added to by its workers.
type PortCounters struct {
	RxPackets, RxBytes, TxPackets, TxBytes, TxDrops atomic.Uint64
}

// portState is a port as the switch sees it: what its workers see, and
// the control side's own (its config, link, queues and status).
type portState struct {
	*Port
	cfg     spec.PortConfig
	ifindex int
	// primary is the uplink port a queue port belongs to (nil for the
	// first queue and every other port); queues are the primary's others.
	primary *portState
	queues  []*portState
	status  atomic.Pointer[portStatusDyn]
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
