package xdpprog

// The uplink and fast-path programs as they were assembled in Go before
// the C in bpf/ replaced them, kept for the A/B: TestLegacyAgrees runs
// both on the same random frames and maps, and BenchmarkPrograms times
// both with BPF_PROG_TEST_RUN. Not built into the package; delete with
// the A/B once nobody needs it.

import (
	"encoding/binary"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// The map value layouts these programs read by byte offset; the C reads
// the same bytes through bpf/xvs.h's structs.
const (
	cfgFlags = 0
	cfgPort  = 4
	cfgNode4 = 8
	cfgNode6 = 12
	cfgVNI   = 28
	cfgMAC   = 32

	asmHas4   = 1
	asmHas6   = 2
	asmDecap  = 4
	asmKernel = 8

	fvIfindex  = 0
	fvMTU      = 4
	fvDst      = 8
	fvSrc      = 14
	fvFlags    = 20
	fvVNI      = 24
	fvTunFlags = 28
	fvRemote   = 32
	fvLocal    = 48

	fvXDP    = 1
	fvTunnel = 2
)

// xdp_md and __sk_buff field offsets.
const (
	mdData    = 0
	mdDataEnd = 4

	skbLen     = 0
	skbData    = 76
	skbDataEnd = 80
	skbGSOSize = 176
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
		asm.And.Imm(asm.R5, asmHas4|asmDecap),
		asm.JNE.Imm(asm.R5, asmHas4|asmDecap, "fast"),
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
		asm.And.Imm(asm.R5, asmKernel),
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

// reloadOr puts data in R2 and data_end in R3 and checks that n bytes are
// there, else jumps to label.
func reloadOr(n int32, label string) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, asm.R6, mdData, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, mdDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, n),
		asm.JGT.Reg(asm.R4, asm.R3, label),
	}
}

// lookupDest looks the packet's destination up in m (the hosts map of its
// family): words 32-bit words from IP header offset dst (R2 points at the
// Ethernet header) go to the stack at key; a miss jumps to miss, a hit
// leaves the fastVal in R7. Both fast paths, XDP and tc, use it.
func lookupDest(m *ebpf.Map, dst, words, key int16, miss string) asm.Instructions {
	return lookupDestBy(m, dst, words, asm.Word, key, miss)
}

// lookupDestBy is lookupDest copying the address n loads of size sz.
func lookupDestBy(m *ebpf.Map, dst, n int16, sz asm.Size, key int16, miss string) asm.Instructions {
	var p asm.Instructions
	step := int16(sz.Sizeof())
	for i := int16(0); i < n; i++ {
		p = append(p,
			asm.LoadMem(asm.R5, asm.R2, 14+dst+step*i, sz),
			asm.StoreMem(asm.RFP, key+step*i, asm.R5, sz),
		)
	}
	return append(p,
		mapPtr(asm.R1, m),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, int32(key)),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, miss),
		asm.Mov.Reg(asm.R7, asm.R0),
	)
}

// fastPodProgram is the pod program with the fast path in front of the
// redirect to the socket.
func fastPodProgram(xsks *ebpf.Map, f *FastPath, miss uint32) asm.Instructions {
	x := redirect(xsks, asm.R6, miss)
	x[0] = x[0].WithSymbol("xsk")
	return append(fastPrelude(f, "xsk", "xsk"), x...)
}

