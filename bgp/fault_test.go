package bgp

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xvs-project/xvs/lab"
)

// rawPeer is a hand-written BGP speaker: just enough of RFC 4271 to
// bring a session up and then send crafted UPDATEs.
type rawPeer struct {
	t     *testing.T
	conn  net.Conn
	notif chan []byte // NOTIFICATIONs received
}

func bgpMsg(typ byte, body []byte) []byte {
	m := make([]byte, 19, 19+len(body))
	for i := 0; i < 16; i++ {
		m[i] = 0xff
	}
	binary.BigEndian.PutUint16(m[16:], uint16(19+len(body)))
	m[18] = typ
	return append(m, body...)
}

func readMsg(r io.Reader) (byte, []byte, error) {
	var h [19]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint16(h[16:]))
	if n < 19 {
		return 0, nil, fmt.Errorf("bad length %d", n)
	}
	body := make([]byte, n-19)
	_, err := io.ReadFull(r, body)
	return h[18], body, err
}

// listenRaw accepts the speaker's connection on addr:179 in ns and
// brings the session up as AS as.
func listenRaw(t *testing.T, ns string, addr netip.Addr, as uint32) <-chan *rawPeer {
	var ln net.Listener
	err := lab.InNS(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 179).String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan *rawPeer, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		t.Cleanup(func() { conn.Close() })
		p := &rawPeer{t: t, conn: conn, notif: make(chan []byte, 4)}
		if typ, _, err := readMsg(conn); err != nil || typ != 1 {
			t.Errorf("raw peer: want OPEN, got %d %v", typ, err)
			return
		}
		caps := []byte{
			1, 4, 0, 1, 0, 1, // MP ipv4 unicast
			1, 4, 0, 2, 0, 1, // MP ipv6 unicast
			65, 4, 0, 0, 0, 0, // 4-octet AS
		}
		binary.BigEndian.PutUint32(caps[14:], as)
		open := []byte{4, 0, 0, 0, 30, 0, 0, 0, 0, byte(2 + len(caps)), 2, byte(len(caps))}
		binary.BigEndian.PutUint16(open[1:], uint16(as))
		copy(open[5:9], addr.AsSlice())
		open = append(open, caps...)
		conn.Write(bgpMsg(1, open))
		conn.Write(bgpMsg(4, nil))
		for {
			typ, _, err := readMsg(conn)
			if err != nil {
				t.Errorf("raw peer: %v", err)
				return
			}
			if typ == 4 {
				break
			}
		}
		go func() {
			for {
				typ, body, err := readMsg(conn)
				if err != nil {
					close(p.notif)
					return
				}
				if typ == 3 {
					p.notif <- body
				}
			}
		}()
		ch <- p
	}()
	return ch
}

func (p *rawPeer) send(body []byte) {
	if _, err := p.conn.Write(bgpMsg(2, body)); err != nil {
		p.t.Fatalf("raw peer send: %v", err)
	}
}

// update builds an UPDATE body from withdrawn routes, attributes and NLRI.
func update(withdrawn, attrs, nlri []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(withdrawn)))
	b = append(b, withdrawn...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(attrs)))
	b = append(b, attrs...)
	return append(b, nlri...)
}

func attr(flags, typ byte, v []byte) []byte { return append([]byte{flags, typ, byte(len(v))}, v...) }

func asPath(as uint32) []byte {
	return attr(0x40, 2, binary.BigEndian.AppendUint32([]byte{2, 1}, as))
}

func nlriOf(p netip.Prefix) []byte {
	b := []byte{byte(p.Bits())}
	return append(b, p.Addr().AsSlice()[:(p.Bits()+7)/8]...)
}

