package perf

import (
	"context"
	"fmt"
	"os"

	"github.com/xvs-project/xvs/lab"
)

// XVSD is xvsd forwarding between the pods, started from the binary at
// path. It is skipped, with the reason, when the binary is missing or does
// not forward.
func XVSD(path string) Forwarder { return &xvsdFwd{path: path} }

// XVSDWith is XVSD with the pods' port mode ("" or "af-packet": AF_PACKET
// ports with offloads, so the pods keep TSO and TCP crosses xvsd in GSO
// super-frames) and extra xvsd flags (for example "-idle-spin", "0s"); the
// forwarder's name says both.
func XVSDWith(path, podMode string, flags []string) Forwarder {
	return &xvsdFwd{path: path, podMode: podMode, flags: flags}
}

// XVSDFastPath is XVSD with its XDP fast path on (lab.Options.XDPFastPath:
// pod-to-pod frames forwarded in the pods' XDP programs, GRO on in the
// pods), and extra xvsd flags.
func XVSDFastPath(path string, flags []string) Forwarder {
	return &xvsdFwd{path: path, fastPath: true, flags: flags}
}

// XVSDAFPacketFastPath is XVSD with AF_PACKET pod ports (offloads on) and
// the fast path on: pod-to-pod frames, GSO super-frames included, are
// forwarded by the ports' tc ingress programs.
func XVSDAFPacketFastPath(path string, flags []string) Forwarder {
	return &xvsdFwd{path: path, podMode: "af-packet", fastPath: true, flags: flags}
}

// XVSDCrossNode is XVSD on two nodes, a pod on each, the lab's outside
// namespace routing between the nodes' uplinks (native routing; the
// client's xvsd sends out of its uplink, the server's takes the frames in
// through its uplink's steering program). podMode as for XVSDWith.
func XVSDCrossNode(path, podMode string, flags []string) Forwarder {
	return &xvsdFwd{path: path, podMode: podMode, flags: flags, nodes: 2}
}

// XVSDCrossNodeFastPath is XVSDCrossNode with the XDP fast path on: the
// receiving node's uplink program forwards frames for its pod itself.
func XVSDCrossNodeFastPath(path string, flags []string) Forwarder {
	return &xvsdFwd{path: path, fastPath: true, flags: flags, nodes: 2}
}

// XVSDCrossNodeTCFastPath is XVSDCrossNode with af-packet pod ports,
// af-packet uplinks (steered by tc) and the fast path on: the sending
// pod's tc program sends its frames, TSO super-frames whole, out of the
// uplink to the next hop the FIB gave (remote destinations in the fast
// path), and the receiving node's uplink tc program forwards them to its
// pod: the worker sees only what the fast path leaves.
func XVSDCrossNodeTCFastPath(path string, flags []string) Forwarder {
	return &xvsdFwd{path: path, podMode: "af-packet", uplinkMode: "af-packet", fastPath: true, flags: flags, nodes: 2}
}

// XVSDCrossNodeVXLANTCFastPath is XVSDCrossNodeVXLAN with af-packet pod
// ports and uplinks and the fast path on: the sending pod's tc program
// sends its frames into the kernel's VXLAN device under xvsd (a tunnel
// key, TSO super-frames whole), and the receiving node's uplink tc
// program hands the VXLAN to that device, which decapsulates and merges
// it for its own tc program to forward to the pod.
func XVSDCrossNodeVXLANTCFastPath(path string, flags []string) Forwarder {
	return &xvsdFwd{path: path, podMode: "af-packet", uplinkMode: "af-packet", fastPath: true, flags: flags, nodes: 2, encap: lab.EncapVXLAN}
}

// XVSDCrossNodeVXLANFastPath is XVSDCrossNodeVXLAN with the XDP fast path
// on: the receiving node's uplink program decapsulates VXLAN over IPv4 for
// its pod and forwards it in XDP.
func XVSDCrossNodeVXLANFastPath(path string, flags []string) Forwarder {
	return &xvsdFwd{path: path, fastPath: true, flags: flags, nodes: 2, encap: lab.EncapVXLAN}
}

// XVSDCrossNodeVXLAN is XVSDCrossNode in Calico's VXLAN mode
// (lab.Options.Encap "vxlan"): the outside routes only the nodes, and
// each xvsd tunnels the other node's pod blocks to its VTEP.
func XVSDCrossNodeVXLAN(path, podMode string, flags []string) Forwarder {
	return &xvsdFwd{path: path, podMode: podMode, flags: flags, nodes: 2, encap: lab.EncapVXLAN}
}

type xvsdFwd struct {
	path       string
	podMode    string
	uplinkMode string // lab.Options.UplinkMode
	fastPath   bool
	flags      []string
	nodes      int    // 1 (0) or 2
	encap      string // lab.Options.Encap, with two nodes
	stop       func() error
}

func (x *xvsdFwd) Name() string {
	n := "xvsd"
	if x.podMode != "" {
		n += "-" + x.podMode
	}
	switch {
	case x.fastPath && x.podMode == "af-packet":
		n += "-tc-fast-path" // the ports' tc programs forward
	case x.fastPath:
		n += "-xdp-fast-path"
	}
	for _, f := range x.flags {
		n += " " + f
	}
	return n
}

func (x *xvsdFwd) Start(ctx context.Context) (*PodPair, error) {
	if x.path == "" {
		return nil, skipf("no xvsd binary given")
	}
	if _, err := os.Stat(x.path); err != nil {
		return nil, skipf("xvsd binary: %v", err)
	}
	return startXVSD(ctx, x)
}

func (x *xvsdFwd) Stop() error {
	if x.stop == nil {
		return nil
	}
	err := x.stop()
	x.stop = nil
	return err
}

// KernelCrossNode is the kernel's routing on two nodes, a pod on each, in
// the same lab topology as XVSDCrossNode (Lab.KernelRouting on each node;
// the pods keep their offloads, as under Calico): the baseline of the
// cross-node scenario.
func KernelCrossNode() Forwarder { return &kernelLabFwd{} }

// KernelCrossNodeVXLAN is KernelCrossNode in Calico's VXLAN mode: the
// kernel's vxlan devices on both nodes, set up as Calico sets them up
// (Lab.KernelRouting with lab.Options.Encap "vxlan").
func KernelCrossNodeVXLAN() Forwarder { return &kernelLabFwd{encap: lab.EncapVXLAN} }

type kernelLabFwd struct {
	encap string
	stop  func() error
}

func (k *kernelLabFwd) Name() string { return "kernel" }

func (k *kernelLabFwd) Start(ctx context.Context) (*PodPair, error) {
	o := lab.Options{Nodes: 2, PodsPerNode: 1, StaticNeighbors: true, PodTxChecksum: true, Encap: k.encap, UplinkGRO: true}
	return startLab(ctx, o, func(l *lab.Lab) error {
		for _, n := range l.T.Nodes {
			if err := l.KernelRouting(n.Name); err != nil {
				return fmt.Errorf("kernel routing on %s: %w", n.Name, err)
			}
		}
		return nil
	}, &k.stop)
}

func (k *kernelLabFwd) Stop() error {
	if k.stop == nil {
		return nil
	}
	err := k.stop()
	k.stop = nil
	return err
}