// fastPrelude is the fast path: it forwards what it can (a redirect
// through the devmap) and jumps to the label next for everything else,
// the frame untouched, or to tcOnly for a destination only tc reaches. Registers: R6 ctx (set first), R7 the destination,
// R8 the family's counter index, R9 the output ifindex.
func fastPrelude(f *FastPath, next, tcOnly string) asm.Instructions {
	var p asm.Instructions
	add := func(is ...asm.Instruction) { p = append(p, is...) }
	addAll := func(is asm.Instructions) { p = append(p, is...) }

	// Only destinations whose pod runs NAPI take XDP redirects; the
	// others, which only tc reaches, go to tcOnly, if they fit their MTU
	// (a packet too big goes to next: the switch answers it).
	xdpOnly := asm.Instructions{
		asm.LoadMem(asm.R5, asm.R7, fvFlags, asm.Byte),
		asm.And.Imm(asm.R5, fvXDP),
		asm.JEq.Imm(asm.R5, 0, tcOnly),
	}

	add(asm.Mov.Reg(asm.R6, asm.R1))
	addAll(reloadOr(14, next))
	addAll(byEtherType("fp4", "fp6", next))

	// IPv4 without options, TTL > 1, to a fast-path destination.
	addAll(labeled(reloadOr(14+20, next), "fp4"))
	add(
		asm.LoadMem(asm.R5, asm.R2, 14, asm.Byte),
		asm.JNE.Imm(asm.R5, 0x45, next),
		asm.LoadMem(asm.R5, asm.R2, 14+8, asm.Byte),
		asm.JLE.Imm(asm.R5, 1, next),
	)
	addAll(lookupDest(f.hosts4, 16, 1, -4, next))
	addAll(reloadOr(14+20, next))
	add(
		// Total length against the destination's MTU.
		asm.LoadMem(asm.R4, asm.R2, 14+2, asm.Half),
		asm.HostTo(asm.BE, asm.R4, asm.Half),
		asm.LoadMem(asm.R5, asm.R7, fvMTU, asm.Half),
		asm.JGT.Reg(asm.R4, asm.R5, next),
	)
	addAll(xdpOnly)
	add(
		// TTL - 1; the checksum gains 0x0100 (RFC 1624), in either byte
		// order, as one's-complement sums are order-blind.
		asm.LoadMem(asm.R4, asm.R2, 14+8, asm.Byte),
		asm.Sub.Imm(asm.R4, 1),
		asm.StoreMem(asm.R2, 14+8, asm.R4, asm.Byte),
		asm.LoadMem(asm.R4, asm.R2, 14+10, asm.Half),
		asm.Add.Imm(asm.R4, 1),
		asm.Mov.Reg(asm.R5, asm.R4),
		asm.RSh.Imm(asm.R5, 16),
		asm.And.Imm(asm.R4, 0xffff),
		asm.Add.Reg(asm.R4, asm.R5),
		asm.StoreMem(asm.R2, 14+10, asm.R4, asm.Half),
		asm.Mov.Imm(asm.R8, 0),
		asm.Ja.Label("rewrite"),
	)

	// IPv6, hop limit > 1, to a fast-path destination.
	addAll(labeled(reloadOr(14+40, next), "fp6"))
	add(
		asm.LoadMem(asm.R5, asm.R2, 14+7, asm.Byte),
		asm.JLE.Imm(asm.R5, 1, next),
	)
	addAll(lookupDest(f.hosts6, 24, 4, -16, next))
	addAll(reloadOr(14+40, next))
	add(
		asm.LoadMem(asm.R4, asm.R2, 14+4, asm.Half),
		asm.HostTo(asm.BE, asm.R4, asm.Half),
		asm.Add.Imm(asm.R4, 40),
		asm.LoadMem(asm.R5, asm.R7, fvMTU, asm.Half),
		asm.JGT.Reg(asm.R4, asm.R5, next),
	)
	addAll(xdpOnly)
	add(
		asm.LoadMem(asm.R4, asm.R2, 14+7, asm.Byte),
		asm.Sub.Imm(asm.R4, 1),
		asm.StoreMem(asm.R2, 14+7, asm.R4, asm.Byte),
		asm.Mov.Imm(asm.R8, 1),
	)

	// Ethernet addresses, count, redirect. R2 still points at a frame of
	// at least 34 bytes.
	add(
		asm.LoadMem(asm.R4, asm.R7, fvDst, asm.Word).WithSymbol("rewrite"),
		asm.StoreMem(asm.R2, 0, asm.R4, asm.Word),
		asm.LoadMem(asm.R4, asm.R7, fvDst+4, asm.Half),
		asm.StoreMem(asm.R2, 4, asm.R4, asm.Half),
		asm.LoadMem(asm.R4, asm.R7, fvSrc, asm.Half),
		asm.StoreMem(asm.R2, 6, asm.R4, asm.Half),
		asm.LoadMem(asm.R4, asm.R7, fvSrc+2, asm.Word),
		asm.StoreMem(asm.R2, 8, asm.R4, asm.Word),
		asm.LoadMem(asm.R9, asm.R7, fvIfindex, asm.Word),
		asm.StoreMem(asm.RFP, -20, asm.R8, asm.Word),
		mapPtr(asm.R1, f.stats),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -20),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R4, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R4, 1),
		asm.StoreMem(asm.R0, 0, asm.R4, asm.DWord),
		mapPtr(asm.R1, f.devs).WithSymbol("out"),
		asm.Mov.Reg(asm.R2, asm.R9),
		asm.Mov.Imm(asm.R3, Drop), // a destination without its device: never, see Add
		asm.FnRedirectMap.Call(),
		asm.Return(),
	)

	return p
}

