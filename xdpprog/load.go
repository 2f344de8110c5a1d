package xdpprog

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
)

// The compiled objects (gen.go), parsed once; every load works on a copy.
var (
	xdpSpec = sync.OnceValues(loadXdp)
	tcSpec  = sync.OnceValues(loadTc)
)

// newMap creates the map name as the C object defines it (xdp.c's; every
// object has the same definitions, from xvs.h), with max entries.
func newMap(name string, max uint32) (*ebpf.Map, error) {
	spec, err := xdpSpec()
	if err != nil {
		return nil, err
	}
	ms, ok := spec.Maps[name]
	if !ok {
		return nil, fmt.Errorf("map %s: not in the object", name)
	}
	ms = ms.Copy()
	ms.MaxEntries = max
	m, err := ebpf.NewMap(ms)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	return m, nil
}

// loadProgram loads program prog of the object spec with maps in place of
// the object's maps of the same names (the ones the Go side created and
// shares between programs) and the object's constants set to consts.
// Every map prog uses must be in maps, but for the object's constants
// (.rodata): a map the program made for itself would hold state nobody
// else sees, counters read as zero, destinations never found.
func loadProgram(objSpec func() (*ebpf.CollectionSpec, error), prog string, maps map[string]*ebpf.Map, consts map[string]any) (*ebpf.Program, error) {
	spec, err := objSpec()
	if err != nil {
		return nil, err
	}
	spec = spec.Copy()
	ps, ok := spec.Programs[prog]
	if !ok {
		return nil, fmt.Errorf("load %s: not in the object", prog)
	}
	for _, ins := range ps.Instructions {
		if name := ins.Reference(); ins.IsLoadFromMap() && maps[name] == nil && !strings.HasPrefix(name, ".") {
			return nil, fmt.Errorf("load %s: it uses map %s, which it was not given", prog, name)
		}
	}
	for name, m := range maps {
		ms, ok := spec.Maps[name]
		if !ok {
			return nil, fmt.Errorf("load %s: map %s not in the object", prog, name)
		}
		// The Go side sizes its maps (Options); the spec must agree for
		// the replacement to be taken.
		ms.MaxEntries, ms.Flags = m.MaxEntries(), m.Flags()
	}
	for name, v := range consts {
		vs, ok := spec.Variables[name]
		if !ok {
			return nil, fmt.Errorf("load %s: constant %s not in the object", prog, name)
		}
		if err := vs.Set(v); err != nil {
			return nil, fmt.Errorf("load %s: set %s: %w", prog, name, err)
		}
	}
	// LoadAndAssign, which creates only what prog needs, takes a struct
	// whose tags name what to load.
	dst := reflect.New(reflect.StructOf([]reflect.StructField{{
		Name: "Prog",
		Type: reflect.TypeFor[*ebpf.Program](),
		Tag:  reflect.StructTag(fmt.Sprintf("ebpf:%q", prog)),
	}}))
	if err := spec.LoadAndAssign(dst.Interface(), &ebpf.CollectionOptions{MapReplacements: maps}); err != nil {
		return nil, fmt.Errorf("load %s: %w", prog, err)
	}
	return dst.Elem().Field(0).Interface().(*ebpf.Program), nil
}

// maps are f's maps, by the names the C gives them.
func (f *FastPath) maps() map[string]*ebpf.Map {
	return map[string]*ebpf.Map{
		xdpMapXvsFp4: f.hosts4, xdpMapXvsFp6: f.hosts6, xdpMapXvsFpdev: f.devs, xdpMapXvsFpstats: f.stats,
		xdpMapXvsPunt: f.punt,
	}
}

// maps are st's maps, with f's if f is not nil.
func (st *steering) maps(f *FastPath) map[string]*ebpf.Map {
	m := map[string]*ebpf.Map{xdpMapXvsCfg: st.cfg, xdpMapXvsPfx4: st.pfx4, xdpMapXvsPfx6: st.pfx6}
	if f != nil {
		for k, v := range f.maps() {
			m[k] = v
		}
	}
	return m
}
