package bgp

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descSessions   = prometheus.NewDesc("xvs_bgp_sessions", "BGP sessions by FSM state.", []string{"state"}, nil)
	descPeerUp     = prometheus.NewDesc("xvs_bgp_peer_up", "1 if the session with the peer is Established.", []string{"peer", "type"}, nil)
	descRoutes     = prometheus.NewDesc("xvs_bgp_peer_routes", "Prefixes per peer: received (Adj-RIB-In) and accepted.", []string{"peer", "kind"}, nil)
	descUpdates    = prometheus.NewDesc("xvs_bgp_updates_total", "UPDATE messages per peer and direction.", []string{"peer", "direction"}, nil)
	descWithdraws  = prometheus.NewDesc("xvs_bgp_withdrawn_prefixes_total", "Withdrawn prefixes per peer and direction.", []string{"peer", "direction"}, nil)
	descMalformed  = prometheus.NewDesc("xvs_bgp_malformed_updates_total", "UPDATEs handled by RFC 7606 or that reset the session, per peer.", []string{"peer"}, nil)
	descFlaps      = prometheus.NewDesc("xvs_bgp_session_flaps_total", "Times an Established session went down, per peer.", []string{"peer"}, nil)
	descSinkRoutes = prometheus.NewDesc("xvs_bgp_fib_changes_total", "Route changes handed to the FIB: add or delete.", []string{"op"}, nil)
	descBatches    = prometheus.NewDesc("xvs_bgp_fib_batches_total", "Batches handed to the FIB.", nil, nil)
	descSinkErrors = prometheus.NewDesc("xvs_bgp_fib_errors_total", "Batches the FIB refused (retried).", nil, nil)
	descInstalled  = prometheus.NewDesc("xvs_bgp_learned_prefixes", "Prefixes with a best path learned from a peer.", nil, nil)
	descHeld       = prometheus.NewDesc("xvs_bgp_held_prefixes", "Learned prefixes out of the FIB because none of their next hops is reachable.", nil, nil)
	descUnusableNH = prometheus.NewDesc("xvs_bgp_unusable_next_hops", "BGP next hops found unreachable at the last check (per announcing peer).", nil, nil)
	descUnknown    = prometheus.NewDesc("xvs_bgp_unknown_peer_connections_total", "Connections refused because their address is no configured peer.", nil, nil)
	descUnknownIPs = prometheus.NewDesc("xvs_bgp_unknown_peer_addresses_total", "Addresses that connected without being a configured peer (one row each in node status, the 16 most recent).", nil, nil)
	descUnknownNow = prometheus.NewDesc("xvs_bgp_unknown_peers", "Unknown-peer rows in node status now (at most 16).", nil, nil)
)

// Collector exports the speaker's status as Prometheus metrics.
func (s *Speaker) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Speaker }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSessions, descPeerUp, descRoutes, descUpdates, descWithdraws, descMalformed, descFlaps, descSinkRoutes, descBatches, descSinkErrors, descInstalled, descHeld, descUnusableNH, descUnknown, descUnknownIPs, descUnknownNow} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, _ := c.s.status(ctx, false)
	states := map[string]float64{"Idle": 0, "Connect": 0, "Active": 0, "OpenSent": 0, "OpenConfirm": 0, "Established": 0}
	g, k := prometheus.GaugeValue, prometheus.CounterValue
	for _, p := range st.Peers {
		a := p.Address.String()
		states[p.Session]++
		up := 0.0
		if p.Session == "Established" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descPeerUp, g, up, a, p.Type)
		ch <- prometheus.MustNewConstMetric(descRoutes, g, float64(p.Received), a, "received")
		ch <- prometheus.MustNewConstMetric(descRoutes, g, float64(p.Accepted), a, "accepted")
		ch <- prometheus.MustNewConstMetric(descUpdates, k, float64(p.UpdatesReceived), a, "received")
		ch <- prometheus.MustNewConstMetric(descUpdates, k, float64(p.UpdatesSent), a, "sent")
		ch <- prometheus.MustNewConstMetric(descWithdraws, k, float64(p.WithdrawsReceived), a, "received")
		ch <- prometheus.MustNewConstMetric(descWithdraws, k, float64(p.WithdrawsSent), a, "sent")
		ch <- prometheus.MustNewConstMetric(descMalformed, k, float64(p.Malformed), a)
		ch <- prometheus.MustNewConstMetric(descFlaps, k, float64(p.Flaps), a)
	}
	for s, n := range states {
		ch <- prometheus.MustNewConstMetric(descSessions, g, n, s)
	}
	r := st.RIB
	ch <- prometheus.MustNewConstMetric(descSinkRoutes, k, float64(r.RoutesAdded), "add")
	ch <- prometheus.MustNewConstMetric(descSinkRoutes, k, float64(r.RoutesDeleted), "delete")
	ch <- prometheus.MustNewConstMetric(descBatches, k, float64(r.Batches))
	ch <- prometheus.MustNewConstMetric(descSinkErrors, k, float64(r.SinkErrors))
	ch <- prometheus.MustNewConstMetric(descInstalled, g, float64(r.Installed))
	ch <- prometheus.MustNewConstMetric(descHeld, g, float64(r.Held))
	ch <- prometheus.MustNewConstMetric(descUnusableNH, g, float64(r.UnusableNextHops))
	ch <- prometheus.MustNewConstMetric(descUnknown, k, float64(st.UnknownConnections))
	ch <- prometheus.MustNewConstMetric(descUnknownIPs, k, float64(st.UnknownAddresses))
	ch <- prometheus.MustNewConstMetric(descUnknownNow, g, float64(len(st.Unknown)))
}