// Stack layout shared by the two programs (below the frame pointer).
const (
	stkKey  = -112 // 16 bytes: the lookup key
	stkStat = -116 // 4 bytes: the counter index
	// The copy of the headers the socket filters and the uplink's tc
	// program decide on, 2 bytes off a word boundary so that the IP
	// header's words are aligned, as stack reads must be; below every
	// other slot.
	stkCopy = -254
	copyMax = 74 // Ethernet, IPv6 and a TCP header without options
	// copyVXLAN is what the uplink's programs copy: VXLAN over IPv6 up
	// to the inner IPv6 destination (70 + 14 + 40).
	copyVXLAN = 124
	protoTCP  = 6
)

// hdrNeed emits a check that n bytes of headers can be read at R2, jumping
// to "slow" if not. It may clobber R3 and R4.
type hdrNeed func(n int32) asm.Instructions

// tcNeed reads from the packet: R2 = data, R3 = data_end.
func tcNeed(n int32) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, asm.R6, skbData, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, skbDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, n),
		asm.JGT.Reg(asm.R4, asm.R3, "slow"),
	}
}

// filterNeed reads from the stack copy (copyHeaders), whose length is in
// R9.
func filterNeed(n int32) asm.Instructions { return stackNeed("slow")(n) }

// stackNeed is filterNeed jumping to miss.
func stackNeed(miss string) hdrNeed {
	return func(n int32) asm.Instructions {
		return asm.Instructions{
			asm.JLT.Imm(asm.R9, n, miss),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, stkCopy),
		}
	}
}

// copyHeaders copies the first min(len, max) bytes of the frame (R6 the
// __sk_buff) to the stack at stkCopy, their count in R9; a frame shorter
// than short bytes, or one that cannot be read, jumps to miss.
func copyHeaders(short, max int32, miss string) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R9, asm.R6, skbLen, asm.Word),
		asm.JLT.Imm(asm.R9, short, miss),
		asm.JLE.Imm(asm.R9, max, "copy"),
		asm.Mov.Imm(asm.R9, max),
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol("copy"),
		asm.Mov.Imm(asm.R2, 0),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, stkCopy),
		asm.Mov.Reg(asm.R4, asm.R9),
		asm.FnSkbLoadBytes.Call(),
		asm.JNE.Imm(asm.R0, 0, miss),
	}
}

// fastDecide emits the decision: it falls through with R7 the destination
// (a fastVal), R8 the family's counter index (0 IPv4, 1 IPv6) and R2
// readable for 34 (IPv4) or 54 (IPv6) bytes, or jumps to "slow". R6 is the
// __sk_buff.
func fastDecide(f *FastPath, need hdrNeed) asm.Instructions {
	var p asm.Instructions
	add := func(is ...asm.Instruction) { p = append(p, is...) }
	addAll := func(is asm.Instructions) { p = append(p, is...) }
	// checkSeg: R4 holds the IP and L4 header bytes of a segment; with
	// gso_size, against the MTU; jumps to ok or slow.
	checkSeg := func(ok string) asm.Instructions {
		return asm.Instructions{
			asm.LoadMem(asm.R5, asm.R6, skbGSOSize, asm.Word),
			asm.Add.Reg(asm.R4, asm.R5),
			asm.LoadMem(asm.R5, asm.R7, fvMTU, asm.Half),
			asm.JGT.Reg(asm.R4, asm.R5, "slow"),
			asm.Ja.Label(ok),
		}
	}

	addAll(need(14))
	addAll(byEtherType("tf4", "tf6", "slow"))

	// One block per family; sfx names its labels.
	family := func(sfx string, ipLen int32, ttl, proto, dst int16, words int16, m *ebpf.Map, idx int32) {
		addAll(labeled(need(14+ipLen), "tf"+sfx))
		if ipLen == 20 {
			add( // IPv4 without options
				asm.LoadMem(asm.R5, asm.R2, 14, asm.Byte),
				asm.JNE.Imm(asm.R5, 0x45, "slow"),
			)
		}
		add(
			asm.LoadMem(asm.R5, asm.R2, 14+ttl, asm.Byte),
			asm.JLE.Imm(asm.R5, 1, "slow"),
		)
		addAll(lookupDest(m, dst, words, stkKey, "slow"))
		add(asm.Mov.Imm(asm.R8, idx))
		addAll(need(14 + ipLen))
		add(
			// Not GSO: the frame against the MTU.
			asm.LoadMem(asm.R5, asm.R6, skbGSOSize, asm.Word),
			asm.JNE.Imm(asm.R5, 0, "gso"+sfx),
			asm.LoadMem(asm.R4, asm.R6, skbLen, asm.Word),
			asm.Sub.Imm(asm.R4, 14),
			asm.LoadMem(asm.R5, asm.R7, fvMTU, asm.Half),
			asm.JGT.Reg(asm.R4, asm.R5, "slow"),
			asm.Ja.Label("ok"+sfx),
			// GSO: a segment against the MTU, TCP or UDP only.
			asm.LoadMem(asm.R5, asm.R2, 14+proto, asm.Byte).WithSymbol("gso"+sfx),
			asm.JEq.Imm(asm.R5, protoUDP, "udp"+sfx),
			asm.JNE.Imm(asm.R5, protoTCP, "slow"),
		)
		addAll(need(14 + ipLen + 13))
		add(
			asm.LoadMem(asm.R4, asm.R2, int16(14+ipLen+12), asm.Byte),
			asm.RSh.Imm(asm.R4, 4),
			asm.LSh.Imm(asm.R4, 2),
			asm.Add.Imm(asm.R4, ipLen),
		)
		addAll(checkSeg("ok" + sfx))
		add(asm.Mov.Imm(asm.R4, ipLen+8).WithSymbol("udp" + sfx))
		addAll(checkSeg("ok" + sfx))
	}
	family("4", 20, 8, 9, 16, 1, f.hosts4, 0)
	family("6", 40, 7, 6, 24, 4, f.hosts6, 1)

	// Leave R2 readable for the family's headers.
	addAll(labeled(need(14+20), "ok4"))
	add(asm.Ja.Label("fast"))
	addAll(labeled(need(14+40), "ok6"))
	return p
}

