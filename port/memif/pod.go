package memif

import (
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/xvs-project/xvs/spec"
)

// PodSocketPrefix names a pod's memif sockets: memif i of a pod listens on
// the abstract socket "@xvs-memif<i>" inside the pod's network namespace,
// interface id 0 (DPDK's and libmemif's default), so an application needs
// only the socket name the CNI result reports.
const PodSocketPrefix = "@xvs-memif"

// Pod is what the CNI server knows of a pod that asks for memif ports.
type Pod struct {
	// HostIf is the host end of the pod's veth ("xvs1a2b3c"); the memif
	// ports are named after it.
	HostIf string
	// Netns is the pod's network namespace as the CNI runtime gives it
	// (CNI_NETNS: /var/run/netns/..., /proc/PID/ns/net).
	Netns string
}

// PodMemif is one memif port of a pod.
type PodMemif struct {
	// Addrs are the memif interface's own /32 and /128 from IPAM: the
	// pod's eth0 keeps its addresses (and the switch refuses the same
	// address on two ports); these are routed to the memif port while its
	// application is connected.
	Addrs []netip.Prefix
	// PeerMAC is the application's MAC if the pod says it; zero: learnt
	// from its first frame (it ARPs for the gateway, 169.254.1.1).
	PeerMAC  [6]byte
	Queues   int
	RingSize int
	Polling  bool
}

// PodPort is the port config for memif i of pod, to hand to the switch's
// AddPort (or the API's), and the socket path to report in the CNI
// result's interfaces[].socketPath. The port listens from inside the pod's
// namespace (see the package doc for why there and not a host path).
func PodPort(pod Pod, i int, m PodMemif) (pc spec.PortConfig, socketPath string, err error) {
	if pod.HostIf == "" {
		return spec.PortConfig{}, "", fmt.Errorf("memif pod: host interface: empty: %w", ErrConfig)
	}
	if pod.Netns == "" || !filepath.IsAbs(pod.Netns) {
		return spec.PortConfig{}, "", fmt.Errorf("memif pod: netns: %q: must be an absolute path: %w", pod.Netns, ErrConfig)
	}
	if i < 0 || i > 9 {
		return spec.PortConfig{}, "", fmt.Errorf("memif pod: index %d: must be 0..9: %w", i, ErrConfig)
	}
	sock := fmt.Sprintf("%s%d", PodSocketPrefix, i)
	pc = spec.PortConfig{
		Name: PodPortName(pod.HostIf, i), Kind: spec.PortPod, Mode: spec.ModeMemif,
		Addrs: m.Addrs, PeerMAC: m.PeerMAC,
		Memif: &spec.MemifConfig{Socket: sock, Netns: pod.Netns, Queues: m.Queues, RingSize: m.RingSize, Polling: m.Polling},
	}
	if err := Validate(pc.Memif); err != nil {
		return spec.PortConfig{}, "", err
	}
	return pc, sock, nil
}

// PodPortName is the switch's name for memif i of the pod whose veth's
// host end is hostIf: at most 15 bytes, like an interface name.
func PodPortName(hostIf string, i int) string {
	suffix := fmt.Sprintf("-m%d", i)
	if len(hostIf)+len(suffix) > 15 {
		hostIf = hostIf[:15-len(suffix)]
	}
	return hostIf + suffix
}
