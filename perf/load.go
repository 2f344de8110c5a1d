package perf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/xvs-project/xvs/perf/gen"
	"github.com/xvs-project/xvs/perf/pktgen"
)

// Sample is one measurement of one load through one forwarder.
type Sample struct {
	Value     float64      `json:"value"` // in the load's unit
	Loss      float64      `json:"loss_ratio,omitempty"`
	TxMpps    float64      `json:"tx_mpps,omitempty"`    // pktgen: the sender's rate
	SinkDrops uint64       `json:"sink_drops,omitempty"` // pktgen: frames the sink's socket dropped
	Latency   *gen.Latency `json:"latency,omitempty"`
	Detail    string       `json:"detail,omitempty"`
}

// LoadInfo describes a load for reports and plots.
type LoadInfo struct {
	Kind    string  `json:"kind"` // "pktgen" or "iperf3"
	Family  int     `json:"family"`
	Size    int     `json:"size,omitempty"` // frame bytes without FCS
	Flows   int     `json:"flows,omitempty"`
	Rate    float64 `json:"rate_pps,omitempty"` // 0: as fast as possible
	Streams int     `json:"streams,omitempty"`
	Seconds float64 `json:"seconds"`
	Unit    string  `json:"unit"`
}

// Load is traffic a scenario sends from the client pod to the server pod.
type Load interface {
	Name() string
	Info() LoadInfo
	Run(ctx context.Context, pp *PodPair) (Sample, error)
}

// Pktgen is UDP from the generator: family 4 or 6, frames of size bytes
// (raised to the family's minimum), flows varying source ports, as fast as
// possible for d. The figure is forwarded packets per second: unique
// packets received over the sending time. The sink is AF_XDP where it
// works (it costs the server pod's core far less than AF_PACKET, which
// also takes each frame up the pod's stack), so the forwarder rather than
// the sink is the limit.
func Pktgen(family, size, flows int, d time.Duration) Load {
	return &pktgenLoad{family: family, size: max(size, gen.MinSize(family == 6, nil)), flows: flows, d: d, rxIO: pktgen.IOAuto}
}

// PktgenRate is Pktgen at a fixed rate: the figure is latency (p50 in µs;
// the sample carries all percentiles). The sink is AF_PACKET: an AF_XDP
// socket woken from poll(2) adds hundreds of µs at low rates on veth.
func PktgenRate(family, size int, pps float64, d time.Duration) Load {
	return &pktgenLoad{family: family, size: max(size, gen.MinSize(family == 6, nil)), flows: 1, d: d, rate: pps, rxIO: pktgen.IOAFPacket}
}

// PktgenTx is Pktgen whose figure is the sender's rate (frames the kernel
// took per second) rather than the receiver's: the ring scenario compares
// send paths, and its sink may drop what the fastest of them sends.
func PktgenTx(family, size int, d time.Duration) Load {
	l := Pktgen(family, size, 1, d).(*pktgenLoad)
	l.txFigure = true
	return l
}

type pktgenLoad struct {
	family, size, flows int
	d                   time.Duration
	rate                float64
	rxIO                pktgen.IO
	txFigure            bool
}

