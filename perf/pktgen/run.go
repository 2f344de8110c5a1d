package pktgen

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xvs-project/xvs/perf/gen"
	"github.com/xvs-project/xvs/perf/pktio"
)

// TxResult is what the sender did.
type TxResult struct {
	IO      string  `json:"io"`
	Packets uint64  `json:"packets"`
	Bytes   uint64  `json:"bytes"`
	Seconds float64 `json:"seconds"`
	PPS     float64 `json:"pps"`
	Gbps    float64 `json:"gbps"` // frame bytes, no FCS or preamble
	Retries uint64  `json:"retries"`
	Stopped string  `json:"stopped"` // count, duration, context
}

// RxResult is what the sink counted.
type RxResult struct {
	IO          string  `json:"io"`
	SocketDrops uint64  `json:"socket_drops"`
	Seconds     float64 `json:"seconds"` // first to last generator frame
	PPS         float64 `json:"pps"`
	Gbps        float64 `json:"gbps"`
	gen.Stats
}

// Result is a run's outcome; it marshals to the command's JSON.
type Result struct {
	Mode    Mode      `json:"mode"`
	Iface   string    `json:"iface"`
	RxIface string    `json:"rx_iface,omitempty"`
	Family  string    `json:"family"`
	VXLAN   bool      `json:"vxlan"`
	Sizes   []int     `json:"sizes"`
	Flows   int       `json:"flows"`
	Rate    float64   `json:"rate_pps"`
	Started time.Time `json:"started"`
	IONote  string    `json:"io_note,omitempty"`
	Tx      *TxResult `json:"tx,omitempty"`
	Rx      *RxResult `json:"rx,omitempty"`
}

// live counters, updated once per batch, read by the progress printer.
type live struct {
	txPkts, rxPkts atomic.Uint64
}

