package bgp

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// Status is what `xvsctl node status` shows (`-o json` marshals it).
type Status struct {
	Running  bool         `json:"running"`
	ASNumber uint32       `json:"asNumber"`
	RouterID netip.Addr   `json:"routerID"`
	Since    time.Time    `json:"since"`
	Peers    []PeerStatus `json:"peers"`
	// Unknown are addresses that connected without being configured
	// peers (GoBGP refuses them), the most recent maxUnknown: Type
	// TypeUnknown, State "refused", Info says so.
	Unknown []PeerStatus `json:"unknownPeers,omitempty"`
	// UnknownConnections counts every connection refused since the
	// speaker started because its address is no configured peer;
	// UnknownAddresses the addresses they came from (an address that
	// lost its row to newer ones counts again when it returns).
	UnknownConnections uint64      `json:"unknownConnections"`
	UnknownAddresses   uint64      `json:"unknownAddresses"`
	RIB                RIBCounters `json:"rib"`
}

// PeerStatus is one row of calicoctl's table, and the counters behind it.
type PeerStatus struct {
	Address  netip.Addr `json:"peerAddress"`
	Type     string     `json:"peerType"` // TypeMesh, TypeGlobal, TypeNode, TypeRouteReflector, TypeRRClient
	ASNumber uint32     `json:"asNumber"`
	Families []Family   `json:"families"`
	// State is BIRD's protocol state as calicoctl prints it: "up"
	// (Established), "start" (trying) or "down" (administratively).
	State string    `json:"state"`
	Since time.Time `json:"since"`
	// Session is the RFC 4271 FSM state: Idle, Connect, Active, OpenSent,
	// OpenConfirm, Established.
	Session   string `json:"session"`
	Info      string `json:"info"` // Session, and the last error while not Established
	LastError string `json:"lastError,omitempty"`
	Flaps     uint64 `json:"flaps"`
	// Attempts counts an unknown peer's refused connections.
	Attempts uint64 `json:"attempts,omitempty"`
	// BFD is the BFD session's state ("up", "down", "init", "admin-down"),
	// empty without BFD.
	BFD string `json:"bfd,omitempty"`
	// Malformed counts UPDATEs handled by RFC 7606 (treated as withdraw,
	// attribute discarded) or that reset the session.
	Malformed          uint64 `json:"malformed"`
	Received           uint64 `json:"received"` // prefixes in Adj-RIB-In
	Accepted           uint64 `json:"accepted"`
	Advertised         uint64 `json:"advertised"`
	UpdatesReceived    uint64 `json:"updatesReceived"`
	UpdatesSent        uint64 `json:"updatesSent"`
	WithdrawsReceived  uint64 `json:"withdrawsReceived"` // withdrawn prefixes
	WithdrawsSent      uint64 `json:"withdrawsSent"`
	NotificationsRecvd uint64 `json:"notificationsReceived"`
	NotificationsSent  uint64 `json:"notificationsSent"`
}

func sessionName(s gbgp.FSMState) string {
	switch s {
	case gbgp.BGP_FSM_IDLE:
		return "Idle"
	case gbgp.BGP_FSM_CONNECT:
		return "Connect"
	case gbgp.BGP_FSM_ACTIVE:
		return "Active"
	case gbgp.BGP_FSM_OPENSENT:
		return "OpenSent"
	case gbgp.BGP_FSM_OPENCONFIRM:
		return "OpenConfirm"
	case gbgp.BGP_FSM_ESTABLISHED:
		return "Established"
	}
	return s.String()
}

