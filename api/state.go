package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/xvs-project/xvs/api/xvspb"
)

// state is what the API added to the dataplane, kept in a JSON file so a
// restarted xvsd puts every pod port (with its addresses) and every route
// back. Ports and routes from the config file are not recorded: the config
// brings them back itself.
type state struct {
	path   string
	Ports  map[string]*xvspb.PortConfig      // by port name
	Routes map[string]*xvspb.AddRouteRequest // by prefix
}

// stateFile is the on-disk form: protojson messages, so field names match
// the API and unknown fields from a newer xvsd are tolerated.
type stateFile struct {
	Version int                        `json:"version"`
	Ports   map[string]json.RawMessage `json:"ports"`
	Routes  map[string]json.RawMessage `json:"routes"`
}

func newState(path string) *state {
	return &state{path: path, Ports: map[string]*xvspb.PortConfig{}, Routes: map[string]*xvspb.AddRouteRequest{}}
}

func (st *state) load() error {
	b, err := os.ReadFile(st.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("%s: %w", st.path, err)
	}
	uo := protojson.UnmarshalOptions{DiscardUnknown: true}
	for name, raw := range f.Ports {
		p := &xvspb.PortConfig{}
		if err := uo.Unmarshal(raw, p); err != nil {
			return fmt.Errorf("%s: ports[%q]: %w", st.path, name, err)
		}
		st.Ports[name] = p
	}
	for pfx, raw := range f.Routes {
		r := &xvspb.AddRouteRequest{}
		if err := uo.Unmarshal(raw, r); err != nil {
			return fmt.Errorf("%s: routes[%q]: %w", st.path, pfx, err)
		}
		st.Routes[pfx] = r
	}
	return nil
}

// save writes the file atomically: a crash leaves the old or the new one.
func (st *state) save() error {
	f := stateFile{Version: 1, Ports: map[string]json.RawMessage{}, Routes: map[string]json.RawMessage{}}
	for name, p := range st.Ports {
		b, err := protojson.Marshal(p)
		if err != nil {
			return err
		}
		f.Ports[name] = b
	}
	for pfx, r := range st.Routes {
		b, err := protojson.Marshal(r)
		if err != nil {
			return err
		}
		f.Routes[pfx] = b
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(st.path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(st.path), ".state-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), st.path)
}

// record applies fn to the state and saves it. Called with s.mu held, after
// the dataplane accepted the change; a failed save is logged, not returned,
// because the change itself took effect.
func (s *Server) record(fn func(*state)) {
	if s.state == nil {
		return
	}
	fn(s.state)
	if err := s.state.save(); err != nil {
		s.log.Error("save state: the change is live but will not survive a restart", "file", s.state.path, "err", err)
	}
}

// Restore replays the state file through the API's own validation: ports
// first (sorted by name), then routes. A port whose interface is gone (its
// pod died while xvsd was down) is dropped from the state with a warning;
// so is a route that no longer resolves. Only an unreadable file is an error.
func (s *Server) Restore() error {
	if s.state == nil {
		return nil
	}
	if err := s.state.load(); err != nil {
		return err
	}
	ports, routes := s.state.Ports, s.state.Routes
	if len(ports)+len(routes) == 0 {
		return nil
	}
	s.state.Ports, s.state.Routes = map[string]*xvspb.PortConfig{}, map[string]*xvspb.AddRouteRequest{}
	ctx := context.Background()
	names := make([]string, 0, len(ports))
	for n := range ports {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		exists := false
		for _, p := range s.dp.Ports() {
			exists = exists || p.Name == n
		}
		if exists {
			continue
		}
		if _, err := s.AddPort(ctx, &xvspb.AddPortRequest{Port: ports[n]}); err != nil {
			s.log.Warn("restore: port dropped", "port", n, "err", err)
			continue
		}
		s.log.Info("restore: port re-adopted", "port", n, "addresses", ports[n].GetAddresses())
	}
	pfxs := make([]string, 0, len(routes))
	for p := range routes {
		pfxs = append(pfxs, p)
	}
	slices.Sort(pfxs)
	for _, p := range pfxs {
		if _, err := s.AddRoute(ctx, routes[p]); err != nil {
			s.log.Warn("restore: route dropped", "prefix", p, "err", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.save()
}
