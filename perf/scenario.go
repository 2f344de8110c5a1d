package perf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Scenario is a set of loads run through competing forwarders.
type Scenario struct {
	Name       string
	Forwarders []Forwarder // the first is the baseline of every ratio
	Loads      []Load
	Rounds     int // A B A B rounds per load; 0: 3
	// Probe, when true, checks each forwarder passes a short trickle of
	// traffic before measuring, and skips it otherwise.
	Probe bool
}

// Report is a scenario's outcome.
type Report struct {
	Scenario   string       `json:"scenario"`
	Command    string       `json:"command,omitempty"`
	Machine    Machine      `json:"machine"`
	Started    time.Time    `json:"started"`
	Seconds    float64      `json:"seconds"`
	Rounds     int          `json:"rounds"`
	Forwarders []FwdStatus  `json:"forwarders"`
	Results    []LoadResult `json:"results"`
}

// Machine is where the run happened.
type Machine struct {
	CPUs   int    `json:"cpus"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	CPU    string `json:"cpu,omitempty"`
	Shared string `json:"shared,omitempty"`
}

// FwdStatus says whether a forwarder ran and, if not, why.
type FwdStatus struct {
	Name    string `json:"name"`
	Ran     bool   `json:"ran"`
	Skipped string `json:"skipped,omitempty"`
}

// LoadResult is one load across forwarders.
type LoadResult struct {
	Load LoadInfo    `json:"load"`
	Name string      `json:"name"`
	By   []FwdResult `json:"by_forwarder"`
}

// FwdResult is one load through one forwarder.
type FwdResult struct {
	Forwarder string   `json:"forwarder"`
	Samples   []Sample `json:"samples"`
	Median    float64  `json:"median"`
	// Ratio is Median over the baseline's median (0 when either is
	// missing). For latency loads lower is better.
	Ratio      float64  `json:"ratio"`
	MedianLoss float64  `json:"median_loss_ratio"`
	MedianTx   float64  `json:"median_tx_mpps,omitempty"` // pktgen: the sender's rate
	P50        float64  `json:"p50_us,omitempty"`         // latency medians over samples, µs
	P99        float64  `json:"p99_us,omitempty"`
	P999       float64  `json:"p999_us,omitempty"`
	Errors     []string `json:"errors,omitempty"`
}

// Run runs the scenario; log gets one line per step (nil: none).
func (s *Scenario) Run(ctx context.Context, log func(string, ...any)) (*Report, error) {
	if log == nil {
		log = func(string, ...any) {}
	}
	rounds := s.Rounds
	if rounds <= 0 {
		rounds = 3
	}
	rep := &Report{Scenario: s.Name, Machine: machine(), Started: time.Now(), Rounds: rounds}
	type active struct {
		f    Forwarder
		pp   *PodPair
		name string
	}
	var act []active
	defer func() {
		for _, a := range act {
			if err := a.f.Stop(); err != nil {
				log("stop %s: %v", a.name, err)
			}
		}
	}()
	names := map[string]int{}
	for _, f := range s.Forwarders {
		st := FwdStatus{Name: f.Name()}
		if names[st.Name]++; names[st.Name] > 1 {
			st.Name = fmt.Sprintf("%s#%d", st.Name, names[st.Name])
		}
		pp, err := f.Start(ctx)
		if err == nil && s.Probe {
			if err = probe(ctx, pp); err != nil {
				f.Stop()
				err = skipf("does not forward: %v", err)
			}
		}
		switch {
		case err == nil:
			st.Ran = true
			act = append(act, active{f, pp, st.Name})
			log("forwarder %s: up (node %s)", st.Name, pp.Node)
		case errors.Is(err, ErrSkip):
			st.Skipped = strings.TrimPrefix(err.Error(), ErrSkip.Error()+": ")
			log("forwarder %s: skipped: %s", f.Name(), st.Skipped)
		default:
			return nil, fmt.Errorf("start %s: %w", f.Name(), err)
		}
		rep.Forwarders = append(rep.Forwarders, st)
	}
	if len(act) == 0 {
		return rep, errors.New("no forwarder could run")
	}
	for _, l := range s.Loads {
		lr := LoadResult{Load: l.Info(), Name: l.Name()}
		lr.By = make([]FwdResult, len(act))
		for i, a := range act {
			lr.By[i].Forwarder = a.name
		}
		for r := 0; r < rounds; r++ {
			for i, a := range act {
				if ctx.Err() != nil {
					return rep, ctx.Err()
				}
				var smp Sample
				var err error
				if a.pp.refresh != nil {
					err = a.pp.refresh()
				}
				if err == nil {
					smp, err = l.Run(ctx, a.pp)
				}
				if err != nil {
					lr.By[i].Errors = append(lr.By[i].Errors, err.Error())
					log("%s via %s round %d: %v", l.Name(), a.name, r+1, err)
					continue
				}
				lr.By[i].Samples = append(lr.By[i].Samples, smp)
				log("%s via %s round %d: %.3f %s (%s)", l.Name(), a.name, r+1, smp.Value, lr.Load.Unit, smp.Detail)
			}
		}
		summarise(&lr)
		rep.Results = append(rep.Results, lr)
	}
	rep.Seconds = time.Since(rep.Started).Seconds()
	return rep, nil
}

func summarise(lr *LoadResult) {
	for i := range lr.By {
		b := &lr.By[i]
		var v, loss, tx, p50, p99, p999 []float64
		for _, s := range b.Samples {
			v = append(v, s.Value)
			tx = append(tx, s.TxMpps)
			loss = append(loss, s.Loss)
			if s.Latency != nil {
				p50 = append(p50, float64(s.Latency.P50)/1e3)
				p99 = append(p99, float64(s.Latency.P99)/1e3)
				p999 = append(p999, float64(s.Latency.P999)/1e3)
			}
		}
		b.Median, b.MedianLoss, b.MedianTx = Median(v), Median(loss), Median(tx)
		b.P50, b.P99, b.P999 = Median(p50), Median(p99), Median(p999)
	}
	base := lr.By[0].Median
	for i := range lr.By {
		if base > 0 && len(lr.By[i].Samples) > 0 {
			lr.By[i].Ratio = lr.By[i].Median / base
		}
	}
}

// Median of v (the mean of the middle two for an even count); 0 if empty.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// probe sends a trickle of IPv4 and IPv6 through pp and wants most of it.
func probe(ctx context.Context, pp *PodPair) error {
	for _, fam := range []int{4, 6} {
		l := PktgenRate(fam, 128, 2000, 250*time.Millisecond)
		s, err := l.Run(ctx, pp)
		if err != nil {
			return err
		}
		if s.Loss > 0.5 {
			return fmt.Errorf("ipv%d probe lost %.0f%%", fam, 100*s.Loss)
		}
	}
	return nil
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}
