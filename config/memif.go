package config

import (
	"github.com/xvs-project/xvs/spec"
)

// PortMemif is a port's memif: section (mode: memif). xvsd listens as the
// memif server; the pod's application connects.
type PortMemif struct {
	// Socket is an absolute file path, or "@name" for an abstract socket
	// (in Netns when set).
	Socket string `yaml:"socket"`
	// Netns is the network namespace the socket is opened in, e.g. the
	// pod's /proc/PID/ns/net or /run/netns/NAME; empty: xvsd's own.
	Netns    string `yaml:"netns"`
	ID       uint32 `yaml:"id"`
	Queues   int    `yaml:"queues"`
	RingSize int    `yaml:"ring_size"`
	Polling  bool   `yaml:"polling"`
	Secret   string `yaml:"secret"`
}

// resolveMemif checks a memif port by spec's rules (spec.ValidateMemif),
// the ones the switch and the driver hold it to as well.
func resolveMemif(field string, p Port, pc *spec.PortConfig, e *errs) {
	var mc *spec.MemifConfig
	if m := p.Memif; m != nil {
		mc = &spec.MemifConfig{Socket: m.Socket, Netns: m.Netns, ID: m.ID, Queues: m.Queues, RingSize: m.RingSize, Polling: m.Polling, Secret: m.Secret}
	}
	if errs := spec.ValidateMemif(pc.Mode, pc.Kind, mc); len(errs) > 0 {
		e.shared(field, errs, map[string]string{"mode": p.Mode, "kind": p.Kind})
		return
	}
	if pc.Mode == spec.ModeMemif {
		pc.Memif = mc
	}
}