func apiSession(s api.PeerState_SessionState) gbgp.FSMState {
	switch s {
	case api.PeerState_SESSION_STATE_CONNECT:
		return gbgp.BGP_FSM_CONNECT
	case api.PeerState_SESSION_STATE_ACTIVE:
		return gbgp.BGP_FSM_ACTIVE
	case api.PeerState_SESSION_STATE_OPENSENT:
		return gbgp.BGP_FSM_OPENSENT
	case api.PeerState_SESSION_STATE_OPENCONFIRM:
		return gbgp.BGP_FSM_OPENCONFIRM
	case api.PeerState_SESSION_STATE_ESTABLISHED:
		return gbgp.BGP_FSM_ESTABLISHED
	}
	return gbgp.BGP_FSM_IDLE
}

// Status reports the speaker and its peers, sorted by address. GoBGP
// counts a peer's received and advertised prefixes by walking its tables,
// so a call costs in proportion to the routes (about a second of CPU per
// million; the metrics leave the advertised count out).
func (s *Speaker) Status(ctx context.Context) (Status, error) { return s.status(ctx, true) }

func (s *Speaker) status(ctx context.Context, advertised bool) (Status, error) {
	s.mu.Lock()
	srv := s.srv
	st := Status{Running: srv != nil, ASNumber: s.cfg.LocalAS(), RouterID: s.cfg.routerID(), Since: s.started}
	want := make(map[netip.Addr]wantPeer, len(s.peers))
	for a, w := range s.peers {
		want[a] = w
	}
	s.mu.Unlock()
	st.RIB = s.rib.counters()
	s.infoMu.Lock()
	for a, u := range s.unknown {
		st.Unknown = append(st.Unknown, PeerStatus{
			Address: a, Type: TypeUnknown, State: "refused", Since: u.first, Session: "Idle", Attempts: u.attempts,
			Info: fmt.Sprintf("Refused: not a configured peer (%d connection attempts, last %s)", u.attempts, u.last.UTC().Format("15:04:05")),
		})
	}
	st.UnknownConnections, st.UnknownAddresses = s.unknownTotal, s.unknownAddrs
	s.infoMu.Unlock()
	slices.SortFunc(st.Unknown, func(a, b PeerStatus) int { return a.Address.Compare(b.Address) })
	if srv == nil {
		return st, nil
	}
	err := srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: advertised}, func(p *api.Peer) {
		a, err := netip.ParseAddr(p.GetConf().GetNeighborAddress())
		if err != nil {
			return
		}
		w := want[a]
		ps := PeerStatus{Address: a, Type: w.typ, ASNumber: p.GetConf().GetPeerAsn(), Families: w.fam}
		pst := p.GetState()
		sess := apiSession(pst.GetSessionState())
		ps.Session = sessionName(sess)
		switch {
		case pst.GetAdminState() == api.PeerState_ADMIN_STATE_DOWN:
			ps.State = "down"
		case sess == gbgp.BGP_FSM_ESTABLISHED:
			ps.State = "up"
		default:
			ps.State = "start"
		}
		if w.api.GetBfd().GetEnabled() {
			ps.BFD = strings.ToLower(strings.TrimPrefix(pst.GetBfdState().GetSessionState().String(), "BFD_SESSION_STATE_"))
		}
		if m := pst.GetMessages(); m != nil {
			ps.UpdatesReceived = m.GetReceived().GetUpdate()
			ps.UpdatesSent = m.GetSent().GetUpdate()
			ps.WithdrawsReceived = m.GetReceived().GetWithdrawPrefix()
			ps.WithdrawsSent = m.GetSent().GetWithdrawPrefix()
			ps.NotificationsRecvd = m.GetReceived().GetNotification()
			ps.NotificationsSent = m.GetSent().GetNotification()
		}
		for _, af := range p.GetAfiSafis() {
			ps.Received += af.GetState().GetReceived()
			ps.Accepted += af.GetState().GetAccepted()
			ps.Advertised += af.GetState().GetAdvertised()
		}
		s.infoMu.Lock()
		if pi := s.info[a]; pi != nil {
			ps.Since, ps.Flaps, ps.Malformed, ps.LastError = pi.since, pi.flaps, pi.malformed, pi.lastError
		}
		s.infoMu.Unlock()
		if ps.Since.IsZero() {
			ps.Since = st.Since
		}
		if pst.GetDisconnectMessage() != "" && ps.LastError == "" {
			ps.LastError = pst.GetDisconnectMessage()
		}
		ps.Info = ps.Session
		if sess != gbgp.BGP_FSM_ESTABLISHED && ps.LastError != "" {
			ps.Info += " " + ps.LastError
		}
		st.Peers = append(st.Peers, ps)
	})
	slices.SortFunc(st.Peers, func(a, b PeerStatus) int { return a.Address.Compare(b.Address) })
	if err != nil {
		return st, fmt.Errorf("list peers: %w", err)
	}
	return st, nil
}

