package vswitch

import (
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/xdpprog"
)

// defaultOpener opens a port on a real interface: AF_XDP in the mode asked
// (spec.ModeAuto tries zero-copy, native, then generic XDP), and, for spec.ModeAuto
// only, AF_PACKET when no XDP mode can be had. The reason for a fallback is
// kept in the port's status.
func defaultOpener(req OpenRequest) (OpenedPort, error) {
	pc, umem, log := req.Config, req.Umem, req.Log
	link, err := netlink.LinkByName(pc.Name)
	if err != nil {
		return OpenedPort{}, fmt.Errorf("interface %s: %w", pc.Name, err)
	}
	attrs := link.Attrs()
	op := OpenedPort{MTU: attrs.MTU, Ifindex: attrs.Index}
	copy(op.MAC[:], attrs.HardwareAddr)
	if attrs.Flags&(1<<0) == 0 { // net.FlagUp
		if err := netlink.LinkSetUp(link); err != nil {
			return OpenedPort{}, fmt.Errorf("set %s up: %w", pc.Name, err)
		}
	}
	if pc.Mode != spec.ModeAFPacket {
		// Every port sends TCP's super-frames whole (from af-packet pods, or
		// merged by GRO): the uplink for the NIC (or the kernel) to cut, a
		// pod's veth to the pod's stack in one piece.
		p, err := openXDPPort(pc.Name, pc.Queue, pc.Kind, pc.Mode, umem, XDPPortOptions{Program: req.Program, FastPath: req.FastPath, LargeTx: true})
		if err == nil {
			if err := p.LargeTxErr(); err != nil {
				op.Reason = fmt.Sprintf("super-frames cut in software (%v)", err)
				log.Warn("no GSO sender on the port", "err", err)
			}
			op.Port = p
			return op, nil
		}
		if pc.Mode != spec.ModeAuto {
			return OpenedPort{}, err
		}
		if pc.Kind == spec.PortUplink {
			// AF_PACKET would only see copies of what the host also
			// handles; on an uplink that means pod traffic handled twice.
			return OpenedPort{}, fmt.Errorf("uplink %s needs XDP (set mode: af-packet to force the fallback): %w", pc.Name, err)
		}
		op.Reason = fmt.Sprintf("xdp unavailable (%v); fell back to af-packet", err)
		log.Warn("AF_XDP unavailable, falling back to AF_PACKET", "err", err)
	}
	var fast *xdpprog.FastPath
	if pc.Kind == spec.PortPod || pc.Kind == spec.PortUplink {
		fast = req.FastPath
	}
	up := pc.Kind == spec.PortUplink
	p, err := openAFPacketPort(pc.Name, umem, AFPacketPortOptions{DropIngress: !up, FastPath: fast, Steer: up})
	if err != nil {
		return OpenedPort{}, err
	}
	if err := p.SteerErr(); err != nil {
		if op.Reason != "" {
			op.Reason += "; "
		}
		op.Reason += fmt.Sprintf("unsteered: the switch sees copies of all the host's frames (%v)", err)
		log.Warn("uplink tc steering unavailable", "err", err)
	}
	if err := p.FastPathErr(); err != nil {
		if op.Reason != "" {
			op.Reason += "; "
		}
		op.Reason += fmt.Sprintf("no tc fast path (%v)", err)
		log.Warn("tc fast path unavailable", "err", err)
	}
	if err := p.DropIngressErr(); err != nil {
		// It still forwards; the node's kernel just sees the frames too.
		if op.Reason != "" {
			op.Reason += "; "
		}
		op.Reason += fmt.Sprintf("kernel also sees this port's frames (%v)", err)
		log.Warn("tc ingress drop unavailable", "err", err)
	}
	op.Port = p
	return op, nil
}