// Run performs one bounded run. Progress lines go to logw when cfg.Progress.
func Run(ctx context.Context, cfg Config, logw io.Writer) (*Result, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if logw == nil {
		logw = io.Discard
	}
	res := &Result{Mode: cfg.Mode, Iface: cfg.Iface, Flows: cfg.Flows, Rate: cfg.Rate, VXLAN: cfg.VXLAN != nil}
	var (
		tx   pktio.Tx
		rx   pktio.Rx
		tp   *gen.Template
		sink *gen.Sink
	)
	defer func() {
		if tx != nil {
			tx.Close()
		}
	}()
	for _, ns := range []string{cfg.Netns, cfg.RxNetns} {
		if ns == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); err != nil || strings.ContainsRune(ns, '/') {
			return nil, usage("network namespace %q not found in /run/netns", ns)
		}
	}
	if cfg.sends() {
		res.Family = "ipv4"
		if cfg.Src.Is6() {
			res.Family = "ipv6"
		}
		var ifi *net.Interface
		err := pktio.InNetns(cfg.Netns, func() error {
			var err error
			if ifi, err = checkIface(cfg.Iface, cfg.Netns); err != nil {
				return err
			}
			tx, res.IONote, err = openTx(cfg)
			return err
		})
		if err != nil {
			return nil, err
		}
		tc := gen.Config{
			SrcMAC: cfg.SrcMAC, DstMAC: cfg.DstMAC, Src: cfg.Src, Dst: cfg.Dst,
			SrcPort: cfg.SrcPort, DstPort: cfg.DstPort, Flows: cfg.Flows, FlowBy: cfg.FlowBy,
			Sizes: cfg.Sizes, Stream: cfg.Stream, VXLAN: cfg.VXLAN,
		}
		if tc.SrcMAC == nil {
			tc.SrcMAC = ifi.HardwareAddr
		}
		maxFrame := ifi.MTU + 14
		if cfg.IMIX {
			tc.Sizes = gen.FitIMIX(gen.MinSize(cfg.Src.Is6(), cfg.VXLAN), maxFrame)
		}
		for _, n := range tc.Sizes {
			if n > maxFrame {
				return nil, usage("size %d does not fit %s: MTU %d allows frames up to %d bytes", n, cfg.Iface, ifi.MTU, maxFrame)
			}
		}
		var err2 error
		if tp, err2 = gen.New(tc); err2 != nil {
			return nil, usage("%v", err2)
		}
		res.Sizes = tc.Sizes
	}
	if cfg.receives() {
		ifname, ns := cfg.Iface, cfg.Netns
		if cfg.Mode == ModeTxRx {
			if cfg.RxIface != "" {
				ifname = cfg.RxIface
			}
			if cfg.RxNetns != "" {
				ns = cfg.RxNetns
			}
			res.RxIface = ifname
		}
		err := pktio.InNetns(ns, func() error {
			if _, err := checkIface(ifname, ns); err != nil {
				return err
			}
			var err error
			var note string
			rx, note, err = openRx(cfg, ifname)
			if note != "" {
				res.IONote = strings.TrimPrefix(res.IONote+"; "+note, "; ")
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		sink = gen.NewSink(gen.Filter{Stream: cfg.Stream, DstPort: cfg.DstPort, VXLAN: cfg.VXLAN != nil})
	}

	var lv live
	res.Started = time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deadline := res.Started.Add(MaxDuration)
	if cfg.Duration > 0 {
		deadline = res.Started.Add(cfg.Duration)
	}

	var rxWG, progWG sync.WaitGroup
	var rxStop atomic.Bool
	var rxErr error
	var rxFirst, rxLast int64
	var rxDrops uint64
	if rx != nil {
		res.Rx = &RxResult{IO: rx.Name()}
		rxWG.Add(1)
		go func() {
			defer rxWG.Done()
			rxFirst, rxLast, rxErr = receive(ctx, rx, sink, &rxStop, &lv, cfg, deadline)
			rxDrops = rx.Drops()
			rx.Close()
		}()
	}
	progCtx, progCancel := context.WithCancel(ctx)
	if cfg.Progress {
		progWG.Add(1)
		go func() {
			defer progWG.Done()
			progress(progCtx, logw, &lv, res.Started)
		}()
	}

	var txErr error
	if tx != nil {
		res.Tx = &TxResult{IO: tx.Name()}
		txErr = send(ctx, tx, tp, cfg, deadline, res.Tx, &lv)
		if rx != nil {
			// Let the last frames through the forwarder.
			select {
			case <-time.After(cfg.Linger):
			case <-ctx.Done():
			}
			rxStop.Store(true)
		}
	}
	rxWG.Wait()
	progCancel()
	progWG.Wait()
	if rx != nil {
		var sent uint64
		if res.Tx != nil {
			sent = res.Tx.Packets
		}
		st := sink.Stats(sent)
		res.Rx.Stats = st
		res.Rx.SocketDrops = rxDrops
		if rxLast > rxFirst {
			res.Rx.Seconds = float64(rxLast-rxFirst) / 1e9
			res.Rx.PPS = float64(st.Unique) / res.Rx.Seconds
			res.Rx.Gbps = float64(st.Bytes) * 8 / res.Rx.Seconds / 1e9
		}
	}
	if txErr != nil {
		return res, txErr
	}
	return res, rxErr
}

// checkIface looks the interface up in the current namespace and checks
// that it is up.
func checkIface(name, ns string) (*net.Interface, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		where := "this namespace"
		if ns != "" {
			where = "namespace " + ns
		}
		return nil, usage("interface %q not found in %s", name, where)
	}
	if ifi.Flags&net.FlagUp == 0 {
		return nil, usage("interface %s is down", name)
	}
	if ifi.Flags&net.FlagLoopback != 0 {
		return nil, usage("interface %s is a loopback; give an Ethernet interface", name)
	}
	return ifi, nil
}

// send runs the sending loop until the count, the deadline or ctx.
func send(ctx context.Context, tx pktio.Tx, tp *gen.Template, cfg Config, deadline time.Time, r *TxResult, lv *live) error {
	pacer := pktio.NewPacer(cfg.Rate, cfg.Batch)
	nsizes := len(tp.Sizes())
	var seq uint32
	var sent, bytes uint64
	start := time.Now()
	r.Stopped = "count"
	for i := 0; ; i++ {
		if cfg.Count > 0 && sent >= cfg.Count {
			break
		}
		if i&15 == 0 {
			if ctx.Err() != nil {
				r.Stopped = "context"
				break
			}
			if time.Now().After(deadline) {
				r.Stopped = "duration"
				break
			}
		}
		want := cfg.Batch
		if cfg.Count > 0 {
			want = int(min(uint64(want), cfg.Count-sent))
		}
		n := pacer.Take(want, deadline)
		if n == 0 {
			continue
		}
		bufs := tx.Buffers(n)
		if len(bufs) == 0 {
			runtime.Gosched()
			continue
		}
		now := pktio.Now()
		for k := range bufs {
			s := seq + uint32(k)
			bufs[k] = bufs[k][:tp.Fill(bufs[k], int(s)%nsizes, int(s)%cfg.Flows, s, now)]
			bytes += uint64(len(bufs[k]))
		}
		// Sequence numbers are handed out once: retry what the
		// kernel refused until it takes it.
		done := 0
		for done < len(bufs) {
			k, err := tx.Send(bufs[done:])
			if err != nil {
				return fmt.Errorf("send on %s: %w", cfg.Iface, err)
			}
			done += k
			if done < len(bufs) {
				r.Retries++
				if time.Now().After(deadline) {
					break
				}
				runtime.Gosched()
			}
		}
		seq += uint32(done)
		sent += uint64(done)
		lv.txPkts.Store(sent)
	}
	r.Seconds = time.Since(start).Seconds()
	r.Packets, r.Bytes = sent, bytes
	if r.Seconds > 0 {
		r.PPS = float64(sent) / r.Seconds
		r.Gbps = float64(bytes) * 8 / r.Seconds / 1e9
	}
	return nil
}

// receive runs the sink until stop, ctx, or (rx mode) the count or deadline.
func receive(ctx context.Context, rx pktio.Rx, sink *gen.Sink, stop *atomic.Bool, lv *live, cfg Config, deadline time.Time) (first, last int64, err error) {
	var got uint64
	for !stop.Load() && ctx.Err() == nil {
		if cfg.Mode == ModeRx {
			if cfg.Count > 0 && got >= cfg.Count {
				return
			}
			if time.Now().After(deadline) {
				return
			}
		}
		fs, err := rx.Receive()
		if err != nil {
			return first, last, fmt.Errorf("receive: %w", err)
		}
		if len(fs) == 0 {
			continue
		}
		now := pktio.Now()
		ours := 0
		for _, f := range fs {
			if sink.Offer(f, now) {
				ours++
			}
		}
		if ours > 0 {
			if first == 0 {
				first = now
			}
			last = now
			got += uint64(ours)
			lv.rxPkts.Store(got)
		}
	}
	return
}

func progress(ctx context.Context, w io.Writer, lv *live, start time.Time) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var ptx, prx uint64
	prev := start
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			tx, rx := lv.txPkts.Load(), lv.rxPkts.Load()
			d := now.Sub(prev).Seconds()
			fmt.Fprintf(w, "%6.1fs  tx %9d (%7.3f Mpps)  rx %9d (%7.3f Mpps)\n",
				now.Sub(start).Seconds(), tx, float64(tx-ptx)/d/1e6, rx, float64(rx-prx)/d/1e6)
			ptx, prx, prev = tx, rx, now
		}
	}
}

