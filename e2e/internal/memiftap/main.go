// Command memiftap is the e2e tests' memif application for IPv6: a relay
// between a gomemif client (go.fd.io/govpp/extras, a memif xvs did not
// write) on a pod's memif socket and a TAP device in the pod's network
// namespace, so the pod's kernel answers ARP, NDP and ICMPv6 on the memif
// side and runs ping from it (DPDK's testpmd icmpecho answers only ARP and
// IPv4 echo).
//
// Run it inside the pod's namespace. It makes the TAP device with the
// given MAC, the memif side's addresses (no DAD) and a route per -route
// destination via the switch's gateway (169.254.1.1 or
// fe80::ecee:eeff:feee:eeee) on it, then relays frames both ways until the
// memif connection ends, and exits (status 3) then: the test restarts it,
// as an application reconnects.
//
// gomemif v0.1.0 reads the server's HELLO queue maximum as a count where
// libmemif and DPDK read the highest index: against a port offering one
// queue pair it asks for none. The pod's memif must offer two
// ({"queues": 2}); gomemif connects one.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	gomemif "go.fd.io/govpp/extras/gomemif/memif"
	"golang.org/x/sys/unix"
)

func main() {
	sock := flag.String("socket", "@xvs-memif0", "the pod's memif socket")
	tap := flag.String("tap", "mt0", "TAP device to make")
	mac := flag.String("mac", "02:fe:00:00:00:01", "the TAP device's MAC")
	addrs := flag.String("addr", "", "the memif side's addresses, comma separated prefixes")
	routes := flag.String("route", "", "destinations routed through the memif side, comma separated prefixes")
	flag.Parse()
	if err := run(*sock, *tap, *mac, *addrs, *routes); err != nil {
		fmt.Fprintln(os.Stderr, "memiftap:", err)
		os.Exit(1)
	}
}

func openTap(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("/dev/net/tun: %w", err)
	}
	var req [unix.IFNAMSIZ + 64]byte
	copy(req[:], name)
	*(*uint16)(unsafe.Pointer(&req[unix.IFNAMSIZ])) = unix.IFF_TAP | unix.IFF_NO_PI
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req[0]))); e != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", name, e)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun"), nil
}

func configure(name, mac, addrs, routes string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return fmt.Errorf("-mac %q: %w", mac, err)
	}
	if err := netlink.LinkSetHardwareAddr(l, hw); err != nil {
		return err
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return err
	}
	for _, s := range split(addrs) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("-addr %q: %w", s, err)
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}, Flags: unix.IFA_F_NODAD}
		if err := netlink.AddrAdd(l, a); err != nil {
			return fmt.Errorf("address %s: %w", p, err)
		}
	}
	for _, s := range split(routes) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("-route %q: %w", s, err)
		}
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is4() {
			r.Gw, r.Flags = net.ParseIP("169.254.1.1"), int(netlink.FLAG_ONLINK)
		} else {
			r.Gw = net.ParseIP("fe80::ecee:eeff:feee:eeee")
		}
		if err := netlink.RouteAdd(r); err != nil {
			return fmt.Errorf("route %s: %w", p, err)
		}
	}
	return nil
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func run(sock, tapName, mac, addrs, routes string) error {
	tap, err := openTap(tapName)
	if err != nil {
		return err
	}
	if err := configure(tapName, mac, addrs, routes); err != nil {
		return err
	}
	gs, err := gomemif.NewSocket("memiftap", sock)
	if err != nil {
		return fmt.Errorf("gomemif socket: %w", err)
	}
	up := make(chan struct{})
	gi, err := gs.NewInterface(&gomemif.Arguments{
		Id: 0, Name: tapName,
		MemoryConfig:  gomemif.MemoryConfig{NumQueuePairs: 1, Log2RingSize: 10, PacketBufferSize: 2048},
		ConnectedFunc: func(*gomemif.Interface) error { close(up); return nil },
		// Called before gomemif unmaps the region: exit while the relay
		// still reads and writes it safely.
		DisconnectedFunc: func(*gomemif.Interface) error {
			fmt.Println("memiftap: disconnected")
			os.Exit(3)
			return nil
		},
	})
	if err != nil {
		return fmt.Errorf("gomemif interface: %w", err)
	}
	var cerr error
	for range 100 {
		if cerr = gi.RequestConnection(); cerr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if cerr != nil {
		return cerr
	}
	errc := make(chan error, 16)
	go func() {
		for err := range errc {
			fmt.Fprintln(os.Stderr, "memiftap: gomemif:", err)
		}
	}()
	gs.StartPolling(errc)
	select {
	case <-up:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("no memif connection on %s", sock)
	}
	rxq, err := gi.GetRxQueue(0)
	if err != nil {
		return err
	}
	txq, err := gi.GetTxQueue(0)
	if err != nil {
		return err
	}
	fmt.Println("memiftap: connected on", sock)
	go func() { // TAP to memif
		buf := make([]byte, 2048)
		for {
			n, err := tap.Read(buf)
			if err != nil {
				fmt.Fprintln(os.Stderr, "memiftap: tap read:", err)
				os.Exit(1)
			}
			txq.WritePacket(buf[:n])
		}
	}()
	buf := make([]byte, 2048)
	for { // memif to TAP
		n, err := rxq.ReadPacket(buf)
		if err != nil {
			return fmt.Errorf("memif read: %w", err)
		}
		if n == 0 {
			time.Sleep(200 * time.Microsecond)
			continue
		}
		tap.Write(buf[:n])
	}
}
