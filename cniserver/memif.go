package cniserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/xvs-project/xvs/ipam"
	memifport "github.com/xvs-project/xvs/port/memif"
	"github.com/xvs-project/xvs/spec"
	"github.com/xvs-project/xvs/vswitch"
)

// MemifAnnotation is the pod annotation that asks for memif ports: "true"
// (one port with defaults), "false", or a JSON list of ports such as
// [{"queues": 2, "ringSize": 1024, "mac": "02:fe:00:00:00:01"}]. It wins
// over the network config's memif key, which takes the same shapes.
const MemifAnnotation = "xvs.dev/memif"

// maxMemifs is how many memif ports one pod may ask for
// (memifport.PodPort's socket indices 0..9).
const maxMemifs = 10

// MemifSpec is one memif port a pod asks for.
type MemifSpec struct {
	Queues   int     // queue pairs offered (0: 1)
	RingSize int     // descriptors per ring, a power of two (0: 1024)
	Polling  bool    // rings masked: the peer never signals
	MAC      [6]byte // the application's MAC; zero: learnt from its first frame
}

// memifJSON is one list entry as a pod writes it.
type memifJSON struct {
	Queues     *int    `json:"queues"`
	RingSize   *int    `json:"ringSize"`
	Polling    *bool   `json:"polling"`
	MAC        *string `json:"mac"`
	Mode       *string `json:"mode"`
	BufferSize *int    `json:"bufferSize"`
}

// ParseMemif reads a memif request: the annotation's value (from
// "annotation xvs.dev/memif") or the network config's key (from "network
// config: memif"). Empty and "false" ask for none. Errors name from, the
// field and the value.
func ParseMemif(from, v string) ([]MemifSpec, error) {
	v = strings.TrimSpace(v)
	switch v {
	case "", "false", `"false"`, "null", "[]":
		return nil, nil
	case "true", `"true"`:
		return []MemifSpec{{}}, nil
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s %s: %s", from, v, fmt.Sprintf(format, a...))
	}
	if !strings.HasPrefix(v, "[") {
		return nil, bad(`want "true", "false" or a JSON list of ports such as [{"queues": 1}]`)
	}
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(v), &list); err != nil {
		return nil, bad("not a JSON list: %v", err)
	}
	if len(list) > maxMemifs {
		return nil, bad("%d ports: at most %d", len(list), maxMemifs)
	}
	out := make([]MemifSpec, 0, len(list))
	for i, raw := range list {
		var j memifJSON
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(&j); err != nil {
			return nil, bad("port %d: %v (fields: queues, ringSize, polling, mac, mode)", i, err)
		}
		field := func(f string) string { return "[" + strconv.Itoa(i) + "]." + f }
		var m MemifSpec
		if j.Queues != nil {
			if *j.Queues < 1 || *j.Queues > 64 {
				return nil, bad("%s %d: must be 1..64", field("queues"), *j.Queues)
			}
			m.Queues = *j.Queues
		}
		if j.RingSize != nil {
			if r := *j.RingSize; r < 2 || r > 1<<14 || r&(r-1) != 0 {
				return nil, bad("%s %d: must be a power of two, 2..16384", field("ringSize"), r)
			}
			m.RingSize = *j.RingSize
		}
		if j.Polling != nil {
			m.Polling = *j.Polling
		}
		if j.MAC != nil {
			hw, err := net.ParseMAC(*j.MAC)
			if err != nil || len(hw) != 6 || hw[0]&1 != 0 {
				return nil, bad("%s %q: want a unicast Ethernet MAC such as 02:fe:00:00:00:01", field("mac"), *j.MAC)
			}
			copy(m.MAC[:], hw)
		}
		if j.Mode != nil && *j.Mode != "ethernet" {
			return nil, bad("%s %q: xvsd serves memif in ethernet mode only", field("mode"), *j.Mode)
		}
		if j.BufferSize != nil {
			// The memif client (the pod's application) allocates the
			// shared region and sizes its buffers; xvsd, the server,
			// takes whatever the peer offers and chains buffers.
			return nil, bad("%s %d: the pod's application (the memif client) sizes the buffers: set it there", field("bufferSize"), *j.BufferSize)
		}
		out = append(out, m)
	}
	return out, nil
}