// openTx opens the sender the IO choice asks for. It runs in the
// interface's namespace.
func openTx(cfg Config) (pktio.Tx, string, error) {
	o := pktio.Options{Batch: cfg.Batch}
	big := 1514
	if !cfg.IMIX {
		big = slices.Max(cfg.Sizes)
	}
	switch cfg.IO {
	case IOAsavie:
		if big > pktio.XDPMaxFrame {
			return nil, "", usage("size %d is above %d, the largest af_xdp frame", big, pktio.XDPMaxFrame)
		}
		tx, err := pktio.NewAsavieTx(cfg.Iface, o)
		if err != nil {
			return nil, "", err
		}
		return tx, "", nil
	case IOAFXDP:
		if big > pktio.XDPMaxFrame {
			return nil, "", usage("size %d is above %d, the largest af_xdp frame; use -io afpacket", big, pktio.XDPMaxFrame)
		}
		tx, err := pktio.NewXDPTx(cfg.Iface, o)
		if err != nil {
			return nil, "", fmt.Errorf("af_xdp on %s: %w", cfg.Iface, err)
		}
		return tx, "", nil
	case IOAuto:
		var note string
		if big > pktio.XDPMaxFrame {
			note = fmt.Sprintf("frames up to %d bytes do not fit af_xdp; using af_packet", big)
		} else {
			tx, err := pktio.NewXDPTx(cfg.Iface, o)
			if err == nil {
				return tx, "", nil
			}
			note = fmt.Sprintf("af_xdp unavailable (%v); using af_packet", err)
		}
		atx, err := pktio.NewAFPacketTx(cfg.Iface, o)
		return atx, note, err
	}
	tx, err := pktio.NewAFPacketTx(cfg.Iface, o)
	return tx, "", err
}

// openRx opens the sink the RxIO choice asks for, in the interface's
// namespace.
func openRx(cfg Config, ifname string) (pktio.Rx, string, error) {
	o := pktio.Options{Batch: cfg.Batch}
	switch cfg.RxIO {
	case IOAFXDP:
		rx, err := pktio.NewXDPRx(ifname, o)
		if err != nil {
			return nil, "", fmt.Errorf("af_xdp sink on %s: %w", ifname, err)
		}
		return rx, "", nil
	case IOAuto:
		rx, err := pktio.NewXDPRx(ifname, o)
		if err == nil {
			return rx, "", nil
		}
		arx, err2 := pktio.NewAFPacketRx(ifname, o)
		return arx, fmt.Sprintf("af_xdp sink unavailable (%v); using af_packet", err), err2
	}
	rx, err := pktio.NewAFPacketRx(ifname, o)
	return rx, "", err
}
