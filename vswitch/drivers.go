package vswitch

import (
	"fmt"
	"log/slog"

	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/port/afpacket"
	"github.com/xvs-project/xvs/port/afxdp"
	memifport "github.com/xvs-project/xvs/port/memif"
	"github.com/xvs-project/xvs/spec"
)

// DefaultDrivers is the registry a switch opens ports with unless told
// otherwise (WithDrivers): AF_XDP for the XDP modes, AF_PACKET for
// af-packet, memif for memif, and for auto AF_XDP first, then AF_PACKET except on an
// uplink.
func DefaultDrivers() *port.Registry { return defaultDrivers(nil) }

// defaultDrivers is DefaultDrivers with log for the drivers that log on
// their own (memif's connection events).
func defaultDrivers(log *slog.Logger) *port.Registry {
	r := port.NewRegistry()
	r.Register(afxdp.Driver{}, spec.ModeXDPZC, spec.ModeXDPDrv, spec.ModeXDPSKB)
	r.Register(afpacket.Driver{}, spec.ModeAFPacket)
	r.Register(&memifport.Driver{Log: log}, spec.ModeMemif)
	r.SetAuto(
		port.Fallback{Mode: spec.ModeXDPDrv},
		port.Fallback{Mode: spec.ModeAFPacket, Refuse: func(pc spec.PortConfig, failed error) error {
			if pc.Kind != spec.PortUplink {
				return nil
			}
			// AF_PACKET would only see copies of what the host also
			// handles; on an uplink that means pod traffic handled twice.
			return fmt.Errorf("uplink %s needs XDP (set mode: af-packet to force the fallback): %w", pc.Name, failed)
		}},
	)
	return r
}
