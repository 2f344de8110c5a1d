package perf

import (
	"context"
	"errors"

	"github.com/xvs-project/xvs/perf/internal/xpnet"
	"github.com/xvs-project/xvs/perf/pktgen"
)

// Direct is no forwarder at all: the client pod's veth ends in the server
// pod, and the sender moves frames with io. The ring scenario uses it to
// compare the generator's I/O paths (our AF_XDP ring layer, asavie/xdp,
// AF_PACKET) on the same wire.
func Direct(io pktgen.IO) Forwarder { return &directFwd{io: io} }

type directFwd struct {
	io pktgen.IO
	pp *PodPair
}

func (d *directFwd) Name() string { return "tx " + string(d.io) }

func (d *directFwd) Start(ctx context.Context) (*PodPair, error) {
	if err := xpnet.Check(); err != nil {
		return nil, skipf("%v", err)
	}
	n := xpnet.New()
	c, err := n.NS("c")
	if err != nil {
		n.Close()
		return nil, err
	}
	s, err := n.NS("s")
	if err != nil {
		n.Close()
		return nil, err
	}
	cmac, smac, err := n.Veth(c, "eth0", s, "eth0")
	if err != nil {
		n.Close()
		return nil, err
	}
	pp := &PodPair{
		ClientNS: c, ServerNS: s, PodIf: "eth0", ClientMAC: cmac, ServerMAC: smac, GatewayMAC: smac,
		TxIO: d.io, close: n.Close,
	}
	pp.ClientV4, pp.ServerV4, pp.ClientV6, pp.ServerV6 = newPodAddrs()
	if d.io == pktgen.IOAsavie {
		// asavie/xdp never unmaps its rings, so a closed socket stays
		// bound until the process exits and the next one on the same
		// queue gets EBUSY. A fresh veth pair per run sidesteps it.
		pp.refresh = func() error {
			if err := xpnet.IP(c, "link", "del", "eth0"); err != nil {
				return err
			}
			cmac, smac, err := n.Veth(c, "eth0", s, "eth0")
			pp.ClientMAC, pp.ServerMAC, pp.GatewayMAC = cmac, smac, smac
			return err
		}
	}
	d.pp = pp
	return pp, nil
}

func (d *directFwd) Stop() error {
	if d.pp == nil {
		return errors.New("not started")
	}
	err := d.pp.Close()
	d.pp = nil
	return err
}