// ingressFastProgram is the tc ingress program of an AF_PACKET pod port
// with the fast path: forward what fastDecide takes, drop the rest (the
// port's socket has it).
func ingressFastProgram(f *FastPath) asm.Instructions {
	p := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	p = append(p, fastDecide(f, tcNeed)...)
	p = append(p, tcForward(f)...)
	return append(p,
		asm.Mov.Imm(asm.R0, tcActShot).WithSymbol("slow"),
		asm.Return(),
	)
}

// tunnelIngressProgram is AttachTunnelIngress's program.
func tunnelIngressProgram(f *FastPath, vni uint32, mac [6]byte) asm.Instructions {
	p := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	// The tunnel key, of an IPv4 or an IPv6 tunnel.
	for i, flags := range []int32{0, tunInfoIPv6} {
		p = append(p,
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -64),
			asm.Mov.Imm(asm.R3, 28),
			asm.Mov.Imm(asm.R4, flags),
			asm.FnSkbGetTunnelKey.Call(),
		)
		if i == 0 {
			p = append(p, asm.JEq.Imm(asm.R0, 0, "key"))
		} else {
			p = append(p, asm.JNE.Imm(asm.R0, 0, "slow"))
		}
	}
	p = append(p,
		asm.LoadMem(asm.R5, asm.RFP, -64, asm.Word).WithSymbol("key"),
		asm.JNE.Imm32(asm.R5, int32(vni), "slow"),
	)
	p = append(p, tcNeed(14)...)
	p = append(p,
		asm.LoadMem(asm.R5, asm.R2, 0, asm.Word),
		asm.JNE.Imm32(asm.R5, int32(binary.LittleEndian.Uint32(mac[0:4])), "slow"),
		asm.LoadMem(asm.R5, asm.R2, 4, asm.Half),
		asm.JNE.Imm32(asm.R5, int32(binary.LittleEndian.Uint16(mac[4:6])), "slow"),
	)
	p = append(p, fastDecide(f, tcNeed)...)
	p = append(p, tcForward(f)...)
	return append(p,
		asm.Mov.Imm(asm.R0, tcActShot).WithSymbol("slow"),
		asm.Return(),
	)
}

