package xdpprog

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// The programs are assembled here rather than compiled from C so that a
// plain `go build` needs no clang. Registers: R6 holds the xdp_md context
// across helper calls; R2/R3 are data/data_end and are reloaded from it after
// every call (calls clobber R1-R5); R7 holds the config value.

// xdp_md field offsets.
const (
	mdData       = 0
	mdDataEnd    = 4
	mdRxQueueIdx = 16
)

// Ethertypes and masks as a little-endian load of network-order bytes sees
// them.
const (
	leEthIPv4     = 0x0008 // 08 00
	leEthIPv6     = 0xdd86 // 86 dd
	leFragMaskIP4 = 0xff3f // htons(0x3fff): MF flag and fragment offset
	protoUDP      = 17
)

// labeled gives is's first instruction the symbol sym.
func labeled(is asm.Instructions, sym string) asm.Instructions {
	is[0] = is[0].WithSymbol(sym)
	return is
}

func mapPtr(dst asm.Register, m *ebpf.Map) asm.Instruction {
	ins := asm.LoadMapPtr(dst, 0)
	if err := ins.AssociateMap(m); err != nil {
		panic(err) // LoadMapPtr is always a map load
	}
	return ins
}

// redirect ends the program: bpf_redirect_map(xsks, rx_queue_index, miss).
func redirect(xsks *ebpf.Map, ctx asm.Register, miss uint32) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, ctx, mdRxQueueIdx, asm.Word).WithSymbol("redirect"),
		mapPtr(asm.R1, xsks),
		asm.Mov.Imm(asm.R3, int32(miss)),
		asm.FnRedirectMap.Call(),
		asm.Return(),
	}
}

func podProgram(xsks *ebpf.Map, miss uint32) asm.Instructions {
	return redirect(xsks, asm.R1, miss)
}

// reload puts data in R2 and data_end in R3 and checks that n bytes are
// there, else XDP_PASS.
func reload(n int32) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, asm.R6, mdData, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, mdDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, n),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
	}
}

// lookupCfg loads the config value into R7 (XDP_PASS if absent), using the
// stack word at off as key.
func lookupCfg(cfg *ebpf.Map, off int16) asm.Instructions { return lookupCfgOr(cfg, off, "pass") }

// lookupCfgOr is lookupCfg jumping to miss if the value is absent.
func lookupCfgOr(cfg *ebpf.Map, off int16, miss string) asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(asm.RFP, off, 0, asm.Word),
		mapPtr(asm.R1, cfg),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, int32(off)),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, miss),
		asm.Mov.Reg(asm.R7, asm.R0),
	}
}

// byEtherType jumps to v4 for IPv4, v6 for IPv6, else to other (R2 at the
// Ethernet header, 14 bytes readable).
func byEtherType(v4, v6, other string) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half),
		asm.JEq.Imm(asm.R5, leEthIPv4, v4),
		asm.JEq.Imm(asm.R5, leEthIPv6, v6),
		asm.Ja.Label(other),
	}
}

// vxlanHeaderOK jumps to miss unless the VXLAN header before offset l
// (R2 at the outer Ethernet header, l+6 bytes readable) has the I flag and
// the node's VNI, and the inner frame at l is for the node's VTEP MAC (R7
// the config value).
func vxlanHeaderOK(l int16, miss string) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R5, asm.R2, l-8, asm.Byte),
		asm.And.Imm(asm.R5, 0x08),
		asm.JEq.Imm(asm.R5, 0, miss),
		// The VNI: three bytes, the fourth reserved.
		asm.LoadMem(asm.R5, asm.R2, l-4, asm.Word),
		asm.And.Imm(asm.R5, 0x00ffffff),
		asm.LoadMem(asm.R8, asm.R7, cfgVNI, asm.Word),
		asm.JNE.Reg(asm.R5, asm.R8, miss),
		asm.LoadMem(asm.R5, asm.R2, l, asm.Word),
		asm.LoadMem(asm.R8, asm.R7, cfgMAC, asm.Word),
		asm.JNE.Reg(asm.R5, asm.R8, miss),
		asm.LoadMem(asm.R5, asm.R2, l+4, asm.Half),
		asm.LoadMem(asm.R8, asm.R7, cfgMAC+4, asm.Half),
		asm.JNE.Reg(asm.R5, asm.R8, miss),
	}
}

