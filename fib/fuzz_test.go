package fib

import (
	"net/netip"
	"testing"
)

// FuzzFIB decodes data as a sequence of operations on one FIB and checks
// every lookup against the reference. Each operation is 7 bytes:
//
//	op   bits 0-1: 0 add, 1 delete, 2 lookup, 3 commit the pending batch
//	     bit 2: IPv6; bits 3-7: label (next hop)
//	len  prefix length (mod the family's width + 1)
//	a0..a4: address; IPv6 spreads these over its 16 bytes so that
//	     fuzzed prefixes collide and nest.
func FuzzFIB(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 2, 0, 1, 2, 3, 4, 0})
	f.Add([]byte{8, 8, 10, 0, 0, 0, 0, 16, 32, 10, 1, 2, 3, 0, 2, 0, 10, 1, 2, 3, 0, 9, 8, 10, 0, 0, 0, 0, 2, 0, 10, 1, 2, 3, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newChecker(t)
		adds := map[netip.Prefix]uint32{}
		var dels []netip.Prefix
		commit := func() {
			c.apply(0, adds, dels)
			adds, dels = map[netip.Prefix]uint32{}, nil
		}
		for ; len(data) >= 7; data = data[7:] {
			op, v6, label := data[0]&3, data[0]&4 != 0, uint32(data[0]>>3)+1
			var a netip.Addr
			if v6 {
				var b [16]byte
				b[0], b[1], b[7], b[8], b[15] = data[2], data[3], data[4], data[5], data[6]
				a = netip.AddrFrom16(b)
			} else {
				a = netip.AddrFrom4([4]byte(data[2:6]))
			}
			p, _ := a.Prefix(int(data[1]) % (a.BitLen() + 1))
			switch op {
			case 0:
				adds[p] = label
			case 1:
				// Delete only what exists after the batch's deletes, as
				// Apply requires; deletes apply before adds.
				if _, ok := c.table(0)[p]; ok && !contains(dels, p) {
					dels = append(dels, p)
				}
			case 2:
				commit()
				c.lookups(0, []netip.Addr{a, p.Addr(), lastAddr(p)})
			case 3:
				commit()
				c.full(0)
			}
		}
		commit()
		c.full(0)
	})
}

// lastAddr is the highest address in p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	n := p.Bits()
	for i := range b {
		switch {
		case n >= 8:
			n -= 8
		case n > 0:
			b[i] |= 0xff >> n
			n = 0
		default:
			b[i] = 0xff
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
