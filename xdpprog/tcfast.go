package xdpprog

import (
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
)

// The fast path for AF_PACKET pod ports. Their frames are sk_buffs: the
// pod keeps TSO, so TCP arrives in GSO super-frames. The port's tc ingress
// program (see AttachIngress) forwards a pod-to-pod frame out of the
// destination pod's host veth end with bpf_redirect, whole and without a
// copy, in the sending pod's softirq, as the kernel's own routing would,
// minus the IP layer. (bpf_redirect_peer, straight into the pod's stack,
// measured no faster here and would skip the pod's own veth receive path:
// its XDP program, GRO, counters.)
//
// The frames it forwards must not reach the port's packet socket too, and
// the socket's tap runs before tc: the socket gets a filter (SocketFilter)
// that refuses exactly those frames. Both programs decide through one
// function (fast_decide_skb in bpf/fast.h), so they agree frame by frame.
//
// The decision is the XDP fast path's: IPv4 without options or IPv6, TTL or
// hop limit above 1, to a fast-path destination, no bigger than its MTU.
// For a GSO super-frame the size checked is one segment's: IP header, TCP
// header (or UDP's 8 bytes) and gso_size; other GSO types go to the switch.

// tc verdicts.
const (
	tcActOK       = 0
	tcActShot     = 2
	tcActRedirect = 7
)

// loadIngressFast loads the tc ingress program of an AF_PACKET pod port
// with the fast path f: forward what the fast path takes, drop the rest
// (the port's socket has it).
func loadIngressFast(f *FastPath) (*ebpf.Program, error) {
	return loadProgram(tcSpec, tcProgXvsIngressFp, f.maps(), nil)
}

// loadTunnelIngress loads AttachTunnelIngress's program.
func loadTunnelIngress(f *FastPath, vni uint32, mac [6]byte) (*ebpf.Program, error) {
	return loadProgram(tcSpec, tcProgXvsTunnelIn, f.maps(), map[string]any{tcVarTunnelVni: vni, tcVarTunnelMac: mac})
}

// socketFilter is the FastPath's socket filter, loaded on first use.
type socketFilter struct {
	once sync.Once
	prog *ebpf.Program
	err  error
}

// SocketFilter returns the program an AF_PACKET pod port's socket must
// carry (SO_ATTACH_BPF) while its tc ingress runs the fast path: it keeps
// the frames the fast path forwards from the socket. The FastPath owns it.
func (f *FastPath) SocketFilter() (*ebpf.Program, error) {
	f.filter.once.Do(func() {
		f.filter.prog, f.filter.err = loadProgram(tcSpec, tcProgXvsFpFilter, f.maps(), nil)
		if f.filter.err != nil {
			f.filter.err = fmt.Errorf("load fast-path socket filter: %w", f.filter.err)
		}
	})
	return f.filter.prog, f.filter.err
}
