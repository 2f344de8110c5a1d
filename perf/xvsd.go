package perf

import (
	"context"
	"os"
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

type xvsdFwd struct {
	path     string
	podMode  string
	fastPath bool
	flags    []string
	stop     func() error
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
