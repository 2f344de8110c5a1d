package memif

import (
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"sync"

	"github.com/xvs-project/xvs/memif"
	"github.com/xvs-project/xvs/podnet"
	"github.com/xvs-project/xvs/port"
	"github.com/xvs-project/xvs/spec"
)

// ErrConfig is wrapped by Open for a memif section it cannot serve.
var ErrConfig = errors.New("invalid memif port config")

// Driver opens memif ports: register it for spec.ModeMemif. Ports on the
// same socket (same Netns and Socket) share one listening memif.Server and
// are told apart by MemifConfig.ID; the server closes with its last port.
// A Driver is safe for concurrent use.
type Driver struct {
	// Log receives the servers' connection events; nil discards them.
	Log *slog.Logger

	mu      sync.Mutex
	servers map[sockKey]*server
}

type sockKey struct{ netns, socket string }

type server struct {
	srv  *memif.Server
	refs int
}

var _ port.Driver = (*Driver)(nil)

// Name implements port.Driver.
func (*Driver) Name() string { return "memif" }

// Validate checks a memif section on its own by spec's rules
// (MemifConfig.Validate); errors name the field and the value.
func Validate(mc *spec.MemifConfig) error {
	if mc == nil {
		return fmt.Errorf("memif: missing (mode memif needs a socket): %w", ErrConfig)
	}
	if errs := mc.Validate(); len(errs) > 0 {
		return fmt.Errorf("memif.%w: %w", errs[0], ErrConfig)
	}
	return nil
}

// Open implements port.Driver: it listens on the port's socket (inside
// MemifConfig.Netns when set) unless another port does already, and adds
// the port's interface there. The port is open and down until a peer
// connects.
func (d *Driver) Open(req port.OpenRequest) (port.Opened, error) {
	pc := req.Config
	mc := pc.Memif
	if err := Validate(mc); err != nil {
		return port.Opened{}, fmt.Errorf("port %s: %w", pc.Name, err)
	}
	if req.Umem == nil {
		return port.Opened{}, fmt.Errorf("port %s: memif: no umem", pc.Name)
	}
	room := req.Umem.FrameSize() - port.Headroom
	maxFrame := min(9216, room)
	log2 := uint8(10)
	if mc.RingSize != 0 {
		log2 = uint8(bits.TrailingZeros(uint(mc.RingSize)))
	}
	queues := max(mc.Queues, 1)
	p := newPort(req.Umem, queues, mc.Polling)
	key := sockKey{mc.Netns, mc.Socket}
	srv, err := d.acquire(key)
	if err != nil {
		p.closeFDs()
		return port.Opened{}, fmt.Errorf("port %s: %w", pc.Name, err)
	}
	ifc, err := srv.Add(memif.InterfaceConfig{
		ID: mc.ID, Name: pc.Name, Mode: memif.ModeEthernet, Secret: mc.Secret, Queues: queues,
		Log2RingSize: log2, MaxFrame: maxFrame, Polling: mc.Polling, OnState: p.onState,
	})
	if err != nil {
		d.release(key)
		p.closeFDs()
		return port.Opened{}, fmt.Errorf("port %s: %w", pc.Name, err)
	}
	p.attach(ifc, mc, func() { d.release(key) })
	return port.Opened{Port: p, MTU: min(1500, maxFrame-14)}, nil
}

func (d *Driver) acquire(k sockKey) (*memif.Server, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.servers[k]; s != nil {
		s.refs++
		return s.srv, nil
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var srv *memif.Server
	listen := func() error {
		var err error
		srv, err = memif.Listen(memif.Config{Socket: k.socket, AppName: "xvs", Logger: log})
		return err
	}
	var err error
	if k.netns == "" {
		err = listen()
	} else {
		// The socket lives in the pod's namespace for good; its accept
		// loop may run on any thread afterwards.
		err = podnet.Do(k.netns, listen)
	}
	if err != nil {
		return nil, err
	}
	if d.servers == nil {
		d.servers = make(map[sockKey]*server)
	}
	d.servers[k] = &server{srv: srv, refs: 1}
	return srv, nil
}

func (d *Driver) release(k sockKey) {
	d.mu.Lock()
	s := d.servers[k]
	if s == nil {
		d.mu.Unlock()
		return
	}
	s.refs--
	if s.refs > 0 {
		d.mu.Unlock()
		return
	}
	delete(d.servers, k)
	d.mu.Unlock()
	s.srv.Close()
}