// TestMalformedUpdates: RFC 7606 against a raw peer. A bad ORIGIN length
// is treated as withdraw (the session stays up), a bad NLRI resets the
// session; the speaker keeps running and status says why.
func TestMalformedUpdates(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	rns, r4, _ := l.node(1)
	sns, s4, s6 := l.node(2)
	accepted := listenRaw(t, rns, r4, 65001)
	sp := startSpeaker(t, sns, childSpec{Config: Config{NodeASNumber: 65002, NodeIPv4: s4, NodeIPv6: s6, NodeToNodeMeshEnabled: ptr(false),
		Peers: []Peer{{Address: r4, ASNumber: 65001, Families: []Family{IPv4, IPv6}, ConnectRetry: time.Second}}}})
	var p *rawPeer
	select {
	case p = <-accepted:
	case <-time.After(30 * time.Second):
		t.Fatal("speaker did not connect to the raw peer")
	}
	sp.waitEstablished(t, r4)

	p4 := netip.MustParsePrefix("198.19.77.0/24")
	p6 := netip.MustParsePrefix("fd00:fe4d::/48")
	origin := attr(0x40, 1, []byte{0})
	p.send(update(nil, append(append(origin, asPath(65001)...), attr(0x40, 3, r4.AsSlice())...), nlriOf(p4)))
	// IPv6 with a global and a link-local next hop (32 bytes).
	gl, ll := netip.MustParseAddr("fd00:18::1"), netip.MustParseAddr("fe80::1")
	mp := append([]byte{0, 2, 1, 32}, gl.AsSlice()...)
	mp = append(mp, ll.AsSlice()...)
	mp = append(mp, 0)
	mp = append(mp, nlriOf(p6)...)
	p.send(update(nil, append(append(origin, asPath(65001)...), attr(0x80, 14, mp)...), nil))
	wantRoute(t, sp, p4, r4)
	wantRoute(t, sp, p6, gl)

	// ORIGIN of length 2: treat-as-withdraw.
	p.send(update(nil, append(append(attr(0x40, 1, []byte{0, 0}), asPath(65001)...), attr(0x40, 3, r4.AsSlice())...), nlriOf(p4)))
	noRoute(t, sp, p4, 10*time.Second)
	ps, _ := sp.peer(r4)
	if ps.Session != "Established" || ps.Malformed == 0 || !strings.Contains(ps.LastError, "withdraw") {
		t.Errorf("after a treat-as-withdraw UPDATE: %+v", ps)
	}
	if _, ok := sp.routes()[p6]; !ok {
		t.Errorf("the IPv6 route went with the malformed IPv4 UPDATE")
	}

	// A /33 IPv4 prefix: the NLRI cannot be parsed, the session resets.
	p.send(update(nil, append(append(origin, asPath(65001)...), attr(0x40, 3, r4.AsSlice())...), []byte{33, 198, 19, 78, 0, 0}))
	select {
	case n, ok := <-p.notif:
		if !ok {
			t.Fatal("connection closed without a NOTIFICATION")
		}
		if n[0] != 3 {
			t.Errorf("NOTIFICATION code %d, want 3 (UPDATE Message Error)", n[0])
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no NOTIFICATION after an unparsable NLRI")
	}
	noRoute(t, sp, p6, 10*time.Second)
	waitFor(t, 10*time.Second, "status after the reset", func() (bool, string) {
		ps, _ := sp.peer(r4)
		return ps.Session != "Established" && ps.Flaps == 1 && ps.LastError != "" && ps.State == "start", fmt.Sprintf("%+v", ps)
	})
	ps, _ = sp.peer(r4)
	t.Logf("after the reset: info %q", ps.Info)
}

// TestPeerFlap: routes leave at once on a NOTIFICATION, within the hold
// time when the peer goes silent, and come back on re-establishment.
func TestPeerFlap(t *testing.T) {
	t.Parallel()
	haveBIRD(t)
	l := newLab(t)
	bns, b4, _ := l.node(1)
	sns, s4, s6 := l.node(2)
	b := startBIRD(t, bns, birdStatic(b4, birdV4)+fmt.Sprintf(`
protocol bgp xvs {
  local %s as 65001;
  neighbor %s as 65002;
  hold time 6;
  connect retry time 1;
  error wait time 1, 2;
  ipv4 { import all; export all; };
}
`, b4, s4))
	sp := startSpeaker(t, sns, childSpec{Config: Config{NodeASNumber: 65002, NodeIPv4: s4, NodeIPv6: s6, NodeToNodeMeshEnabled: ptr(false),
		Peers: []Peer{{Address: b4, ASNumber: 65001, HoldTime: 6 * time.Second, ConnectRetry: time.Second}}}})
	sp.waitEstablished(t, b4)
	wantRoute(t, sp, birdV4, b4)

	b.mustBirdc("disable xvs")
	t0 := time.Now()
	noRoute(t, sp, birdV4, 2*time.Second)
	t.Logf("NOTIFICATION: route gone after %v", time.Since(t0))
	b.mustBirdc("enable xvs")
	wantRoute(t, sp, birdV4, b4)

	// Silence: the link goes down in BIRD's namespace, no FIN reaches the
	// speaker, its hold timer (6s) takes the session down.
	l.run("n1", "ip", "link", "set", "eth0", "down")
	t0 = time.Now()
	noRoute(t, sp, birdV4, 9*time.Second)
	t.Logf("silent peer: route gone after %v (hold time 6s)", time.Since(t0))
	if ps, _ := sp.peer(b4); !strings.Contains(strings.ToLower(ps.LastError), "hold") {
		t.Errorf("status after the hold timer: %+v", ps)
	}
	l.run("n1", "ip", "link", "set", "eth0", "up")
	wantRoute(t, sp, birdV4, b4)
}

// TestGracefulRestart: with RFC 4724 on both sides, BIRD's crash keeps
// its routes in the FIB (marked stale) through its restart.
func TestGracefulRestart(t *testing.T) {
	t.Parallel()
	haveBIRD(t)
	l := newLab(t)
	bns, b4, _ := l.node(1)
	sns, s4, s6 := l.node(2)
	conf := birdStatic(b4, birdV4) + fmt.Sprintf(`
protocol bgp xvs {
  local %s as 65001;
  neighbor %s as 65002;
  graceful restart on;
  graceful restart time 30;
  connect retry time 1;
  ipv4 { import all; export all; };
}
`, b4, s4)
	b := startBIRD(t, bns, conf)
	sp := startSpeaker(t, sns, childSpec{Config: Config{NodeASNumber: 65002, NodeIPv4: s4, NodeIPv6: s6, NodeToNodeMeshEnabled: ptr(false),
		GracefulRestart: GracefulRestart{Enabled: true},
		Peers:           []Peer{{Address: b4, ASNumber: 65001, ConnectRetry: time.Second}}}, Prefixes: []netip.Prefix{nodeV4}})
	sp.waitEstablished(t, b4)
	wantRoute(t, sp, birdV4, b4)

	b.kill()
	waitFor(t, 10*time.Second, "the session to drop", func() (bool, string) {
		ps, _ := sp.peer(b4)
		return ps.Session != "Established", ps.Session
	})
	// The route stays while BIRD is down...
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if _, ok := sp.routes()[birdV4]; !ok {
			t.Fatal("route withdrawn while the peer restarts")
		}
	}
	es := sp.call(childReq{Op: "bgproutes"}).Entries
	stale := false
	for _, e := range es {
		stale = stale || (e.Prefix == birdV4 && e.Stale)
	}
	if !stale {
		t.Errorf("the retained route is not marked stale: %+v", es)
	}
	// ...and through its return.
	b.start()
	sp.waitEstablished(t, b4)
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if _, ok := sp.routes()[birdV4]; !ok {
			t.Fatal("route withdrawn after the peer came back")
		}
	}
	birdHas(t, b, nodeV4, s4)
	waitFor(t, 10*time.Second, "the route refreshed (not stale)", func() (bool, string) {
		for _, e := range sp.call(childReq{Op: "bgproutes"}).Entries {
			if e.Prefix == birdV4 {
				return !e.Stale, fmt.Sprintf("%+v", e)
			}
		}
		return false, "missing"
	})
}

