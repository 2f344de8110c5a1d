package config

import (
	"path/filepath"
	"strings"

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

// resolveMemif checks a memif port: kind pod, its section complete.
func resolveMemif(field string, p Port, pc *spec.PortConfig, e *errs) {
	if pc.Mode != spec.ModeMemif {
		if p.Memif != nil {
			e.str(field+".mode", p.Mode, "a memif: section needs mode memif")
		}
		return
	}
	if p.Kind != "" && pc.Kind != spec.PortPod {
		e.str(field+".kind", p.Kind, "a memif port is a pod port")
	}
	m := p.Memif
	if m == nil {
		e.missing(field+".memif", "required with mode memif (socket: /path or @name)")
		return
	}
	f := field + ".memif"
	mc := &spec.MemifConfig{Socket: m.Socket, Netns: m.Netns, ID: m.ID, Queues: m.Queues, RingSize: m.RingSize, Polling: m.Polling, Secret: m.Secret}
	switch {
	case m.Socket == "" || m.Socket == "@":
		e.str(f+".socket", m.Socket, "required: an absolute path or @name")
	case len(m.Socket) > 107:
		e.str(f+".socket", m.Socket, "longer than a unix socket address (107 bytes)")
	case m.Socket[0] != '@' && !filepath.IsAbs(m.Socket):
		e.str(f+".socket", m.Socket, "must be an absolute path or @name")
	}
	if m.Netns != "" && (!filepath.IsAbs(m.Netns) || strings.Contains(m.Netns, "..")) {
		e.str(f+".netns", m.Netns, "must be an absolute path (/proc/PID/ns/net, /run/netns/NAME)")
	}
	if m.Queues < 0 || m.Queues > 64 {
		e.num(f+".queues", m.Queues, "must be 1..64")
	}
	if r := m.RingSize; r != 0 && (r < 2 || r > 1<<14 || r&(r-1) != 0) {
		e.num(f+".ring_size", r, "must be a power of two, 2..16384")
	}
	if len(m.Secret) > 24 {
		e.num(f+".secret", len(m.Secret), "bytes: at most 24")
	}
	pc.Memif = mc
}
