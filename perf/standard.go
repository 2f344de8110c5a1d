package perf

import (
	"time"

	"github.com/xvs-project/xvs/perf/pktgen"
)

// Set is a named list of scenarios the runner knows.
type Set string

const (
	// Quick runs in under 2 minutes on a 2-core machine: a few points per
	// forwarder, 2 rounds.
	Quick Set = "quick"
	// Full runs in under 15 minutes on a 2-core machine: the frame-size
	// sweep for both families, 1 and 1,000 flows, latency, iperf3 with 1
	// and 4 streams, 3 rounds.
	Full Set = "full"
)

// PodToPodSizes is the frame-size sweep (bytes without FCS); IPv6 raises
// 64 to its 78-byte minimum.
var PodToPodSizes = []int{64, 256, 1024, 1500}

// PodToPod is the "pod to pod on one node" scenario: the kernel's routing
// (Calico's default path) first, as the baseline, then xvsd and any other
// forwarders given.
func PodToPod(set Set, fwds []Forwarder, iperf bool) Scenario {
	s := Scenario{Name: "pod-to-pod/" + string(set), Forwarders: fwds, Probe: true}
	switch set {
	case Full:
		s.Rounds = 3
		d := 1500 * time.Millisecond
		for _, flows := range []int{1, 1000} {
			for _, fam := range []int{4, 6} {
				for _, size := range PodToPodSizes {
					s.Loads = append(s.Loads, Pktgen(fam, size, flows, d))
				}
			}
		}
		s.Loads = append(s.Loads, PktgenRate(4, 64, 20000, 2*time.Second), PktgenRate(6, 78, 20000, 2*time.Second))
		if iperf {
			for _, fam := range []int{4, 6} {
				for _, st := range []int{1, 4} {
					s.Loads = append(s.Loads, Iperf3(fam, st, 4*time.Second))
				}
			}
		}
	default:
		s.Rounds = 2
		d := time.Second
		s.Loads = []Load{
			Pktgen(4, 64, 1, d), Pktgen(4, 1500, 1, d),
			Pktgen(6, 64, 1, d), Pktgen(6, 1500, 1, d),
			Pktgen(4, 64, 1000, d),
			PktgenRate(4, 64, 20000, d),
		}
		if iperf {
			s.Loads = append(s.Loads, Iperf3(4, 1, 2*time.Second), Iperf3(6, 1, 2*time.Second))
		}
	}
	return s
}

// TCP is iperf3 between the pods of one node, through each forwarder:
// the kernel first, as the baseline, then xvsd with AF_XDP pod ports (the
// pods' TSO off, as XDP on a veth forces), xvsd with AF_PACKET pod ports
// carrying offloads (TSO on, GSO super-frames through the switch), the
// same with the tc fast path (super-frames forwarded whole in the ports'
// tc programs), and xvsd's XDP fast path.
func TCP(set Set, fwds []Forwarder) Scenario {
	s := Scenario{Name: "tcp/" + string(set), Forwarders: fwds, Rounds: 2}
	d := time.Second
	streams := []int{1}
	if set == Full {
		s.Rounds, d, streams = 3, 4*time.Second, []int{1, 4}
	}
	for _, fam := range []int{4, 6} {
		for _, st := range streams {
			s.Loads = append(s.Loads, Iperf3(fam, st, d))
		}
	}
	return s
}

// CrossNode is pod to pod across two nodes with native routing: a pod on
// each node, the lab's outside namespace routing between the nodes'
// uplinks as the network would. The kernel's routing on both nodes first,
// as the baseline, then xvsd on both (with AF_XDP pod ports, and with
// AF_PACKET ones for TCP's super-frames, which xvsd cuts for the uplink).
// With iperf, iperf3 with one stream per family too.
func CrossNode(set Set, fwds []Forwarder, iperf bool) Scenario {
	// Two rounds in the full set too: with the VXLAN scenario beside it,
	// make bench must stay within 15 minutes.
	s := Scenario{Name: "cross-node/" + string(set), Forwarders: fwds, Probe: true, Rounds: 2}
	d := 1500 * time.Millisecond
	if set != Full {
		d = time.Second
	}
	s.Loads = []Load{Pktgen(4, 64, 1, d), Pktgen(6, 64, 1, d)}
	if iperf {
		s.Loads = append(s.Loads, Iperf3(4, 1, 2*time.Second), Iperf3(6, 1, 2*time.Second))
	}
	return s
}

// CrossNodeVXLAN is CrossNode in Calico's VXLAN mode: the outside routes
// only the nodes, and pod traffic crosses it encapsulated, by the kernel's
// vxlan devices (the baseline) or by xvsd.
func CrossNodeVXLAN(set Set, fwds []Forwarder, iperf bool) Scenario {
	s := CrossNode(set, fwds, iperf)
	s.Name = "cross-node-vxlan/" + string(set)
	return s
}

// Ring compares the generator's send paths on one veth pair, no forwarder:
// the dataplane's AF_XDP ring layer (xsk) first, then asavie/xdp,
// the library it replaced, then AF_PACKET sendmmsg. The figure is the
// sender's rate; the loss column says how much of it the sink missed.
func Ring(set Set) Scenario {
	s := Scenario{
		Name:       "ring/" + string(set),
		Forwarders: []Forwarder{Direct(pktgen.IOAFXDP), Direct(pktgen.IOAsavie), Direct(pktgen.IOAFPacket)},
		Rounds:     2,
	}
	d := time.Second
	sizes := []int{64, 1500}
	if set == Full {
		s.Rounds, d, sizes = 3, 1500*time.Millisecond, []int{64, 512, 1500}
	}
	for _, size := range sizes {
		s.Loads = append(s.Loads, PktgenTx(4, size, d))
	}
	return s
}