// TestSessionDown: wrong AS, wrong password and an unreachable peer keep
// the session down, and status says so.
func TestSessionDown(t *testing.T) {
	t.Parallel()
	haveBIRD(t)
	l := newLab(t)
	ns1, a1, _ := l.node(1)
	ns3, a3, _ := l.node(3)
	sns, s4, s6 := l.node(2)
	startBIRD(t, ns1, birdStatic(a1, birdV4)+fmt.Sprintf(`
protocol bgp xvs { local %s as 65001; neighbor %s as 65002; connect retry time 1; ipv4 { import all; export all; }; }
`, a1, s4))
	startBIRD(t, ns3, birdStatic(a3, birdV4)+fmt.Sprintf(`
protocol bgp xvs { local %s as 65001; neighbor %s as 65002; password "other"; connect retry time 1; ipv4 { import all; export all; }; }
`, a3, s4))
	unreachable := netip.MustParseAddr("198.18.0.99")
	sp := startSpeaker(t, sns, childSpec{Config: Config{NodeASNumber: 65002, NodeIPv4: s4, NodeIPv6: s6, NodeToNodeMeshEnabled: ptr(false),
		Peers: []Peer{
			{Address: a1, ASNumber: 65009, ConnectRetry: time.Second},                     // BIRD is 65001
			{Address: a3, ASNumber: 65001, Password: "secret", ConnectRetry: time.Second}, // BIRD has "other"
			{Address: unreachable, ASNumber: 65001, ConnectRetry: time.Second},
		}}})
	time.Sleep(8 * time.Second)
	st := sp.call(childReq{Op: "status"})
	t.Logf("status:\n%s", st.Text)
	want := map[netip.Addr]string{a1: "as", a3: "", unreachable: ""}
	for _, p := range st.Status.Peers {
		sub, ok := want[p.Address]
		if !ok {
			continue
		}
		delete(want, p.Address)
		if p.State == "up" || p.Session == "Established" {
			t.Errorf("peer %s is up: %+v", p.Address, p)
		}
		if p.LastError == "" || !strings.Contains(strings.ToLower(p.Info), sub) {
			t.Errorf("peer %s: info %q, last error %q; want a reason mentioning %q", p.Address, p.Info, p.LastError, sub)
		}
	}
	if len(want) != 0 {
		t.Errorf("peers missing from status: %v", want)
	}
	if n := len(sp.routes()); n != 0 {
		t.Errorf("%d routes learned over sessions that should be down", n)
	}
}

