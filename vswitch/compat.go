package vswitch

import (
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
)

// The port kinds and the port package's frame types under the names the
// forwarding code (worker, pipeline, large, vxlan) has used since before
// they had packages of their own. They go when the workers move to the
// dataplane package.
const (
	PortPod    = spec.PortPod
	PortUplink = spec.PortUplink
	PortHost   = spec.PortHost
	Headroom   = port.Headroom
)

type (
	Packet     = port.Packet
	LargeFrame = port.LargeFrame
	Port       = port.Port
	LargePort  = port.LargePort
)
