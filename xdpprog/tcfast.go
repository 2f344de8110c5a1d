package xdpprog

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
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
// that refuses exactly those frames. Both programs are assembled from one
// decision (fastDecide), so they agree frame by frame.
//
// The decision is the XDP fast path's: IPv4 without options or IPv6, TTL or
// hop limit above 1, to a fast-path destination, no bigger than its MTU.
// For a GSO super-frame the size checked is one segment's: IP header, TCP
// header (or UDP's 8 bytes) and gso_size; other GSO types go to the switch.

// __sk_buff field offsets.
const (
	skbLen     = 0
	skbData    = 76
	skbDataEnd = 80
	skbGSOSize = 176
)

// tc verdicts.
const (
	tcActOK       = 0
	tcActShot     = 2
	tcActRedirect = 7
)

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
		f.filter.prog, f.filter.err = ebpf.NewProgram(&ebpf.ProgramSpec{
			Name: "xvs_fp_filter", Type: ebpf.SocketFilter, License: "GPL",
			Instructions: socketFilterProgram(f),
		})
		if f.filter.err != nil {
			f.filter.err = fmt.Errorf("load fast-path socket filter: %w", f.filter.err)
		}
	})
	return f.filter.prog, f.filter.err
}