// FormatStatus prints st as `calicoctl node status` does: a running line,
// then an "IPv4 BGP status" and an "IPv6 BGP status" table (by the peer
// address's family) or "No IPvN peers found.".
func FormatStatus(w io.Writer, st Status, now time.Time) error {
	var b strings.Builder
	if st.Running {
		b.WriteString("xvsd is running.\n")
	} else {
		b.WriteString("xvsd's BGP speaker is not running.\n")
	}
	for _, v := range []struct {
		name string
		is4  bool
	}{{"IPv4", true}, {"IPv6", false}} {
		var rows [][]string
		for _, p := range slices.Concat(st.Peers, st.Unknown) {
			if p.Address.Is4() != v.is4 {
				continue
			}
			rows = append(rows, []string{p.Address.String(), p.Type, p.State, since(p.Since, now), p.Info})
		}
		fmt.Fprintf(&b, "\n%s BGP status\n", v.name)
		if len(rows) == 0 {
			fmt.Fprintf(&b, "No %s peers found.\n", v.name)
			continue
		}
		writeTable(&b, []string{"PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO"}, rows)
	}
	if st.UnknownConnections > 0 {
		fmt.Fprintf(&b, "\nRefused %d connections from %d addresses that are no configured peer", st.UnknownConnections, st.UnknownAddresses)
		if st.UnknownAddresses > uint64(len(st.Unknown)) {
			fmt.Fprintf(&b, " (the %d most recent listed)", len(st.Unknown))
		}
		b.WriteString(".\n")
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// since prints a time as calicoctl (BIRD) does: the time of day if it is
// today, else the date.
func since(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	if y1, m1, d1 := t.Date(); true {
		if y2, m2, d2 := now.Date(); y1 == y2 && m1 == m2 && d1 == d2 {
			return t.Format("15:04:05")
		}
	}
	return t.Format("2006-01-02")
}

// writeTable draws an ASCII table like the one calicoctl prints
// (olekukonko/tablewriter's default: centred header, left-aligned cells).
func writeTable(b *strings.Builder, head []string, rows [][]string) {
	wd := make([]int, len(head))
	for i, h := range head {
		wd[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			wd[i] = max(wd[i], len(c))
		}
	}
	sep := func() {
		b.WriteString("+")
		for _, n := range wd {
			b.WriteString(strings.Repeat("-", n+2))
			b.WriteString("+")
		}
		b.WriteString("\n")
	}
	sep()
	b.WriteString("|")
	for i, h := range head {
		pad := wd[i] - len(h)
		fmt.Fprintf(b, " %s%s%s |", strings.Repeat(" ", pad/2), h, strings.Repeat(" ", pad-pad/2))
	}
	b.WriteString("\n")
	sep()
	for _, r := range rows {
		b.WriteString("|")
		for i, c := range r {
			fmt.Fprintf(b, " %-*s |", wd[i], c)
		}
		b.WriteString("\n")
	}
	sep()
}

// RouteQuery selects routes for `xvsctl bgp routes`.
type RouteQuery struct {
	Family     Family     // "" for both
	Peer       netip.Addr // invalid: every peer (received) or the Loc-RIB's best (no peer, not advertised)
	Advertised bool       // what is sent to Peer (Adj-RIB-Out) instead of what was received from it
}

// RouteEntry is one route of a listing.
type RouteEntry struct {
	Family      Family        `json:"family"`
	Prefix      netip.Prefix  `json:"prefix"`
	NextHop     netip.Addr    `json:"nextHop"`
	Peer        netip.Addr    `json:"peer,omitzero"` // learned from; invalid for this node's own
	Best        bool          `json:"best"`
	Stale       bool          `json:"stale,omitempty"`
	ASPath      string        `json:"asPath"`
	Communities []string      `json:"communities,omitempty"`
	Direction   string        `json:"direction"` // "received", "advertised" or "local"
	Age         time.Duration `json:"age"`
}

// Routes lists routes: with no peer, the Loc-RIB (every path, best
// marked); with a peer, what was received from it or, with Advertised,
// what is advertised to it.
func (s *Speaker) Routes(ctx context.Context, q RouteQuery) ([]RouteEntry, error) {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil, ErrNotRunning
	}
	fams := []Family{IPv4, IPv6}
	if q.Family != "" {
		fams = []Family{q.Family}
	}
	var out []RouteEntry
	now := time.Now()
	for _, f := range fams {
		req := apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: gbgp.RF_IPv4_UC}
		if f == IPv6 {
			req.Family = gbgp.RF_IPv6_UC
		}
		dir := "received"
		if q.Peer.IsValid() {
			req.Name = q.Peer.String()
			req.TableType = api.TableType_TABLE_TYPE_ADJ_IN
			if q.Advertised {
				req.TableType = api.TableType_TABLE_TYPE_ADJ_OUT
				dir = "advertised"
			}
		}
		err := srv.ListPath(req, func(_ gbgp.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				pfx, ok := pathPrefix(p)
				if !ok {
					continue
				}
				e := RouteEntry{Family: f, Prefix: pfx, NextHop: pathNextHop(p), Peer: p.PeerAddress, Best: p.Best, Stale: p.Stale,
					Direction: dir, Age: now.Sub(time.Unix(p.Age, 0)).Truncate(time.Second)}
				if !p.PeerAddress.IsValid() && dir == "received" {
					e.Direction = "local"
				}
				for _, a := range p.Attrs {
					switch a := a.(type) {
					case *gbgp.PathAttributeAsPath:
						e.ASPath = strings.Trim(a.String(), "{} ")
					case *gbgp.PathAttributeCommunities:
						for _, c := range a.Value {
							e.Communities = append(e.Communities, fmt.Sprintf("%d:%d", c>>16, c&0xffff))
						}
					}
				}
				out = append(out, e)
			}
		})
		if err != nil {
			return out, fmt.Errorf("list %s routes: %w", f, err)
		}
	}
	slices.SortFunc(out, func(a, b RouteEntry) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		if c := a.Prefix.Bits() - b.Prefix.Bits(); c != 0 {
			return c
		}
		return a.Peer.Compare(b.Peer)
	})
	return out, nil
}

// FormatRoutes prints a route listing as a table.
func FormatRoutes(w io.Writer, rs []RouteEntry) error {
	var b strings.Builder
	if len(rs) == 0 {
		b.WriteString("No routes found.\n")
	} else {
		rows := make([][]string, len(rs))
		for i, r := range rs {
			best := ""
			if r.Best {
				best = "*"
			}
			if r.Stale {
				best += " stale"
			}
			peer := "local"
			if r.Peer.IsValid() {
				peer = r.Peer.String()
			}
			rows[i] = []string{string(r.Family), r.Prefix.String(), r.NextHop.String(), peer, r.Direction, best, r.ASPath, strings.Join(r.Communities, " ")}
		}
		writeTable(&b, []string{"FAMILY", "PREFIX", "NEXT HOP", "PEER", "DIRECTION", "BEST", "AS PATH", "COMMUNITIES"}, rows)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
