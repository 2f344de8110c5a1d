package spec

import "net/netip"

// PortKind is the role a port plays.
type PortKind uint8

const (
	// PortPod is the host end of a pod's veth: everything it receives is the
	// switch's, and the switch answers ARP/NDP for the pod's gateway on it.
	PortPod PortKind = iota
	// PortUplink is a NIC queue shared with the host: its XDP program steers
	// only pod-prefix and VXLAN traffic to the switch and passes the rest.
	PortUplink
	// PortHost is a veth into the host namespace for pod<->node traffic.
	PortHost
)

var portKindNames = [...]string{"pod", "uplink", "host"}

func (k PortKind) String() string {
	if int(k) < len(portKindNames) {
		return portKindNames[k]
	}
	return "unknown"
}

// ParsePortKind parses a kind name as String prints it.
func ParsePortKind(s string) (PortKind, bool) {
	for i, n := range portKindNames {
		if n == s {
			return PortKind(i), true
		}
	}
	return 0, false
}

// Mode is how a port moves frames: which driver opens it.
type Mode uint8

const (
	ModeAuto     Mode = iota // try XDP zero-copy, then native copy, then generic, then AF_PACKET
	ModeXDPZC                // AF_XDP zero-copy
	ModeXDPDrv               // AF_XDP copy mode, native (driver) XDP
	ModeXDPSKB               // AF_XDP copy mode, generic (skb) XDP
	ModeAFPacket             // AF_PACKET fallback, no XDP
	ModeMemif                // memif shared-memory rings, xvsd the server (PortConfig.Memif)
)

var modeNames = [...]string{"auto", "xdp-zerocopy", "xdp-native", "xdp-generic", "af-packet", "memif"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return "unknown"
}

// XDP reports whether m is one of the AF_XDP modes (the ones with kernel
// ring statistics).
func (m Mode) XDP() bool { return m == ModeXDPZC || m == ModeXDPDrv || m == ModeXDPSKB }

// ParseMode parses a mode name as String prints it.
func ParseMode(s string) (Mode, bool) {
	for i, n := range modeNames {
		if n == s {
			return Mode(i), true
		}
	}
	return 0, false
}

// PortConfig describes one port to add.
type PortConfig struct {
	Name  string   // interface name in xvsd's network namespace
	Kind  PortKind // pod, uplink or host
	Mode  Mode     // ModeAuto unless forced
	Queue int      // NIC queue (uplink); 0 for veths
	// Queues is how many NIC queues, from Queue on, the uplink serves
	// (default 1). Each gets its own AF_XDP socket under one shared steering
	// program, is served by worker queue%Workers, and shows as a port of its
	// own ("eth0/q1"); routes name the first.
	Queues int
	// Addrs: for a pod port, the pod's /32 and /128 addresses (routes to the
	// pod are installed for them); for the uplink, the node's addresses with
	// their subnet length (connected routes).
	Addrs []netip.Prefix
	// PeerMAC is the pod's eth0 MAC (pod ports); zero means learn it from
	// the pod's ARP/NDP.
	PeerMAC [6]byte
	// MTU overrides the link MTU when non-zero.
	MTU int
	// Memif, for ModeMemif only, says where the port listens; Name then
	// names the port and no kernel interface.
	Memif *MemifConfig
}

// MemifConfig is a memif port's socket and rings. xvsd is the memif server
// (master); the pod's application connects as the client.
type MemifConfig struct {
	// Socket is a file path, or "@name" for an abstract socket.
	Socket string
	// Netns, when set, is the network namespace (a path such as
	// /proc/PID/ns/net or /run/netns/NAME) the socket is opened in: an
	// abstract socket there is reachable only from that namespace.
	Netns string
	// ID is the memif interface id the client asks for (default 0).
	ID uint32
	// Queues is how many queue pairs are offered (default 1).
	Queues int
	// RingSize is the most descriptors per ring the peer may use, a power
	// of two (default 1024).
	RingSize int
	// Polling masks the server's rings: the peer never signals, the worker
	// polls. Otherwise the worker sleeps on the peer's eventfds.
	Polling bool
	// Secret, when set, must be presented by the peer (at most 24 bytes).
	Secret string
}

// PortStatus is what the API shows of a port.
type PortStatus struct {
	ID      uint16
	Name    string
	Kind    PortKind
	Mode    Mode   // the mode actually in use
	Up      bool   // false once the link went away or failed
	Reason  string // why the port is down or fell back ("xdp attach: ...")
	MAC     [6]byte
	PeerMAC [6]byte
	Addrs   []netip.Prefix
	MTU     int
	Worker  int
	Stats   PortStats
	Memif   *MemifStatus // memif ports only
}

// MemifStatus is a memif port's connection as `xvsctl show ports` prints it.
type MemifStatus struct {
	Role        string // "server": xvsd is always the memif master
	Socket      string
	ID          uint32
	Polling     bool
	Connected   bool
	PeerName    string // the peer's application, from INIT
	PeerIf      string // the peer's interface name
	RxQueues    int    // rings in use in each direction (0 while down)
	TxQueues    int
	RingSize    int // descriptors per ring
	BufferSize  int // the peer's buffer size
	LastReason  string
	Connects    uint64
	Disconnects uint64
	RxDrops     uint64 // frames memif dropped on receive (too big, bad descriptor)
}

// PortStats counts one port's traffic.
type PortStats struct {
	RxPackets, RxBytes uint64
	TxPackets, TxBytes uint64
	TxDrops            uint64 // frames the port's ring refused
	// Kernel-side AF_XDP counters (XDP_STATISTICS); zero for other ports.
	KernelRxDropped  uint64
	KernelRxRingFull uint64
	KernelFillEmpty  uint64
	KernelTxInvalid  uint64
}
