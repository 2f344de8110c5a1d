package perf

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"

	"github.com/xvs-project/xvs/perf/pktio"
	"github.com/xvs-project/xvs/podnet"
)

// XDPRedirect is the ceiling: on each host end of the pod veths a native
// XDP program rewrites the Ethernet addresses to the other pod's and
// XDP_REDIRECTs the frame straight to the other host end. It does no
// lookup and no TTL update, so nothing that forwards on this path can do
// less work; it is the upper bound the other forwarders are read against.
// The pods' ends run NAPI (GRO on), which veth needs to take redirected
// frames, and compute checksums in software (tx offload off), so TCP runs
// without TSO through this forwarder, as through any XDP forwarder on veth.
func XDPRedirect() Forwarder { return &xdpFwd{} }

type xdpFwd struct{ pp *PodPair }

func (x *xdpFwd) Name() string { return "xdp-redirect" }

func (x *xdpFwd) Start(ctx context.Context) (*PodPair, error) {
	// Kernel routing stays configured (forwarding on) so that anything
	// the program passes still gets through; the program takes all IP.
	pp, err := kernelPodPair()
	if err != nil {
		return nil, err
	}
	if err := x.attach(pp); err != nil {
		pp.Close()
		return nil, skipf("xdp redirect: %v", err)
	}
	x.pp = pp
	return pp, nil
}

func (x *xdpFwd) attach(pp *PodPair) error {
	// GRO on gives the pod ends NAPI, which veth needs to take
	// redirected frames; tx checksum offload off, because a redirected
	// frame loses the skb's partial-checksum state and would arrive with
	// a bad TCP checksum.
	for _, ns := range []string{pp.ClientNS, pp.ServerNS} {
		if err := podnet.SetOffloads(podnet.NamedPath(ns), pp.PodIf, podnet.Offloads{GRO: podnet.On, TxChecksum: podnet.Off}); err != nil {
			return fmt.Errorf("pod end offloads: %w", err)
		}
	}
	return pktio.InNetns(pp.Node, func() error {
		cl, err := netlink.LinkByName(pp.ClientHost)
		if err != nil {
			return err
		}
		sl, err := netlink.LinkByName(pp.ServerHost)
		if err != nil {
			return err
		}
		for _, d := range []struct {
			in, out netlink.Link
			dst     net.HardwareAddr
		}{{cl, sl, pp.ServerMAC}, {sl, cl, pp.ClientMAC}} {
			prog, err := redirectProgram(d.out.Attrs().Index, d.dst, gatewayMAC)
			if err != nil {
				return err
			}
			err = netlink.LinkSetXdpFdWithFlags(d.in, prog.FD(), nl.XDP_FLAGS_DRV_MODE)
			prog.Close() // the attachment holds its own reference
			if err != nil {
				return fmt.Errorf("attach to %s: %w", d.in.Attrs().Name, err)
			}
		}
		return nil
	})
}

// redirectProgram builds: if the frame holds an Ethernet header, set its
// destination to dst and source to src and redirect it to ifindex; else
// pass it.
func redirectProgram(ifindex int, dst, src net.HardwareAddr) (*ebpf.Program, error) {
	w := func(b []byte) int64 { return int64(int32(binary.LittleEndian.Uint32(b))) }
	h := func(b []byte) int64 { return int64(binary.LittleEndian.Uint16(b)) }
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 14),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.StoreImm(asm.R2, 0, w(dst[0:4]), asm.Word),
		asm.StoreImm(asm.R2, 4, h(dst[4:6]), asm.Half),
		asm.StoreImm(asm.R2, 6, w(src[0:4]), asm.Word),
		asm.StoreImm(asm.R2, 10, h(src[4:6]), asm.Half),
		asm.Mov.Imm(asm.R1, int32(ifindex)),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRedirect.Call(),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 2).WithSymbol("pass"), // XDP_PASS
		asm.Return(),
	}
	return ebpf.NewProgram(&ebpf.ProgramSpec{Name: "xp_redirect", Type: ebpf.XDP, Instructions: insns, License: "GPL"})
}

func (x *xdpFwd) Stop() error {
	err := x.pp.Close()
	x.pp = nil
	return err
}