// tcForward, at "fast", forwards the frame fastDecide took: TTL or hop
// limit, Ethernet addresses, counter, bpf_redirect out of the
// destination's host end. R2 points at the frame's headers (the packet or
// the stack copy); a write that fails jumps to "slow".
func tcForward(f *FastPath) asm.Instructions {
	var p asm.Instructions
	add := func(is ...asm.Instruction) { p = append(p, is...) }
	addAll := func(is asm.Instructions) { p = append(p, is...) }
	// The writes go through bpf_skb_store_bytes, not the packet pointers:
	// a direct write would make the verifier unclone every frame first,
	// the dropped ones included.
	add(
		// IPv4: TTL, protocol and checksum, rewritten on the stack and
		// stored back as one; IPv6: the hop limit.
		asm.JEq.Imm(asm.R8, 1, "hop6").WithSymbol("fast"),
		asm.LoadMem(asm.R4, asm.R2, 14+8, asm.Word), // TTL, protocol, checksum
		asm.StoreMem(asm.RFP, -8, asm.R4, asm.Word),
		asm.LoadMem(asm.R4, asm.RFP, -8, asm.Byte),
		asm.Sub.Imm(asm.R4, 1),
		asm.StoreMem(asm.RFP, -8, asm.R4, asm.Byte),
		// Checksum + 0x0100 (RFC 1624), folded.
		asm.LoadMem(asm.R4, asm.RFP, -6, asm.Half),
		asm.Add.Imm(asm.R4, 1),
		asm.Mov.Reg(asm.R5, asm.R4),
		asm.RSh.Imm(asm.R5, 16),
		asm.And.Imm(asm.R4, 0xffff),
		asm.Add.Reg(asm.R4, asm.R5),
		asm.StoreMem(asm.RFP, -6, asm.R4, asm.Half),
	)
	addAll(storeBytes(14+8, -8, 4))
	add(
		asm.Ja.Label("mac"),
		asm.LoadMem(asm.R4, asm.R2, 14+7, asm.Byte).WithSymbol("hop6"),
		asm.Sub.Imm(asm.R4, 1),
		asm.StoreMem(asm.RFP, -8, asm.R4, asm.Byte),
	)
	addAll(storeBytes(14+7, -8, 1))
	add(
		// Ethernet addresses: destination then source, 12 bytes.
		asm.LoadMem(asm.R4, asm.R7, fvDst, asm.Word).WithSymbol("mac"),
		asm.StoreMem(asm.RFP, -16, asm.R4, asm.Word),
		asm.LoadMem(asm.R4, asm.R7, fvDst+4, asm.Half),
		asm.StoreMem(asm.RFP, -12, asm.R4, asm.Half),
		asm.LoadMem(asm.R4, asm.R7, fvSrc, asm.Half),
		asm.StoreMem(asm.RFP, -10, asm.R4, asm.Half),
		asm.LoadMem(asm.R4, asm.R7, fvSrc+2, asm.Word),
		asm.StoreMem(asm.RFP, -8, asm.R4, asm.Word),
	)
	addAll(storeBytes(0, -16, 12))
	add(
		// Into a tunnel: the key for the collect_md device (struct
		// bpf_tunnel_key, 44 bytes, at fp-64).
		asm.LoadMem(asm.R5, asm.R7, fvFlags, asm.Byte),
		asm.And.Imm(asm.R5, fvTunnel),
		asm.JEq.Imm(asm.R5, 0, "count"),
		asm.LoadMem(asm.R4, asm.R7, fvVNI, asm.Word),
		asm.StoreMem(asm.RFP, -64, asm.R4, asm.Word),
	)
	for i := int16(0); i < 4; i++ {
		add(
			asm.LoadMem(asm.R4, asm.R7, fvRemote+4*i, asm.Word),
			asm.StoreMem(asm.RFP, -60+4*i, asm.R4, asm.Word),
			asm.LoadMem(asm.R4, asm.R7, fvLocal+4*i, asm.Word),
			asm.StoreMem(asm.RFP, -36+4*i, asm.R4, asm.Word),
		)
	}
	add(
		asm.StoreImm(asm.RFP, -44, 64<<8, asm.Word), // tos 0, ttl 64, ext 0
		asm.StoreImm(asm.RFP, -40, 0, asm.Word),     // label
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -64),
		asm.Mov.Imm(asm.R3, 44),
		asm.LoadMem(asm.R4, asm.R7, fvTunFlags, asm.Word),
		asm.FnSkbSetTunnelKey.Call(),
		asm.JNE.Imm(asm.R0, 0, "slow"),
	)
	add(
		// Count (the tc counters follow the XDP ones).
		asm.LoadMem(asm.R9, asm.R7, fvIfindex, asm.Word).WithSymbol("count"),
		asm.Add.Imm(asm.R8, 2),
		asm.StoreMem(asm.RFP, stkStat, asm.R8, asm.Word),
		mapPtr(asm.R1, f.stats),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, stkStat),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "send"),
		asm.LoadMem(asm.R4, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R4, 1),
		asm.StoreMem(asm.R0, 0, asm.R4, asm.DWord),

		// Out of the destination's host end, as the kernel's routing
		// would send it: the pod's veth receives it as usual (its XDP
		// program, GRO and counters included).
		asm.Mov.Reg(asm.R1, asm.R9).WithSymbol("send"),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRedirect.Call(),
		asm.Return(),
	)
	return p
}

