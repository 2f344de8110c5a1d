package xdpprog

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// IngressDrop is a tc ingress program (TCX) that drops every frame an
// interface receives, after the packet taps have seen it. On the interface
// of an AF_PACKET port the switch's socket still gets every frame, while the
// kernel's own stack gets none: the node does not route, answer or send
// ICMP errors about pod traffic, as with XDP ports, where the steering
// program takes everything. Unlike an XDP program it leaves the veth peer's
// TSO and GSO alone, which is why AF_PACKET pod ports use it.
//
// It is attached through a BPF link, so it goes away with the process that
// holds it, even after SIGKILL.
type IngressDrop struct {
	prog *ebpf.Program
	lnk  link.Link
}

// AttachIngressDrop attaches an IngressDrop to ifindex (in the calling
// thread's network namespace).
func AttachIngressDrop(ifindex int) (*IngressDrop, error) {
	return AttachIngress(ifindex, nil)
}

// AttachIngress attaches an IngressDrop to ifindex that, with a FastPath,
// first forwards what the fast path takes (see tcfast.go, bpf/tc.c); the port's
// socket must then carry f.SocketFilter, or it gets those frames too.
func AttachIngress(ifindex int, f *FastPath) (*IngressDrop, error) {
	var prog *ebpf.Program
	var err error
	if f == nil {
		prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
			Name: "xvs_ingress_drop",
			Type: ebpf.SchedCLS,
			Instructions: asm.Instructions{
				asm.Mov.Imm(asm.R0, tcActShot),
				asm.Return(),
			},
			License: "GPL",
		})
	} else {
		prog, err = loadIngressFast(f)
	}
	if err != nil {
		return nil, fmt.Errorf("ingress program: %w", err)
	}
	return attachTCIngress(ifindex, prog)
}

// attachTCIngress attaches prog to ifindex's tc ingress through a BPF
// link; the IngressDrop owns prog from then on, and closes it on failure.
func attachTCIngress(ifindex int, prog *ebpf.Program) (*IngressDrop, error) {
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: prog, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		prog.Close()
		return nil, fmt.Errorf("attach tc ingress to ifindex %d: %w", ifindex, err)
	}
	return &IngressDrop{prog: prog, lnk: l}, nil
}

// Close detaches the program.
func (d *IngressDrop) Close() error {
	if d == nil || d.lnk == nil {
		return nil
	}
	err := d.lnk.Close()
	d.prog.Close()
	d.lnk = nil
	return err
}

// AttachTunnelIngress attaches to ifindex, the switch's collect_md VXLAN
// device, the tc ingress program that forwards what the device
// decapsulated to the node's pods through the fast path f: frames whose
// tunnel key has the node's VNI and whose inner destination MAC is the
// node's VTEP MAC, to a fast-path destination; it drops the rest (the
// uplink's programs send the device only what the fast path takes).
func AttachTunnelIngress(ifindex int, f *FastPath, vni uint32, mac [6]byte) (*IngressDrop, error) {
	prog, err := loadTunnelIngress(f, vni, mac)
	if err != nil {
		return nil, fmt.Errorf("tunnel ingress program: %w", err)
	}
	return attachTCIngress(ifindex, prog)
}
