package vswitch

import "github.com/xvs-project/xvs/spec"

// The port kinds under their old names, for the forwarding code that
// tests them per packet. They go when the workers move to their own
// package.
const (
	PortPod    = spec.PortPod
	PortUplink = spec.PortUplink
	PortHost   = spec.PortHost
)
