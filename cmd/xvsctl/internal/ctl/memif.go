package ctl

import (
	"fmt"
	"strconv"

	"github.com/xvs-project/xvs/api/xvspb"
)

// parseMemifKey sets one memif-KEY=VALUE of port add; a memif key alone
// implies mode=memif.
func parseMemifKey(pc *xvspb.PortConfig, k, v string) error {
	if pc.Memif == nil {
		pc.Memif = &xvspb.MemifConfig{}
	}
	if pc.Mode == "" {
		pc.Mode = "memif"
	}
	m := pc.Memif
	num := func() (uint32, error) {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return 0, usagef("port add: %s=%q: not a number", k, v)
		}
		return uint32(n), nil
	}
	var err error
	switch k {
	case "memif-socket":
		m.Socket = v
	case "memif-netns":
		m.Netns = v
	case "memif-id":
		m.Id, err = num()
	case "memif-queues":
		m.Queues, err = num()
	case "memif-ring":
		m.RingSize, err = num()
	case "memif-polling":
		b, perr := strconv.ParseBool(v)
		if perr != nil {
			return usagef("port add: %s=%q: not true or false", k, v)
		}
		m.Polling = b
	default:
		return usagef("port add: unknown key %q (memif-socket, memif-netns, memif-id, memif-queues, memif-ring, memif-polling)", k)
	}
	return err
}

// memifNote is the line `show ports` prints under the table for a memif
// port: its socket, rings and peer.
func memifNote(p *xvspb.Port) string {
	m := p.GetMemif()
	if m == nil {
		return ""
	}
	irq := "interrupt"
	if m.Polling {
		irq = "polling"
	}
	s := fmt.Sprintf("%s: memif %s on %s id %d, %s, ", p.Name, m.Role, m.Socket, m.Id, irq)
	if !m.Connected {
		s += "no peer"
		if m.LastReason != "" {
			s += " (last: " + m.LastReason + ")"
		}
	} else {
		s += fmt.Sprintf("peer %s", m.PeerName)
		if m.PeerIf != "" {
			s += "/" + m.PeerIf
		}
		s += fmt.Sprintf(", rings %d rx %d tx x %d slots, buffers %d B", m.RxQueues, m.TxQueues, m.RingSize, m.BufferSize)
	}
	s += fmt.Sprintf(", connects %d", m.Connects)
	if m.RxDrops > 0 {
		s += fmt.Sprintf(", rx drops %d", m.RxDrops)
	}
	return s
}
