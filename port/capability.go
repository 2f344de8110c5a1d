package port

import (
	"net/netip"

	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/xsk"
)

// The capabilities below are small interfaces a driver's port implements
// when it has what they describe. The switch discovers them with a type
// assertion on the capability, never on a driver's type, so a new driver
// gets whatever it implements and nothing else.

// PrefixSteerer is implemented by uplink ports whose program steers only
// pod prefixes to the switch.
type PrefixSteerer interface {
	AddPrefix(netip.Prefix) error
	RemovePrefix(netip.Prefix) error
}

// VTEPSteerer is implemented by uplink ports whose program steers VXLAN
// for the node to the switch (SetVTEP), whose fast path may decapsulate it
// for the node's pods itself (SetDecap, with the node's VNI and VTEP MAC;
// a zero MAC turns it off), and which may hand VXLAN for pods only tc
// reaches to the kernel's VXLAN device (SetKernelVXLAN).
type VTEPSteerer interface {
	SetVTEP(port uint16, node4, node6 netip.Addr) error
	SetDecap(vni uint32, mac [6]byte) error
	SetKernelVXLAN(on bool) error
}

// SteeredUplink is implemented by uplink ports whose steering may be
// missing. One that is not Steered sees a copy of every frame the host
// gets (AF_PACKET without its tc program): the switch then answers
// nothing there and forwards only frames addressed to it.
type SteeredUplink interface {
	Steered() bool
}

// FastAttach is how a pod port's own BPF program takes part in the fast
// path (xdpprog.FastPath).
type FastAttach uint8

const (
	// FastNone: the port's frames all go through a worker.
	FastNone FastAttach = iota
	// FastXDP: its XDP program forwards, and other programs may redirect
	// to it through the devmap (AF_XDP).
	FastXDP
	// FastTC: its tc ingress program forwards whole sk_buffs (AF_PACKET
	// with the fast path attached); XDP programs do not redirect to it.
	FastTC
)

// FastPathPort is implemented by ports whose programs can carry the fast
// path; FastPath says whether and how it is in force.
type FastPathPort interface {
	FastPath() FastAttach
}

// KernelStats is implemented by ports whose kernel ring keeps its own
// counters (AF_XDP's XDP_STATISTICS).
type KernelStats interface {
	Stats() (xsk.Stats, error)
}

// QueueOpener is implemented by uplink ports that serve further NIC queues
// of their interface under their own steering (AF_XDP: one socket per
// queue in the first queue's program). OpenQueue opens queue
// req.Config.Queue on req.Umem.
type QueueOpener interface {
	OpenQueue(req OpenRequest) (Opened, error)
}

// LinkNotifier is implemented by ports whose link comes and goes while
// they stay open (memif: the peer connects, disconnects or dies). The
// switch calls NotifyLink once after opening, then reads LinkUp; fn runs
// on the port's own control goroutine after every change, must not block
// and may run before NotifyLink returns. Reason says why the link is down.
type LinkNotifier interface {
	NotifyLink(fn func())
	LinkUp() (up bool, reason string)
}

// StatusFiller is implemented by ports with more to show than the switch
// knows (memif: socket, rings, peer): FillStatus adds it to st. It is
// called from any goroutine.
type StatusFiller interface {
	FillStatus(st *spec.PortStatus)
}