func uplinkProgram(xsks *ebpf.Map, st *steering, miss uint32, f *FastPath) asm.Instructions {
	p := steerProgram(xsks, st, miss)
	if f == nil {
		return p
	}
	// The fast path first, for frames to the node's pods; what it leaves
	// goes on to the steering after its first instruction (R6 = ctx,
	// which the prelude has set).
	p[1] = p[1].WithSymbol("steer")
	pre := fastPrelude(f, "vxmiss", "vxkern")
	pre[1] = pre[1].WithSymbol("fast")
	q := asm.Instructions{pre[0]} // R6 = ctx
	q = append(q, vxlanDecap(st.cfg)...)
	q = append(q, pre[1:]...)
	q = append(q, vxlanKernel()...)
	q = append(q, vxlanRestore()...)
	return append(q, p[1:]...)
}

// udpToVTEP4 jumps to miss unless the IPv4 packet (R2 at its Ethernet
// header, 34 bytes there) is unfragmented UDP to the node's IPv4 VTEP
// address (R7 the config value).
func udpToVTEP4(miss string) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R5, asm.R2, 14+9, asm.Byte),
		asm.JNE.Imm(asm.R5, protoUDP, miss),
		asm.LoadMem(asm.R5, asm.R2, 14+6, asm.Half),
		asm.And.Imm(asm.R5, leFragMaskIP4),
		asm.JNE.Imm(asm.R5, 0, miss),
		asm.LoadMem(asm.R5, asm.R2, 14+16, asm.Word),
		asm.LoadMem(asm.R8, asm.R7, cfgNode4, asm.Word),
		asm.JNE.Reg(asm.R5, asm.R8, miss),
	}
}

// vxlanDecap strips the outer headers (50 bytes) of VXLAN over IPv4 for
// the node, when SetDecap allows it, so the fast path behind it sees the
// inner frame; it jumps to "fast" in every case, with the stack word at
// fp-32 saying whether it stripped. It takes only what needs no more
// checking than this: IHL 5, unfragmented, UDP to the node's VTEP
// address and port, UDP and IP lengths that agree with the frame's, the I
// flag, the node's VNI, and an inner frame for the node's VTEP MAC. A
// non-zero UDP checksum is not verified here (the worker verifies it): the
// inner packet's own checksums, which the pod checks, still cover what it
// carries, and the fast path keeps an IPv4 header checksum as right or as
// wrong as it came.
func vxlanDecap(cfg *ebpf.Map) asm.Instructions {
	const hl = 14 + 20 + 8 + 8 // outer Ethernet, IPv4, UDP, VXLAN
	p := asm.Instructions{
		asm.StoreImm(asm.RFP, -32, 0, asm.Word),
		asm.StoreImm(asm.RFP, -28, 0, asm.Word),
	}
	p = append(p, lookupCfgOr(cfg, -36, "fast")...)
	p = append(p,
		asm.LoadMem(asm.R5, asm.R7, cfgFlags, asm.Word),
		asm.And.Imm(asm.R5, cfgHas4|cfgDecap),
		asm.JNE.Imm(asm.R5, cfgHas4|cfgDecap, "fast"),
	)
	p = append(p, reloadOr(hl+14, "fast")...)
	p = append(p,
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half),
		asm.JNE.Imm(asm.R5, leEthIPv4, "fast"),
		asm.LoadMem(asm.R5, asm.R2, 14, asm.Byte),
		asm.JNE.Imm(asm.R5, 0x45, "fast"),
	)
	p = append(p, udpToVTEP4("fast")...)
	p = append(p,
		asm.LoadMem(asm.R5, asm.R2, 14+20+2, asm.Half),
		asm.LoadMem(asm.R8, asm.R7, cfgPort, asm.Half),
		asm.JNE.Reg(asm.R5, asm.R8, "fast"),
		// Lengths: IP total = frame - 14, UDP length = IP total - 20.
		asm.LoadMem(asm.R5, asm.R2, 14+2, asm.Half),
		asm.HostTo(asm.BE, asm.R5, asm.Half),
		asm.Mov.Reg(asm.R4, asm.R3),
		asm.Sub.Reg(asm.R4, asm.R2),
		asm.Sub.Imm(asm.R4, 14),
		asm.JNE.Reg(asm.R4, asm.R5, "fast"),
		asm.LoadMem(asm.R4, asm.R2, 14+20+4, asm.Half),
		asm.HostTo(asm.BE, asm.R4, asm.Half),
		asm.Add.Imm(asm.R4, 20),
		asm.JNE.Reg(asm.R4, asm.R5, "fast"),
	)
	p = append(p, vxlanHeaderOK(hl, "fast")...)
	return append(p,
		// Whether the kernel's VXLAN device takes what only tc reaches.
		asm.LoadMem(asm.R5, asm.R7, cfgFlags, asm.Word),
		asm.And.Imm(asm.R5, cfgKernel),
		asm.StoreMem(asm.RFP, -28, asm.R5, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Imm(asm.R2, hl),
		asm.FnXdpAdjustHead.Call(),
		asm.JNE.Imm(asm.R0, 0, "fast"),
		asm.StoreImm(asm.RFP, -32, 1, asm.Word),
		asm.Ja.Label("fast"),
	)
}

