package perf

import (
	"context"
	"os"
)

// XVSD is xvsd forwarding between the pods, started from the binary at
// path. It is skipped, with the reason, when the binary is missing or does
// not forward.
func XVSD(path string) Forwarder { return &xvsdFwd{path: path} }

// XVSDAFPacket is XVSD with the pods on AF_PACKET ports with offloads
// (lab.Options.PodMode "af-packet"): the pods keep TSO and checksum
// offload, and TCP crosses xvsd in GSO super-frames.
func XVSDAFPacket(path string) Forwarder { return &xvsdFwd{path: path, podMode: "af-packet"} }

type xvsdFwd struct {
	path    string
	podMode string
	stop    func() error
}

func (x *xvsdFwd) Name() string {
	if x.podMode != "" {
		return "xvsd-" + x.podMode
	}
	return "xvsd"
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
