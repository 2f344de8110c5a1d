package vswitch

import (
	"net/netip"
	"sync/atomic"

	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
)

// portState is one port as the switch and its worker see it. Fields above
// the line are set before the port is handed to its worker and change only
// through closures run on that worker (worker.do); the worker reads them
// without synchronisation. Status readers use the atomics below the line.
type portState struct {
	id      uint16
	name    string
	kind    spec.PortKind
	port    port.Port
	large   port.LargePort // port, when it carries offloads; else nil
	worker  int
	mac     [6]byte // our MAC on this link: the gateway MAC on pod ports
	peerMAC [6]byte // the pod's MAC (pod ports); zero until known
	mtu     int     // L3 MTU: the largest IP packet the port sends
	// passive: the kernel sees every frame this port sees (AF_PACKET on the
	// uplink), so the switch answers nothing there and only forwards.
	passive   bool
	gateway   bool     // pod and host ports: the switch answers ARP/NDP/echo for the gateway here
	tunnel    bool     // the VXLAN tunnel's pseudo-port (worker.tun): replies are routed, not sent out of it
	needLearn bool     // pod port whose MAC is not known yet: learn it from traffic
	tcFast    bool     // pod port whose tc program forwards: what it sends out of an uplink is learned for it (remote.go)
	icmpSrc4  [4]byte  // source of ICMP errors for packets that came in here
	icmpSrc6  [16]byte // likewise for ICMPv6
	own4      [4]byte  // pod ports: the pod's own IPv4 (not proxied), zero if none
	own6      [16]byte // pod ports: the pod's own IPv6, zero if none
	cfg       spec.PortConfig
	ifindex   int
	// primary is the uplink port a queue port belongs to (nil for the
	// first queue and every other port); queues are the primary's others.
	primary *portState
	queues  []*portState
	// ----
	status atomic.Pointer[portStatusDyn]
	stats  portCounters
}

type portStatusDyn struct {
	up     bool
	reason string
	mode   spec.Mode
}

type portCounters struct {
	rxPackets, rxBytes, txPackets, txBytes, txDrops atomic.Uint64
}

func (ps *portState) setStatus(up bool, mode spec.Mode, reason string) {
	ps.status.Store(&portStatusDyn{up: up, mode: mode, reason: reason})
}

func (ps *portState) snapshot() spec.PortStatus {
	st := ps.status.Load()
	out := spec.PortStatus{
		ID: ps.id, Name: ps.name, Kind: ps.kind, MAC: ps.mac, PeerMAC: ps.peerMAC,
		Addrs: append([]netip.Prefix(nil), ps.cfg.Addrs...), MTU: ps.mtu, Worker: ps.worker,
		Stats: spec.PortStats{
			RxPackets: ps.stats.rxPackets.Load(), RxBytes: ps.stats.rxBytes.Load(),
			TxPackets: ps.stats.txPackets.Load(), TxBytes: ps.stats.txBytes.Load(),
			TxDrops: ps.stats.txDrops.Load(),
		},
	}
	if st != nil {
		out.Up, out.Mode, out.Reason = st.up, st.mode, st.reason
	}
	if ks, ok := ps.port.(port.KernelStats); ok {
		if k, err := ks.Stats(); err == nil {
			out.Stats.KernelRxDropped = k.Rx_dropped
			out.Stats.KernelRxRingFull = k.Rx_ring_full
			out.Stats.KernelFillEmpty = k.Rx_fill_ring_empty_descs
			out.Stats.KernelTxInvalid = k.Tx_invalid_descs
		}
	}
	return out
}