func (l *pktgenLoad) Name() string {
	if l.rate > 0 {
		return fmt.Sprintf("latency ipv%d %dB @%gkpps", l.family, l.size, l.rate/1e3)
	}
	if l.txFigure {
		return fmt.Sprintf("send ipv%d %dB", l.family, l.size)
	}
	return fmt.Sprintf("udp ipv%d %dB %d flow%s", l.family, l.size, l.flows, plural(l.flows))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (l *pktgenLoad) Info() LoadInfo {
	unit := "Mpps"
	if l.rate > 0 {
		unit = "µs p50"
	}
	return LoadInfo{Kind: "pktgen", Family: l.family, Size: l.size, Flows: l.flows, Rate: l.rate, Seconds: l.d.Seconds(), Unit: unit}
}

func (l *pktgenLoad) Run(ctx context.Context, pp *PodPair) (Sample, error) {
	src, dst := pp.Addrs(l.family)
	cfg := pktgen.Config{
		Mode: pktgen.ModeTxRx, IO: pp.TxIO, RxIO: l.rxIO,
		Netns: pp.ClientNS, Iface: pp.PodIf, RxNetns: pp.ServerNS, RxIface: pp.PodIf,
		DstMAC: pp.GatewayMAC, Src: src, Dst: dst, SrcPort: 1024, DstPort: 9,
		Sizes: []int{l.size}, Flows: l.flows, Rate: l.rate, Duration: l.d,
		Stream: uint16(rand.N(65536)), Linger: 200 * time.Millisecond,
	}
	r, err := pktgen.Run(ctx, cfg, nil)
	if err != nil {
		return Sample{}, err
	}
	s := Sample{Loss: r.Rx.LossRatio, Latency: &r.Rx.Latency, TxMpps: r.Tx.PPS / 1e6, SinkDrops: r.Rx.SocketDrops,
		Detail: fmt.Sprintf("tx %s %.3f Mpps, rx %s %d/%d, sink drops %d", r.Tx.IO, r.Tx.PPS/1e6, r.Rx.IO, r.Rx.Unique, r.Tx.Packets, r.Rx.SocketDrops)}
	switch {
	case l.rate > 0:
		s.Value = float64(r.Rx.Latency.P50) / 1e3
	case l.txFigure:
		s.Value = r.Tx.PPS / 1e6
	case r.Tx.Seconds > 0:
		s.Value = float64(r.Rx.Unique) / r.Tx.Seconds / 1e6
	}
	return s, nil
}

// Iperf3 is TCP from iperf3 with streams parallel streams for d; the figure
// is the receiver's Gb/s.
func Iperf3(family, streams int, d time.Duration) Load {
	return &iperfLoad{family: family, streams: streams, d: d}
}

type iperfLoad struct {
	family, streams int
	d               time.Duration
}

func (l *iperfLoad) Name() string {
	return fmt.Sprintf("tcp ipv%d iperf3 %d stream%s", l.family, l.streams, plural(l.streams))
}

func (l *iperfLoad) Info() LoadInfo {
	return LoadInfo{Kind: "iperf3", Family: l.family, Streams: l.streams, Seconds: l.d.Seconds(), Unit: "Gb/s"}
}

// ErrNoIperf3 is returned when iperf3 is not installed.
var ErrNoIperf3 = errors.New("iperf3 not installed")

func (l *iperfLoad) Run(ctx context.Context, pp *PodPair) (Sample, error) {
	if _, err := exec.LookPath("iperf3"); err != nil {
		return Sample{}, ErrNoIperf3
	}
	_, server := pp.Addrs(l.family)
	port := strconv.Itoa(20000 + rand.IntN(20000))
	secs := strconv.Itoa(max(1, int(l.d.Seconds())))
	ctx, cancel := context.WithTimeout(ctx, l.d+10*time.Second)
	defer cancel()
	srv := exec.CommandContext(ctx, "ip", "netns", "exec", pp.ServerNS, "iperf3", "-s", "-1", "-B", server.String(), "-p", port)
	if err := srv.Start(); err != nil {
		return Sample{}, fmt.Errorf("iperf3 server: %w", err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	var out []byte
	var err error
	for try := 0; try < 20; try++ {
		time.Sleep(100 * time.Millisecond)
		out, err = exec.CommandContext(ctx, "ip", "netns", "exec", pp.ClientNS, "iperf3", "-c", server.String(), "-p", port,
			"-P", strconv.Itoa(l.streams), "-t", secs, "-J").Output()
		if err == nil || ctx.Err() != nil || !refused(out) {
			break
		}
	}
	if err != nil {
		return Sample{}, fmt.Errorf("iperf3 client: %w: %.300s", err, out)
	}
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return Sample{}, fmt.Errorf("iperf3 output: %w", err)
	}
	if r.Error != "" {
		return Sample{}, fmt.Errorf("iperf3: %s", r.Error)
	}
	return Sample{Value: r.End.SumReceived.BitsPerSecond / 1e9, Detail: fmt.Sprintf("%d retransmits", r.End.SumSent.Retransmits)}, nil
}

func refused(out []byte) bool {
	var r struct {
		Error string `json:"error"`
	}
	json.Unmarshal(out, &r)
	return r.Error != "" && (strings.Contains(r.Error, "refused") || strings.Contains(r.Error, "unable to connect"))
}
