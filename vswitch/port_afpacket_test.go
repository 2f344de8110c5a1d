package vswitch

import (
	"testing"
)

func (l *xrLab) openAFPacket(t *testing.T) *afPacketPort {
	t.Helper()
	var p *afPacketPort
	err := l.sw.Do(func() error {
		var err error
		p, err = openAFPacketPort(l.swIf, l.umem, AFPacketPortOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestAFPacketPortRxTx(t *testing.T) {
	l := newXRLab(t)
	p := l.openAFPacket(t)
	if p.Mode() != ModeAFPacket {
		t.Errorf("mode %s", p.Mode())
	}
	testPortRxTx(t, l, p)
}

func TestAFPacketPortAllocs(t *testing.T) {
	l := newXRLab(t)
	p := l.openAFPacket(t)
	pkts := make([]Packet, 64)
	out := make([]Packet, 1)
	allocs := testing.AllocsPerRun(200, func() {
		for _, pk := range pkts[:p.Receive(pkts)] {
			l.umem.Free(pk.Addr)
		}
		if a, ok := l.umem.Alloc(); ok {
			copy(l.umem.Frame(a)[Headroom:], xrFrame(l.peerMAC, l.swMAC, 1))
			out[0] = Packet{Addr: a + Headroom, Len: 64}
			if p.Transmit(out) == 0 {
				l.umem.Free(a)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("Receive/Transmit allocate %v times per call", allocs)
	}
}
