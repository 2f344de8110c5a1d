package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// PingOptions shapes one ping run. Every run is bounded by count and by a
// deadline.
type PingOptions struct {
	Count    int           // echo requests (default 3)
	Interval time.Duration // between requests (default 200ms)
	Wait     time.Duration // for each reply (default 1s)
	TTL      int           // IPv4 TTL / IPv6 hop limit; 0 leaves the default
	Size     int           // payload bytes; 0 leaves the default
}

// PingResult is what ping reported.
type PingResult struct {
	Sent, Received int
	Output         string
}

var pingStatsRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// Ping sends count echo requests from namespace from (e.g. "pod1") to addr.
// It returns an error when no reply came back; Output holds what ping
// printed (ICMP errors included).
func (l *Lab) Ping(from string, addr netip.Addr, count int) (PingResult, error) {
	return l.PingWith(from, addr, PingOptions{Count: count})
}

// PingWith is Ping with options.
func (l *Lab) PingWith(from string, addr netip.Addr, o PingOptions) (PingResult, error) {
	if o.Count <= 0 {
		o.Count = 3
	}
	if o.Interval <= 0 {
		o.Interval = 200 * time.Millisecond
	}
	if o.Wait <= 0 {
		o.Wait = time.Second
	}
	deadline := time.Duration(o.Count)*o.Interval + o.Wait + time.Second
	args := []string{"ping", "-n", "-c", strconv.Itoa(o.Count),
		"-i", fmt.Sprintf("%.3f", o.Interval.Seconds()),
		"-W", strconv.Itoa(int((o.Wait + time.Second - 1) / time.Second)),
		"-w", strconv.Itoa(int((deadline + time.Second - 1) / time.Second))}
	if o.TTL > 0 {
		args = append(args, "-t", strconv.Itoa(o.TTL))
	}
	if o.Size > 0 {
		args = append(args, "-s", strconv.Itoa(o.Size))
	}
	if addr.Is6() {
		args = append(args, "-6")
	} else {
		args = append(args, "-4")
	}
	args = append(args, addr.String())
	ctx, cancel := context.WithTimeout(context.Background(), deadline+5*time.Second)
	defer cancel()
	out, err := l.ExecContext(ctx, from, args...)
	r := PingResult{Output: out}
	if m := pingStatsRE.FindStringSubmatch(out); m != nil {
		r.Sent, _ = strconv.Atoi(m[1])
		r.Received, _ = strconv.Atoi(m[2])
	}
	if err != nil {
		return r, fmt.Errorf("ping %s from %s: %d/%d replies: %w", addr, from, r.Received, r.Sent, err)
	}
	return r, nil
}

// Iperf3Result is the summary of one iperf3 TCP run.
type Iperf3Result struct {
	SentBytes     uint64
	ReceivedBytes uint64
	BitsPerSecond float64 // receiver side
	Retransmits   int
}

// Iperf3Port is where the lab's iperf3 servers listen.
const Iperf3Port = 5201

// Iperf3 runs a TCP iperf3 test from pod client to pod server for d
// (rounded up to whole seconds, at least 1), over IPv6 if v6 is set. The
// server is started for the run and stopped after it.
func (l *Lab) Iperf3(server, client string, d time.Duration, v6 bool) (Iperf3Result, error) {
	sp := l.T.PodByName(server)
	if sp == nil {
		return Iperf3Result{}, fmt.Errorf("no pod %q", server)
	}
	addr := sp.V4
	if v6 {
		addr = sp.V6
	}
	secs := int((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	srv, err := l.Start("iperf3-server", server, "iperf3", "-s", "-B", addr.String(), "-p", strconv.Itoa(Iperf3Port))
	if err != nil {
		return Iperf3Result{}, err
	}
	defer l.StopProcess(srv)
	if err := l.waitListen(server, Iperf3Port, 5*time.Second); err != nil {
		return Iperf3Result{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second+20*time.Second)
	defer cancel()
	out, err := l.ExecContext(ctx, client, "iperf3", "-c", addr.String(), "-p", strconv.Itoa(Iperf3Port),
		"-t", strconv.Itoa(secs), "-J", "--connect-timeout", "3000")
	if err != nil {
		return Iperf3Result{}, err
	}
	var j struct {
		Error string
		End   struct {
			SumSent struct {
				Bytes       uint64  `json:"bytes"`
				Retransmits int     `json:"retransmits"`
				BPS         float64 `json:"bits_per_second"`
			} `json:"sum_sent"`
			SumReceived struct {
				Bytes uint64  `json:"bytes"`
				BPS   float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		return Iperf3Result{}, fmt.Errorf("iperf3 output: %w", err)
	}
	if j.Error != "" {
		return Iperf3Result{}, fmt.Errorf("iperf3: %s", j.Error)
	}
	return Iperf3Result{
		SentBytes: j.End.SumSent.Bytes, ReceivedBytes: j.End.SumReceived.Bytes,
		BitsPerSecond: j.End.SumReceived.BPS, Retransmits: j.End.SumSent.Retransmits,
	}, nil
}

// waitListen waits until something listens on TCP port in namespace ns.
func (l *Lab) waitListen(ns string, port int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		out, err := l.Exec(ns, "ss", "-Hltn", fmt.Sprintf("sport = :%d", port))
		if err == nil && strings.TrimSpace(out) != "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on tcp port %d in %s after %v", port, ns, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