// memifRequest is the pod's memif ports: its annotation's, else the
// network config's. An error is a CNI error naming the source and value.
func memifRequest(annotations map[string]string, conf string) ([]MemifSpec, error) {
	if v, ok := annotations[MemifAnnotation]; ok {
		ms, err := ParseMemif("annotation "+MemifAnnotation, v)
		if err != nil {
			return nil, cniErr(CodeBadAnnotation, "memif", err)
		}
		return ms, nil
	}
	ms, err := ParseMemif("network config: memif", conf)
	if err != nil {
		return nil, cniErr(CodeInvalidConfig, "memif", err)
	}
	return ms, nil
}

// memifRecord is one memif port of an endpoint. Its entry is written
// before its addresses are assigned, so DEL, GC and Start know every memif
// allocation an attachment may hold.
type memifRecord struct {
	Index    int            `json:"index"`
	Port     string         `json:"port"`
	Socket   string         `json:"socket"`
	Addrs    []netip.Prefix `json:"addrs,omitempty"`
	Queues   int            `json:"queues,omitempty"`
	RingSize int            `json:"ringSize,omitempty"`
	Polling  bool           `json:"polling,omitempty"`
	MAC      [6]byte        `json:"mac"`
}

// MemifHandle is the IPAM handle of memif i of the attachment h:
// "<ifname>@m<i>" under the same container ID, so (container ID, ifname)
// stays the key of everything an attachment holds and a repeated ADD finds
// the same addresses.
func MemifHandle(h ipam.Handle, i int) ipam.Handle {
	ifn := h.IfName
	if len(ifn) > 12 {
		ifn = ifn[:12]
	}
	return ipam.Handle{ContainerID: h.ContainerID, IfName: fmt.Sprintf("%s@m%d", ifn, i)}
}

// isMemifHandle reports whether h is a memif port's handle.
func isMemifHandle(h ipam.Handle) bool {
	i := strings.LastIndex(h.IfName, "@m")
	if i < 0 {
		return false
	}
	_, err := strconv.Atoi(h.IfName[i+2:])
	return err == nil
}

// isMemifPortName reports whether n is a name memifport.PodPortName gives
// one of our host ends' memif ports.
func isMemifPortName(n string) bool {
	i := strings.LastIndex(n, "-m")
	return i > len(hostPrefix) && strings.HasPrefix(n, hostPrefix) && i+3 == len(n) && n[i+2] >= '0' && n[i+2] <= '9'
}

func (m *memifRecord) portConfig(r *record) (spec.PortConfig, string, error) {
	return memifport.PodPort(memifport.Pod{HostIf: r.HostIf, Netns: r.NetNS}, m.Index, memifport.PodMemif{
		Addrs: m.Addrs, PeerMAC: m.MAC, Queues: m.Queues, RingSize: m.RingSize, Polling: m.Polling,
	})
}

// addMemifs makes the pod's memif ports after its veth port: the record's
// entries first (so a crash leaves nothing DEL cannot find), then per port
// its addresses and the switch's port. undo collects each step's undo.
func (s *Server) addMemifs(ctx context.Context, r *record, ms []MemifSpec, ar ipam.AssignRequest, undo *[]func()) error {
	if len(ms) == 0 {
		return nil
	}
	r.Memifs = make([]memifRecord, len(ms))
	for i, m := range ms {
		r.Memifs[i] = memifRecord{Index: i, Port: memifport.PodPortName(r.HostIf, i), Socket: fmt.Sprintf("%s%d", memifport.PodSocketPrefix, i),
			Queues: m.Queues, RingSize: m.RingSize, Polling: m.Polling, MAC: m.MAC}
	}
	if err := s.writeRecord(r); err != nil {
		return cniErr(CodeIOFailure, "endpoint record", err)
	}
	for i := range r.Memifs {
		m := &r.Memifs[i]
		mar := ar
		mar.Handle = MemifHandle(r.Handle, i)
		as, err := s.alloc.Assign(ctx, mar)
		if err != nil {
			return cniErr(ipamCode(err), fmt.Sprintf("ipam for memif %d", i), err)
		}
		*undo = append(*undo, func() {
			if _, err := s.alloc.Release(context.WithoutCancel(ctx), mar.Handle); err != nil {
				s.log.Warn("undo: release memif", "handle", mar.Handle, "err", err)
			}
		})
		for _, a := range as {
			m.Addrs = append(m.Addrs, netip.PrefixFrom(a.Addr, a.Addr.BitLen()))
		}
		pc, _, err := m.portConfig(r)
		if err != nil {
			return cniErr(CodePort, fmt.Sprintf("memif %d", i), err)
		}
		if err := s.dp.DelPort(pc.Name); err != nil && !errors.Is(err, vswitch.ErrPortNotFound) {
			return cniErr(CodePort, "delete stale port "+pc.Name, err)
		}
		if _, err := s.dp.AddPort(pc); err != nil {
			return cniErr(CodePort, "xvsd memif port "+pc.Name, err)
		}
		*undo = append(*undo, func() { s.dp.DelPort(pc.Name) })
	}
	if err := s.writeRecord(r); err != nil {
		return cniErr(CodeIOFailure, "endpoint record", err)
	}
	s.syncBlocks(ctx)
	return nil
}

