package port

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// Link looks name up in the calling thread's network namespace, sets it
// up if it is down, and returns the link facts for Opened.
func Link(name string) (Opened, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return Opened{}, fmt.Errorf("interface %s: %w", name, err)
	}
	attrs := link.Attrs()
	op := Opened{MTU: attrs.MTU, Ifindex: attrs.Index}
	copy(op.MAC[:], attrs.HardwareAddr)
	if attrs.Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(link); err != nil {
			return Opened{}, fmt.Errorf("set %s up: %w", name, err)
		}
	}
	return op, nil
}
