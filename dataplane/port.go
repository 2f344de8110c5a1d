package dataplane

import (
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
