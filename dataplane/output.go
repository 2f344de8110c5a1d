package dataplane

import (
	"github.com/xvs-project/xvs/encap"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
)

// The end of the path: frames queued per output port during a vector
// (emit, emitRouted), and handed to the ports at flush, merged into
// super-frames where the port takes them.

// emit queues p, ready to leave, on out: in this worker's batch for out, or
// copied into the handoff to out's worker.
func (w *Worker) emit(p *port.Packet, out *Port) {
	if out.Worker != w.id {
		// Another worker's port: copy the frame over and free ours.
		if w.outbox[out.Worker].push(w.umem.Bytes(p.Addr, int(p.Len)), out.ID) {
			w.outDirty[out.Worker] = true
		} else {
			w.cnt.drop(DropRingFull)
		}
		w.umem.Free(p.Addr)
		return
	}
	q := w.out[out.ID]
	if len(q) == 0 {
		w.touched = append(w.touched, out.ID)
	}
	p.Port = out.ID
	w.out[out.ID] = append(q, *p)
}

// emitRouted queues the routed frame p as decision r says: encapsulated
// first for a tunnel (actTunnel), else as it is (its Ethernet header
// rewritten by act).
func (w *Worker) emitRouted(p *port.Packet, r *decision) {
	if r.act == actTunnel {
		w.encapVXLAN(p, r)
		return
	}
	w.emit(p, r.out)
}

// drop frees p and counts why.
func (w *Worker) drop(p *port.Packet, d Drop) {
	w.umem.Free(p.Addr)
	w.cnt.drop(d)
}

// flush hands every output batch to its port, and publishes handoffs.
func (w *Worker) flush() {
	for j, d := range w.outDirty {
		if d {
			w.outbox[j].publish()
			w.outDirty[j] = false
			if p := w.peers[j]; p.sleeping.Load() {
				p.wake()
			}
		}
	}
	for _, id := range w.touched {
		batch := w.out[id]
		ps := w.ports[id]
		if ps == nil {
			for i := range batch {
				w.umem.Free(batch[i].Addr)
				w.cnt.drop(DropPortDown)
			}
			w.out[id] = batch[:0]
			continue
		}
		if ps.Large != nil && len(batch) > 1 {
			w.transmitMerged(ps, batch)
		} else {
			w.transmit(ps, batch)
		}
		ps.Dev.Flush()
		w.out[id] = batch[:0]
	}
	w.touched = w.touched[:0]
}

// transmit hands batch to ps's port, counts it and frees what the port
// did not take.
func (w *Worker) transmit(ps *Port, batch []port.Packet) {
	if len(batch) == 0 {
		return
	}
	sent := ps.Dev.Transmit(batch)
	var bytes uint64
	for i := 0; i < sent; i++ {
		bytes += uint64(batch[i].Len)
	}
	for i := sent; i < len(batch); i++ {
		w.umem.Free(batch[i].Addr)
		w.cnt.drop(DropRingFull)
	}
	ps.Stats.TxPackets.Add(uint64(sent))
	ps.Stats.TxBytes.Add(bytes)
	if d := len(batch) - sent; d > 0 {
		ps.Stats.TxDrops.Add(uint64(d))
	}
}

// transmitMerged sends batch out of a port that takes GSO super-frames,
// merging each run of consecutive segments of one TCP flow into one
// (encap.GRO), and, toward an uplink, each run of one UDP flow's
// datagrams of one size, the VXLAN the switch sends toward one remote
// VTEP among them, into one UDP GSO super-frame (encap.UDPGRO), and
// sending it whole; the rest goes as it is, in order.
func (w *Worker) transmitMerged(ps *Port, batch []port.Packet) {
	from := 0 // the first frame not yet sent
	for i := 0; i < len(batch); {
		if i+1 == len(batch) {
			break
		}
		// The cheap look first: only a frame the next one may continue is
		// worth Start's copy and checksum.
		a := w.umem.Bytes(batch[i].Addr, int(batch[i].Len))
		b := w.umem.Bytes(batch[i+1].Addr, int(batch[i+1].Len))
		udp := false
		switch {
		case encap.GROPair(a, b) && w.gro.Start(a):
		case ps.Kind == spec.PortUplink && encap.UDPGROPair(a, b) && w.ugro.Start(a):
			// Toward the network only: the interface cuts the
			// super-frame before the wire. A pod's stack would take it
			// whole into its packet sockets and XDP programs.
			udp = true
		default:
			i++
			continue
		}
		j := i + 1
		for j < len(batch) {
			d := w.umem.Bytes(batch[j].Addr, int(batch[j].Len))
			if udp && !w.ugro.Add(d) || !udp && !w.gro.Add(d) {
				break
			}
			j++
		}
		if j-i < 2 {
			i = j
			continue
		}
		// What came before goes first, out of the ring, then the
		// super-frame through the port's socket.
		if i > from {
			w.transmit(ps, batch[from:i])
			ps.Dev.Flush()
		}
		var f []byte
		if udp {
			f = w.ugro.Finish(w.groHdr[:])
		} else {
			f = w.gro.Finish(w.groHdr[:])
		}
		if err := ps.Large.TransmitLarge(f, w.groHdr[:]); err != nil {
			// The socket is full or refused it: the segments are still
			// here, and go through the ring as they came.
			from, i = i, j
			continue
		}
		ps.Stats.TxPackets.Add(1)
		ps.Stats.TxBytes.Add(uint64(len(f)))
		if udp {
			w.cnt.event(EvUDPGROMerged)
			w.cnt.add(EvUDPGROSegments, j-i)
		} else {
			w.cnt.event(EvGROMerged)
			w.cnt.add(EvGROSegments, j-i)
		}
		for k := i; k < j; k++ {
			w.umem.Free(batch[k].Addr)
		}
		from, i = j, j
	}
	w.transmit(ps, batch[from:])
}