// storeBytes emits bpf_skb_store_bytes(skb in R6, off, fp+stk, n, 0),
// jumping to "slow" if it fails.
func storeBytes(off, stk, n int32) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Imm(asm.R2, off),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, stk),
		asm.Mov.Imm(asm.R4, n),
		asm.Mov.Imm(asm.R5, 0),
		asm.FnSkbStoreBytes.Call(),
		asm.JNE.Imm(asm.R0, 0, "slow"),
	}
}

// socketFilterProgram refuses (returns 0 for) the frames the tc program
// forwards and passes the rest whole.
func socketFilterProgram(f *FastPath) asm.Instructions {
	var p asm.Instructions
	add := func(is ...asm.Instruction) { p = append(p, is...) }
	// Too short for any fast frame: take it.
	add(asm.Mov.Reg(asm.R6, asm.R1))
	p = append(p, copyHeaders(14+20, copyMax, "slow")...)
	p = append(p, fastDecide(f, filterNeed)...)
	add(
		asm.Mov.Imm(asm.R0, 0).WithSymbol("fast"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 0x7fffffff).WithSymbol("slow"),
		asm.Return(),
	)
	return p
}

// uplinkIngressProgram is the tc program (filter false) or the socket
// filter (filter true) of an AF_PACKET uplink.
func uplinkIngressProgram(st *steering, f *FastPath, filter bool) asm.Instructions {
	p := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	p = append(p, copyHeaders(14, copyVXLAN, "pass")...)
	if f != nil {
		// VXLAN for a fast-path pod, with the kernel's VXLAN device in
		// use: the kernel's (it decapsulates and merges, then the
		// device's tc program forwards).
		p = append(p, kernelVXLANDecide(st, f)...)
		kern := int32(tcActOK)
		if filter {
			kern = 0
		}
		p = append(p, asm.Mov.Imm(asm.R0, kern).WithSymbol("kern"), asm.Return())
		p = append(p, labeled(fastDecide(f, stackNeed("slow")), "nokern")...)
		if filter {
			p = append(p, asm.Mov.Imm(asm.R0, 0).WithSymbol("fast"), asm.Return())
		} else {
			p = append(p, tcForward(f)...)
		}
		// What the fast path leaves goes on to the steering.
		p = append(p, asm.Ja.Label("steer").WithSymbol("slow"))
	}
	p = append(p, steerDecide(st, stackNeed("pass"), skbPort4)...)
	take, pass := int32(tcActShot), int32(tcActOK)
	if filter {
		take, pass = 0x7fffffff, 0
	}
	return append(p,
		asm.Mov.Imm(asm.R0, take).WithSymbol("take"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, pass).WithSymbol("pass"),
		asm.Return(),
	)
}

// steerDecide, at "steer", is the uplink's steering decision, the XDP
// program's and the tc program's alike, on the headers need makes readable
// at R2 (R6 the context): it jumps to "take" for packets to a pod prefix
// and unfragmented UDP to the node's VTEP address and port, else to
// "pass". port4 reads the UDP destination port behind an IPv4 header of
// R5 bytes (20..60), whose end only the program type knows how to reach.
func steerDecide(st *steering, need hdrNeed, port4 func() asm.Instructions) asm.Instructions {
	var p asm.Instructions
	add := func(is ...asm.Instruction) { p = append(p, is...) }
	addAll := func(is asm.Instructions) { p = append(p, is...) }

	addAll(labeled(need(14), "steer"))
	addAll(byEtherType("st4", "st6", "pass"))

	// IPv4: a pod prefix? Key {32, daddr} at fp-8.
	addAll(labeled(need(14+20), "st4"))
	addAll(podPrefix(st.pfx4, 16, 32, -8))
	// VXLAN to the node?
	addAll(lookupCfg(st.cfg, -12))
	addAll(need(14 + 20))
	add(
		asm.LoadMem(asm.R5, asm.R7, cfgFlags, asm.Word),
		asm.And.Imm(asm.R5, asmHas4),
		asm.JEq.Imm(asm.R5, 0, "pass"),
	)
	addAll(udpToVTEP4("pass"))
	add(
		// Header length from IHL, 20..60 bytes.
		asm.LoadMem(asm.R5, asm.R2, 14, asm.Byte),
		asm.And.Imm(asm.R5, 0x0f),
		asm.LSh.Imm(asm.R5, 2),
		asm.JLT.Imm(asm.R5, 20, "pass"),
	)
	addAll(port4())
	add(
		asm.LoadMem(asm.R8, asm.R7, cfgPort, asm.Half),
		asm.JNE.Reg(asm.R5, asm.R8, "pass"),
		asm.Ja.Label("take"),
	)

	// IPv6: a pod prefix? Key {128, daddr} at fp-20.
	addAll(labeled(need(14+40), "st6"))
	addAll(podPrefix(st.pfx6, 24, 128, -20))
	// VXLAN to the node? UDP right after the fixed header.
	addAll(lookupCfg(st.cfg, -24))
	addAll(need(14 + 40 + 8))
	addAll(udpToVTEP6("pass"))
	add(asm.Ja.Label("take"))
	return p
}

