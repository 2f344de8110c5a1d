package xdpprog

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// UplinkIngress is the steering of an uplink the switch drives with
// AF_PACKET instead of AF_XDP. XDP on a veth takes the peer's TSO and GSO
// away, so everything the network sends arrives segment by segment; an
// AF_PACKET uplink with this program keeps them: TCP comes in as the
// network's (or the kernel's GRO's) super-frames.
//
// Two programs read the same maps as the XDP uplink program (pod prefixes,
// the VXLAN port and VTEP addresses):
//   - a tc (TCX) ingress program: with a FastPath it first forwards frames
//     for the node's pods itself (the decision and rewrite of the AF_PACKET
//     pods' tc fast path, with bpf_redirect, super-frames whole); of the
//     rest it drops what the switch takes (the socket's tap has seen it)
//     and leaves everything else to the host;
//   - a socket filter (Filter, for the port's socket): it passes exactly
//     the frames the tc program drops, so the switch sees neither the
//     host's traffic nor what the fast path forwarded.
//
// Both are assembled from the same decisions (fastDecide, steerDecide) on
// a copy of the headers, so they agree frame by frame. SetDecap is
// recorded for the maps' sake, but the tc program does not decapsulate:
// VXLAN goes to the switch.
type UplinkIngress struct {
	st     *steering
	prog   *ebpf.Program // tc ingress
	filter *ebpf.Program // socket filter
	lnk    link.Link
}

// NewUplinkIngress creates the maps and loads both programs (Options:
// MaxPrefixes, VXLANPort, FastPath).
func NewUplinkIngress(opts Options) (u *UplinkIngress, err error) {
	if opts.MaxPrefixes == 0 {
		opts.MaxPrefixes = 16384
	}
	if opts.VXLANPort == 0 {
		opts.VXLANPort = DefaultVXLANPort
	}
	u = &UplinkIngress{}
	defer func() {
		if err != nil {
			u.Close()
		}
	}()
	if u.st, err = newSteering(opts); err != nil {
		return nil, err
	}
	if u.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "xvs_uplink_tc", Type: ebpf.SchedCLS, License: "GPL",
		Instructions: uplinkIngressProgram(u.st, opts.FastPath, false),
	}); err != nil {
		return nil, fmt.Errorf("load uplink tc program: %w", err)
	}
	if u.filter, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "xvs_uplink_flt", Type: ebpf.SocketFilter, License: "GPL",
		Instructions: uplinkIngressProgram(u.st, opts.FastPath, true),
	}); err != nil {
		return nil, fmt.Errorf("load uplink socket filter: %w", err)
	}
	return u, nil
}

// Filter is the socket filter the port's AF_PACKET socket must carry
// (SO_ATTACH_BPF) before the tc program is attached.
func (u *UplinkIngress) Filter() *ebpf.Program { return u.filter }

// Prog is the tc program (for tests).
func (u *UplinkIngress) Prog() *ebpf.Program { return u.prog }

// Attach attaches the tc program to ifindex's ingress (in the calling
// thread's network namespace) through a BPF link, which goes away with the
// process.
func (u *UplinkIngress) Attach(ifindex int) error {
	if u.lnk != nil {
		return errors.New("uplink tc program already attached")
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: u.prog, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		return fmt.Errorf("attach uplink tc program to ifindex %d: %w", ifindex, err)
	}
	u.lnk = l
	return nil
}

// Close detaches the tc program and releases the programs and maps.
func (u *UplinkIngress) Close() error {
	if u == nil {
		return nil
	}
	var errs []error
	if u.lnk != nil {
		errs = append(errs, u.lnk.Close())
		u.lnk = nil
	}
	for _, p := range []*ebpf.Program{u.prog, u.filter} {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	u.prog, u.filter = nil, nil
	errs = append(errs, u.st.Close())
	return errors.Join(errs...)
}

// AddPrefix steers packets to pfx to the switch.
func (u *UplinkIngress) AddPrefix(pfx netip.Prefix) error { return u.st.AddPrefix(pfx) }

// RemovePrefix stops steering pfx.
func (u *UplinkIngress) RemovePrefix(pfx netip.Prefix) error {
	return u.st.RemovePrefix(pfx)
}

// SetVTEP sets the VXLAN port and node addresses steered to the switch.
func (u *UplinkIngress) SetVTEP(port uint16, node4, node6 netip.Addr) error {
	return u.st.SetVTEP(port, node4, node6)
}

// SetDecap records the node's VNI and VTEP MAC; the tc program leaves
// VXLAN to the switch, which decapsulates it.
func (u *UplinkIngress) SetDecap(vni uint32, mac [6]byte) error { return u.st.SetDecap(vni, mac) }

// SetKernelVXLAN says whether VXLAN for a fast-path pod goes to the
// kernel's VXLAN device (xdpprog.Program.SetKernelVXLAN; here over IPv4
// and IPv6) rather than to the switch.
func (u *UplinkIngress) SetKernelVXLAN(on bool) error { return u.st.SetKernelVXLAN(on) }

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
		asm.And.Imm(asm.R5, cfgHas4),
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
		asm.And.Imm(asm.R5, cfgHas6),
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
// kernel's VXLAN device is to take (cfgKernel set): over IPv4 without
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
		asm.And.Imm(asm.R5, cfgKernel),
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
		asm.And.Imm(asm.R5, cfgHas4),
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
