package cniserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/xvs-project/xvs/ipam"
)

// record is what the IPAM store does not hold of an endpoint: the netns,
// the mode the network config asked for, the MTU. One file per host end,
// replaced atomically, so a crash leaves the old record or the new one.
type record struct {
	Handle    ipam.Handle    `json:"handle"`
	NetNS     string         `json:"netns"`
	Pod       string         `json:"pod,omitempty"`
	Namespace string         `json:"namespace,omitempty"`
	Mode      string         `json:"mode,omitempty"`
	HostIf    string         `json:"hostIf"`
	MTU       int            `json:"mtu,omitempty"`
	Addrs     []netip.Prefix `json:"addrs"`
	// Memifs are the pod's memif ports, each with its own addresses.
	Memifs []memifRecord `json:"memifs,omitempty"`
}

func (s *Server) recordPath(hostIf string) string {
	return filepath.Join(s.opt.StateDir, hostIf+".json")
}

func (s *Server) writeRecord(r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	p := s.recordPath(r.HostIf)
	f, err := os.CreateTemp(s.opt.StateDir, ".rec-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}

func (s *Server) readRecord(hostIf string) (*record, error) {
	b, err := os.ReadFile(s.recordPath(hostIf))
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("endpoint record %s: %w", hostIf, err)
	}
	return &r, nil
}

func (s *Server) removeRecord(hostIf string) {
	if err := os.Remove(s.recordPath(hostIf)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("remove endpoint record", "port", hostIf, "err", err)
	}
}

func (s *Server) records() ([]*record, error) {
	ents, err := os.ReadDir(s.opt.StateDir)
	if err != nil {
		return nil, err
	}
	var rs []*record
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, ".json") || !isHostIfName(strings.TrimSuffix(n, ".json")) {
			continue
		}
		r, err := s.readRecord(strings.TrimSuffix(n, ".json"))
		if err != nil {
			s.log.Warn("skipping endpoint record", "file", n, "err", err)
			continue
		}
		rs = append(rs, r)
	}
	return rs, nil
}