// vxlanKernel, at "vxkern", takes a frame the fast path found a
// destination for that only tc reaches: decapsulated, with the kernel's
// VXLAN device in use (fp-28), its outer headers go back and it goes to
// the kernel whole (XDP_PASS), whose VXLAN device decapsulates and merges
// it for its tc program; anything else goes on to "vxmiss".
func vxlanKernel() asm.Instructions {
	const hl = 14 + 20 + 8 + 8
	return asm.Instructions{
		asm.LoadMem(asm.R5, asm.RFP, -32, asm.Word).WithSymbol("vxkern"),
		asm.JEq.Imm(asm.R5, 0, "vxmiss"),
		asm.LoadMem(asm.R5, asm.RFP, -28, asm.Word),
		asm.JEq.Imm(asm.R5, 0, "vxmiss"),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Imm(asm.R2, -hl),
		asm.FnXdpAdjustHead.Call(),
		asm.Mov.Imm(asm.R0, Pass),
		asm.Return(),
	}
}

// vxlanRestore, where the fast path leaves a frame, puts back the outer
// headers vxlanDecap stripped (they are still in front of the data), so
// the steering and the socket see the frame as it came; then "steer".
func vxlanRestore() asm.Instructions {
	const hl = 14 + 20 + 8 + 8
	return asm.Instructions{
		asm.LoadMem(asm.R5, asm.RFP, -32, asm.Word).WithSymbol("vxmiss"),
		asm.JEq.Imm(asm.R5, 0, "steer"),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Imm(asm.R2, -hl),
		asm.FnXdpAdjustHead.Call(),
		asm.Ja.Label("steer"),
	}
}

// steerProgram is the uplink's steering: pod prefixes and VXLAN for the
// node to the socket, everything else to the kernel.
func steerProgram(xsks *ebpf.Map, st *steering, miss uint32) asm.Instructions {
	p := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	p = append(p, steerDecide(st, reload, xdpPort4)...)
	x := redirect(xsks, asm.R6, miss)
	x[0] = x[0].WithSymbol("take")
	p = append(p, x...)
	return append(p,
		asm.Mov.Imm(asm.R0, Pass).WithSymbol("pass"),
		asm.Return(),
	)
}

// xdpPort4 is steerDecide's port4 in XDP: past the IPv4 header by packet
// pointer (R2 data, R3 data_end, as reload left them), the whole UDP
// header there.
func xdpPort4() asm.Instructions {
	return asm.Instructions{
		asm.Add.Reg(asm.R2, asm.R5),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 14+8),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R5, asm.R2, 14+2, asm.Half),
	}
}