// TestBFD: with BFD (GoBGP's, against BIRD's), a silent peer takes the
// session and its routes down in about a second, not the 90s hold time.
func TestBFD(t *testing.T) {
	t.Parallel()
	haveBIRD(t)
	l := newLab(t)
	bns, b4, _ := l.node(1)
	sns, s4, s6 := l.node(2)
	startBIRD(t, bns, birdStatic(b4, birdV4)+fmt.Sprintf(`
protocol bfd { interface "eth0" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }
protocol bgp xvs {
  local %s as 65001;
  neighbor %s as 65002;
  bfd on;
  ipv4 { import all; export all; };
}
`, b4, s4))
	sp := startSpeaker(t, sns, childSpec{Config: Config{NodeASNumber: 65002, NodeIPv4: s4, NodeIPv6: s6, NodeToNodeMeshEnabled: ptr(false),
		Peers: []Peer{{Address: b4, ASNumber: 65001, ConnectRetry: time.Second, BFD: &BFD{MinTx: 100 * time.Millisecond, MinRx: 100 * time.Millisecond}}}}})
	sp.waitEstablished(t, b4)
	wantRoute(t, sp, birdV4, b4)
	waitFor(t, 20*time.Second, "BFD up", func() (bool, string) {
		ps, _ := sp.peer(b4)
		return ps.BFD == "up", ps.BFD
	})
	l.run("n1", "ip", "link", "set", "eth0", "down")
	t0 := time.Now()
	noRoute(t, sp, birdV4, 5*time.Second)
	t.Logf("BFD: route gone %v after the peer went silent (hold time 90s)", time.Since(t0))
}

// TestSpeakerRestart: the speaker crashes and comes back as a restarting
// speaker (RFC 4724 restart state); BIRD keeps its routes throughout and
// the new speaker relearns BIRD's.
func TestSpeakerRestart(t *testing.T) {
	t.Parallel()
	haveBIRD(t)
	l := newLab(t)
	bns, b4, _ := l.node(1)
	sns, s4, s6 := l.node(2)
	b := startBIRD(t, bns, birdStatic(b4, birdV4)+fmt.Sprintf(`
protocol bgp xvs {
  local %s as 65001;
  neighbor %s as 65002;
  graceful restart on;
  connect retry time 1;
  error wait time 1, 2;
  ipv4 { import all; export all; };
}
`, b4, s4))
	spec := childSpec{Config: Config{NodeASNumber: 65002, NodeIPv4: s4, NodeIPv6: s6, NodeToNodeMeshEnabled: ptr(false),
		GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 30 * time.Second},
		Peers:           []Peer{{Address: b4, ASNumber: 65001, ConnectRetry: time.Second}}}, Prefixes: []netip.Prefix{nodeV4}}
	sp := startSpeaker(t, sns, spec)
	sp.waitEstablished(t, b4)
	birdHas(t, b, nodeV4, s4)

	sp.kill()
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if out, ok := b.route(nodeV4); !ok {
			t.Fatalf("BIRD dropped the restarting speaker's route:\n%s", out)
		}
	}
	spec.Restarting = true
	t0 := time.Now()
	sp = startSpeaker(t, sns, spec)
	wantRoute(t, sp, birdV4, b4)
	t.Logf("restarted speaker: BIRD's route back in the sink %v after the restart", time.Since(t0).Round(time.Millisecond))
	birdHas(t, b, nodeV4, s4)
	out, _ := b.route(nodeV4)
	if strings.Contains(out, "stale") {
		t.Errorf("BIRD's route is still stale after the restart:\n%s", out)
	}

	// A graceful stop (Close with graceful restart on) sends no
	// NOTIFICATION: BIRD keeps the routes, as for a crash.
	// First the restart must be over on both sides (a second drop during
	// a restart flushes the stale routes, RFC 4724 4.2): the restarting
	// speaker sends its routes only after BIRD's End-of-RIB.
	waitFor(t, 20*time.Second, "the restarted speaker's advertisement", func() (bool, string) {
		ps, _ := sp.peer(b4)
		return ps.Session == "Established" && ps.Advertised == 1, fmt.Sprintf("%+v", ps)
	})
	waitFor(t, 20*time.Second, "BIRD out of graceful restart", func() (bool, string) {
		out, _ := b.birdc("show protocols all xvs")
		return !strings.Contains(strings.ToLower(out), "restart active") && !strings.Contains(out, "stale"), out
	})
	time.Sleep(time.Second)
	sp.call(childReq{Op: "quit"})
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if out, ok := b.route(nodeV4); !ok {
			t.Fatalf("BIRD dropped the route after a graceful stop:\n%s", out)
		}
	}
	if log, _ := os.ReadFile(b.log); strings.Contains(string(log), "Received: Peer de-configured") {
		t.Errorf("the graceful stop sent a NOTIFICATION:\n%s", log)
	}
}
