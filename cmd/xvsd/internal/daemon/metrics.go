package daemon

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvs-project/xvs/api"
	"github.com/xvs-project/xvs/dataplane"
)

// collector exposes the switch's counters at scrape time, so there is no
// second copy of them to keep in sync.
type collector struct {
	sw api.Dataplane

	drops, events                    *prometheus.Desc
	rxPkts, rxBytes, txPkts, txBytes *prometheus.Desc
	txDrops, portUp, portInfo        *prometheus.Desc
	kernelDrops                      *prometheus.Desc
	ready, routes                    *prometheus.Desc
}

func newCollector(sw api.Dataplane) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("xvs_"+name, help, labels, nil)
	}
	return &collector{
		sw:          sw,
		drops:       d("drops_total", "Frames the dataplane dropped, by reason.", "reason"),
		events:      d("events_total", "Things the dataplane did, by event.", "event"),
		rxPkts:      d("port_rx_packets_total", "Frames received on a port.", "port"),
		rxBytes:     d("port_rx_bytes_total", "Bytes received on a port.", "port"),
		txPkts:      d("port_tx_packets_total", "Frames sent on a port.", "port"),
		txBytes:     d("port_tx_bytes_total", "Bytes sent on a port.", "port"),
		txDrops:     d("port_tx_drops_total", "Frames a port's transmit ring refused.", "port"),
		kernelDrops: d("port_kernel_drops_total", "Frames the kernel dropped on a port's AF_XDP socket, by reason.", "port", "reason"),
		portUp:      d("port_up", "1 if the port is up.", "port"),
		portInfo:    d("port_info", "Port kind and the mode it actually runs in (always 1).", "port", "kind", "mode"),
		ready:       d("ready", "1 once the dataplane forwards."),
		routes:      d("fib_routes", "Routes in the main table, by address family.", "family"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.drops, c.events, c.rxPkts, c.rxBytes, c.txPkts, c.txBytes, c.txDrops, c.kernelDrops, c.portUp, c.portInfo, c.ready, c.routes} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	cs := c.sw.Counters()
	for i, name := range dataplane.DropNames() {
		if i < len(cs.Drops) {
			ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(cs.Drops[i]), name)
		}
	}
	for i, name := range dataplane.EventNames() {
		if i < len(cs.Events) {
			ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(cs.Events[i]), name)
		}
	}
	for _, p := range c.sw.Ports() {
		st := p.Stats
		ch <- prometheus.MustNewConstMetric(c.rxPkts, prometheus.CounterValue, float64(st.RxPackets), p.Name)
		ch <- prometheus.MustNewConstMetric(c.rxBytes, prometheus.CounterValue, float64(st.RxBytes), p.Name)
		ch <- prometheus.MustNewConstMetric(c.txPkts, prometheus.CounterValue, float64(st.TxPackets), p.Name)
		ch <- prometheus.MustNewConstMetric(c.txBytes, prometheus.CounterValue, float64(st.TxBytes), p.Name)
		ch <- prometheus.MustNewConstMetric(c.txDrops, prometheus.CounterValue, float64(st.TxDrops), p.Name)
		if p.Mode.XDP() {
			for _, k := range []struct {
				reason string
				v      uint64
			}{{"rx-dropped", st.KernelRxDropped}, {"rx-ring-full", st.KernelRxRingFull}, {"fill-ring-empty", st.KernelFillEmpty}, {"tx-invalid", st.KernelTxInvalid}} {
				ch <- prometheus.MustNewConstMetric(c.kernelDrops, prometheus.CounterValue, float64(k.v), p.Name, k.reason)
			}
		}
		ch <- prometheus.MustNewConstMetric(c.portUp, prometheus.GaugeValue, b2f(p.Up), p.Name)
		ch <- prometheus.MustNewConstMetric(c.portInfo, prometheus.GaugeValue, 1, p.Name, p.Kind.String(), p.Mode.String())
	}
	ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, b2f(c.sw.Ready()))
	var v4, v6 int
	if f := c.sw.FIB(); f != nil {
		v4, v6 = f.Count(0)
	} else {
		for _, r := range c.sw.Routes() {
			if r.Table != 0 {
				continue
			}
			if r.Prefix.Addr().Is4() {
				v4++
			} else {
				v6++
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(c.routes, prometheus.GaugeValue, float64(v4), "ipv4")
	ch <- prometheus.MustNewConstMetric(c.routes, prometheus.GaugeValue, float64(v6), "ipv6")
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
