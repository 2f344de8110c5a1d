package vswitch

import (
	"fmt"
	"net/netip"

	"github.com/xvs-project/xvs/dataplane"
	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/fib"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
)

// VXLAN, as Calico's VXLAN mode does it: every node is a VTEP with one
// address per underlay family, one MAC and one VNI; a route to another
// node's pod block names that node's VTEP address and MAC (fib.KindVXLAN).
//
// Encapsulation happens in place: a frame routed into a tunnel gets its
// inner Ethernet header rewritten (local VTEP MAC to remote VTEP MAC) and
// the outer Ethernet, IP, UDP and VXLAN headers written into the headroom
// in front of it, so nothing is copied. The outer header's next hop is the
// FIB's route to the remote VTEP, looked up once per FIB view (vtepCache),
// so the underlay can change (a gateway moves, a link goes) without
// touching the tunnels. Toward an uplink, the datagrams of one inner flow
// leave merged into UDP GSO super-frames at flush (encap.UDPGRO).
//
// Decapsulation happens on the uplinks: UDP to a VTEP address and the VXLAN
// port, with the node's VNI and, inside, a frame for the node's VTEP MAC,
// loses its outer headers (the frame's start moves forward) and the inner
// packet goes through the pipeline as if received on the tunnel, a port of
// its own (Worker.tun) whose replies (ICMP errors, echo replies) are
// routed back rather than sent out of it.
// With the fast path on, the uplink's XDP program decapsulates VXLAN over
// IPv4 for fast-path pods itself (xdpprog.Program.SetDecap), so the worker
// sees only the rest.

func (c *VXLANConfig) setDefaults() {
	if c.VNI == 0 {
		c.VNI = DefaultVNI
	}
	if c.Port == 0 {
		c.Port = encap.VXLANPort
	}
}

func (c *VXLANConfig) validate() error {
	if c.VNI > 1<<24-1 {
		return fmt.Errorf("%w: vxlan.vni: %d: must be 1..16777215", ErrConfig, c.VNI)
	}
	if c.MAC[0]&1 != 0 {
		return fmt.Errorf("%w: vxlan.mac: %s: a multicast address", ErrConfig, fmtMAC(c.MAC))
	}
	if c.VTEP4.IsValid() && (!c.VTEP4.Is4() || !encap.IsIPv4Forwardable(c.VTEP4.As4())) {
		return fmt.Errorf("%w: vxlan.vtep_v4: %s: not a unicast IPv4 address", ErrConfig, c.VTEP4)
	}
	if c.VTEP6.IsValid() && (!c.VTEP6.Is6() || c.VTEP6.Is4In6() || !encap.IsIPv6Forwardable(c.VTEP6.As16()) || c.VTEP6.Zone() != "") {
		return fmt.Errorf("%w: vxlan.vtep_v6: %s: not a global unicast IPv6 address", ErrConfig, c.VTEP6)
	}
	return nil
}

// vxlanUplinkLocked makes a new uplink a VTEP: what the configuration left
// unset (MAC, addresses) comes from the first uplink, the uplink's program
// steers VXLAN for the VTEP addresses to the switch, and every worker
// learns the resolved state.
func (s *Switch) vxlanUplinkLocked(ps *portState) error {
	c := s.cfg.VXLAN
	if c == nil || ps.Kind != spec.PortUplink || ps.primary != nil {
		return nil
	}
	vx := s.vx
	if !vx.On {
		vx = dataplane.VXLAN{On: true, VNI: c.VNI, Port: c.Port, MAC: c.MAC}
		if vx.MAC == ([6]byte{}) {
			vx.MAC = ps.MAC
		}
		v4, v6 := c.VTEP4, c.VTEP6
		for _, a := range ps.cfg.Addrs {
			switch {
			case !v4.IsValid() && a.Addr().Is4():
				v4 = a.Addr()
			case !v6.IsValid() && a.Addr().Is6() && !a.Addr().IsLinkLocalUnicast():
				v6 = a.Addr()
			}
		}
		if v4.IsValid() {
			vx.Has4, vx.Src4 = true, v4.As4()
		}
		if v6.IsValid() {
			vx.Has6, vx.Src6 = true, v6.As16()
		}
	}
	if st, ok := ps.Dev.(port.VTEPSteerer); ok {
		var v4, v6 netip.Addr
		if vx.Has4 {
			v4 = netip.AddrFrom4(vx.Src4)
		}
		if vx.Has6 {
			v6 = netip.AddrFrom16(vx.Src6)
		}
		if err := st.SetVTEP(vx.Port, v4, v6); err != nil {
			return fmt.Errorf("vxlan steering on %s: %w", ps.Name, err)
		}
		if s.fast != nil {
			// The uplink's fast path takes VXLAN over IPv4 for its pods
			// itself (decapsulated and redirected in XDP).
			if err := st.SetDecap(vx.VNI, vx.MAC); err != nil {
				return fmt.Errorf("vxlan fast path on %s: %w", ps.Name, err)
			}
		}
	}
	if s.fast != nil && s.ktun == nil {
		// The kernel's VXLAN device carries the tc fast path's tunnels.
		t, err := s.openTunnel(vx, ps.MTU, s.fast, s.log)
		if err != nil {
			s.log.Warn("no kernel VXLAN device: VXLAN stays with the workers", "err", err)
		} else {
			s.ktun = t
			s.ktunIndex.Store(int32(t.ifindex))
			s.ktunSrc.Store(&t.src)
		}
	}
	if st, ok := ps.Dev.(port.VTEPSteerer); ok && s.ktun != nil {
		if err := st.SetKernelVXLAN(true); err != nil {
			return fmt.Errorf("vxlan fast path on %s: %w", ps.Name, err)
		}
	}
	if s.vx.On {
		return nil
	}
	s.vx = vx
	s.onAllWorkers(func(w *dataplane.Worker) { w.SetVXLAN(vx) })
	return nil
}

// vxlanRouteLocked checks a valid VXLAN route against the node's VTEP
// and returns its next hop.
func (s *Switch) vxlanRouteLocked(r spec.Route) (fib.NextHop, error) {
	x := r.VXLAN
	switch {
	case s.cfg.VXLAN == nil:
		return fib.NextHop{}, fmt.Errorf("route %s: vxlan is off (the configuration has no vxlan: section): %w", r.Prefix, ErrRouteInvalid)
	case !s.vx.On:
		return fib.NextHop{}, fmt.Errorf("route %s: no uplink to be the VTEP yet: %w", r.Prefix, ErrRouteInvalid)
	case x.Remote.Is4() && !s.vx.Has4:
		return fib.NextHop{}, fmt.Errorf("route %s: vxlan remote %s: the node has no IPv4 VTEP address (give the uplink one or set vxlan.vtep_v4): %w", r.Prefix, x.Remote, ErrRouteInvalid)
	case x.Remote.Is6() && !s.vx.Has6:
		return fib.NextHop{}, fmt.Errorf("route %s: vxlan remote %s: the node has no IPv6 VTEP address (give the uplink one or set vxlan.vtep_v6): %w", r.Prefix, x.Remote, ErrRouteInvalid)
	}
	return fib.NextHop{Kind: fib.KindVXLAN, VNI: s.vx.VNI, Remote: x.Remote, DstMAC: x.MAC, SrcMAC: s.vx.MAC, Resolved: true}, nil
}