// udpToVTEP6 jumps to miss unless the node has an IPv6 VTEP (R7 the config
// value) and the IPv6 packet (R2 at its Ethernet header, 62 bytes there)
// is UDP, right after the fixed header, to its address and VXLAN port.
func udpToVTEP6(miss string) asm.Instructions {
	p := asm.Instructions{
		asm.LoadMem(asm.R5, asm.R7, cfgFlags, asm.Word),
		asm.And.Imm(asm.R5, asmHas6),
		asm.JEq.Imm(asm.R5, 0, miss),
		asm.LoadMem(asm.R5, asm.R2, 14+6, asm.Byte),
		asm.JNE.Imm(asm.R5, protoUDP, miss),
	}
	for i := int16(0); i < 4; i++ {
		p = append(p,
			asm.LoadMem(asm.R5, asm.R2, 14+24+4*i, asm.Word),
			asm.LoadMem(asm.R8, asm.R7, cfgNode6+4*i, asm.Word),
			asm.JNE.Reg(asm.R5, asm.R8, miss),
		)
	}
	return append(p,
		asm.LoadMem(asm.R5, asm.R2, 14+40+2, asm.Half),
		asm.LoadMem(asm.R8, asm.R7, cfgPort, asm.Half),
		asm.JNE.Reg(asm.R5, asm.R8, miss),
	)
}

// skbPort4 is steerDecide's port4 for a __sk_buff (R6): the whole UDP
// header must be in the frame, as in XDP; the port is read with
// bpf_skb_load_bytes.
func skbPort4() asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R4, asm.R5),
		asm.Add.Imm(asm.R4, 14+8),
		asm.LoadMem(asm.R3, asm.R6, skbLen, asm.Word),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.Mov.Reg(asm.R2, asm.R5),
		asm.Add.Imm(asm.R2, 14+2),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -40),
		asm.Mov.Imm(asm.R4, 2),
		asm.FnSkbLoadBytes.Call(),
		asm.JNE.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R5, asm.RFP, -40, asm.Half),
	}
}