// delMemifs removes an endpoint's memif ports and releases their
// addresses; what is already gone is fine.
func (s *Server) delMemifs(ctx context.Context, r *record) error {
	for _, m := range r.Memifs {
		if err := s.dp.DelPort(m.Port); err != nil && !errors.Is(err, vswitch.ErrPortNotFound) {
			return cniErr(CodePort, "delete xvsd memif port "+m.Port, err)
		}
		if _, err := s.alloc.Release(ctx, MemifHandle(r.Handle, m.Index)); err != nil {
			return cniErr(ipamCode(err), "ipam release of memif "+m.Port, err)
		}
	}
	return nil
}

// readoptMemifs gives a re-adopted endpoint its memif ports back, with
// the addresses the store holds for them: the pod's application
// reconnects to the same socket and finds the same addresses.
func (s *Server) readoptMemifs(ctx context.Context, r *record) {
	for i := range r.Memifs {
		m := &r.Memifs[i]
		als, err := s.alloc.Get(ctx, MemifHandle(r.Handle, m.Index))
		if err != nil || len(als) == 0 {
			continue // ADD was cut short before its addresses: DEL frees the rest
		}
		m.Addrs = m.Addrs[:0]
		for _, a := range als {
			m.Addrs = append(m.Addrs, netip.PrefixFrom(a.Addr, a.Addr.BitLen()))
		}
		if _, has := s.port(m.Port); has {
			continue
		}
		pc, _, err := m.portConfig(r)
		if err == nil {
			_, err = s.dp.AddPort(pc)
		}
		if err != nil {
			s.log.Warn("re-adopt: memif port", "port", m.Port, "handle", r.Handle, "err", err)
			continue
		}
		s.log.Info("re-adopted memif", "pod", r.Namespace+"/"+r.Pod, "port", m.Port, "socket", m.Socket, "addrs", m.Addrs)
	}
}

// checkMemifs is CHECK's part for memif ports: each port is there with
// the addresses the store holds. A port without a peer is not a failure:
// the pod's application may not have started.
func (s *Server) checkMemifs(ctx context.Context, r *record) error {
	for _, m := range r.Memifs {
		als, err := s.alloc.Get(ctx, MemifHandle(r.Handle, m.Index))
		if err != nil {
			return cniErr(ipamCode(err), "ipam of memif "+m.Port, err)
		}
		if len(als) != len(m.Addrs) || len(als) == 0 {
			return errorf(CodeCheckFailed, "memif %s: store holds %d addresses, endpoint %v", m.Port, len(als), m.Addrs)
		}
		if _, ok := s.port(m.Port); !ok {
			return errorf(CodeCheckFailed, "xvsd has no memif port %s for %s", m.Port, r.Handle)
		}
	}
	return nil
}

// MemifResult is one memif port as ADD reports it.
type MemifResult struct {
	Port, Socket string
	Addrs        []netip.Prefix
	Up           bool
}

func (s *Server) memifResults(r *record) []MemifResult {
	var out []MemifResult
	for _, m := range r.Memifs {
		st, _ := s.port(m.Port)
		out = append(out, MemifResult{Port: m.Port, Socket: m.Socket, Addrs: m.Addrs, Up: st.Up})
	}
	return out
}

// memifHeld is every memif handle and port name the records stand
// behind.
func memifHeld(recs []*record) (handles map[ipam.Handle]bool, ports map[string]bool) {
	handles, ports = map[ipam.Handle]bool{}, map[string]bool{}
	for _, r := range recs {
		for _, m := range r.Memifs {
			handles[MemifHandle(r.Handle, m.Index)] = true
			ports[m.Port] = true
		}
	}
	return handles, ports
}