// kernelVXLANDecide, on the stack copy, jumps to "kern" for VXLAN the
// kernel's VXLAN device is to take (asmKernel set): over IPv4 without
// options or IPv6 without extension headers, to the node's VTEP address
// and port, with the I flag, the node's VNI, an inner frame for the
// node's VTEP MAC to a fast-path destination with TTL or hop limit above
// 1 that kernelFits. Everything else jumps to "nokern".
func kernelVXLANDecide(st *steering, f *FastPath) asm.Instructions {
	need := stackNeed("nokern")
	var p asm.Instructions
	add := func(is ...asm.Instruction) { p = append(p, is...) }
	addAll := func(is asm.Instructions) { p = append(p, is...) }
	addAll(lookupCfgOr(st.cfg, -12, "nokern"))
	add(
		asm.LoadMem(asm.R5, asm.R7, cfgFlags, asm.Word),
		asm.And.Imm(asm.R5, asmKernel),
		asm.JEq.Imm(asm.R5, 0, "nokern"),
	)
	addAll(need(14))
	addAll(byEtherType("kv4", "kv6", "nokern"))
	// inner emits the checks after outer headers of l bytes (Ethernet
	// to VXLAN), R7 the config value; sfx names its labels.
	inner := func(l int16, sfx string) {
		addAll(vxlanHeaderOK(l, "nokern"))
		add(
			asm.LoadMem(asm.R5, asm.R2, l+12, asm.Half),
			asm.JEq.Imm(asm.R5, leEthIPv6, "ki6"+sfx),
			asm.JNE.Imm(asm.R5, leEthIPv4, "nokern"),
		)
		// The inner TTL or hop limit (at ttl) and destination (at dst,
		// halves 16-bit words), R2 moved to the inner frame.
		dest := func(ttl int16, m *ebpf.Map, dst, halves int16) {
			add(
				asm.Add.Imm(asm.R2, int32(l)),
				asm.LoadMem(asm.R5, asm.R2, 14+ttl, asm.Byte),
				asm.JLE.Imm(asm.R5, 1, "nokern"),
			)
			addAll(lookupDestHalves(m, dst, halves, "nokern"))
			addAll(kernelFits(l))
		}
		addAll(need(int32(l) + 14 + 20))
		dest(8, f.hosts4, 16, 2)
		addAll(labeled(need(int32(l)+14+40), "ki6"+sfx))
		dest(7, f.hosts6, 24, 8)
	}

	// Over IPv4: IHL 5, unfragmented UDP to the node's address and port.
	addAll(labeled(need(14+20+8+8+14), "kv4"))
	add(
		asm.LoadMem(asm.R5, asm.R7, cfgFlags, asm.Word),
		asm.And.Imm(asm.R5, asmHas4),
		asm.JEq.Imm(asm.R5, 0, "nokern"),
		asm.LoadMem(asm.R5, asm.R2, 14, asm.Byte),
		asm.JNE.Imm(asm.R5, 0x45, "nokern"),
	)
	addAll(udpToVTEP4("nokern"))
	add(
		asm.LoadMem(asm.R5, asm.R2, 14+20+2, asm.Half),
		asm.LoadMem(asm.R8, asm.R7, cfgPort, asm.Half),
		asm.JNE.Reg(asm.R5, asm.R8, "nokern"),
	)
	inner(14+20+8+8, "o4")

	// Over IPv6: UDP right after the fixed header, to the node's address
	// and port.
	addAll(labeled(need(14+40+8+8+14), "kv6"))
	addAll(udpToVTEP6("nokern"))
	inner(14+40+8+8, "o6")
	return p
}

// kernelFits, R7 the inner frame's fast-path destination behind outer
// headers of l bytes (Ethernet to VXLAN), jumps to "kern" if the kernel's
// device and its tc program can deliver it: not to a destination behind a
// tunnel again, and, unless it is a GSO super-frame (whose segments the
// device's program checks), no bigger than the destination's MTU. The
// rest goes to "nokern", to the switch, which answers a packet too big
// with its ICMP error instead of the device's silent drop.
func kernelFits(l int16) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R5, asm.R7, fvFlags, asm.Byte),
		asm.And.Imm(asm.R5, fvTunnel),
		asm.JNE.Imm(asm.R5, 0, "nokern"),
		asm.LoadMem(asm.R5, asm.R6, skbGSOSize, asm.Word),
		asm.JNE.Imm(asm.R5, 0, "kern"),
		asm.LoadMem(asm.R4, asm.R6, skbLen, asm.Word),
		asm.Sub.Imm(asm.R4, int32(l)+14),
		asm.LoadMem(asm.R5, asm.R7, fvMTU, asm.Half),
		asm.JGT.Reg(asm.R4, asm.R5, "nokern"),
		asm.Ja.Label("kern"),
	}
}

// lookupDestHalves is lookupDest reading the address 16 bits at a time:
// in the stack copy an inner IP header sits 2 bytes off a word boundary
// (behind the outer headers and a 14-byte Ethernet header), where the
// verifier refuses word loads.
func lookupDestHalves(m *ebpf.Map, dst, halves int16, miss string) asm.Instructions {
	return lookupDestBy(m, dst, halves, asm.Half, stkKey, miss)
}

// podPrefix jumps to "take" if the IP destination at dst in the header (R2
// at the Ethernet header) is in the pod-prefix trie m: the key {bits,
// address} is built at fp+key.
func podPrefix(m *ebpf.Map, dst int16, bits int32, key int16) asm.Instructions {
	p := asm.Instructions{asm.StoreImm(asm.RFP, key, int64(bits), asm.Word)}
	for i := int16(0); i < int16(bits/32); i++ {
		p = append(p,
			asm.LoadMem(asm.R5, asm.R2, 14+dst+4*i, asm.Word),
			asm.StoreMem(asm.RFP, key+4+4*i, asm.R5, asm.Word),
		)
	}
	return append(p,
		mapPtr(asm.R1, m),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, int32(key)),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "take"),
	)
}
