package podnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"runtime"
	"sort"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Toggle is one offload setting: leave it as the kernel has it, or turn
// it on or off.
type Toggle int8

const (
	Keep Toggle = iota
	On
	Off
)

func (t Toggle) String() string {
	switch t {
	case Keep:
		return "keep"
	case On:
		return "on"
	case Off:
		return "off"
	}
	return fmt.Sprintf("Toggle(%d)", int8(t))
}

// MarshalText spells t as keep, on or off, for configuration files.
func (t Toggle) MarshalText() ([]byte, error) {
	if t < Keep || t > Off {
		return nil, fmt.Errorf("bad toggle %d", int8(t))
	}
	return []byte(t.String()), nil
}

// UnmarshalText reads keep (or empty), on or off.
func (t *Toggle) UnmarshalText(b []byte) error {
	switch string(b) {
	case "", "keep":
		*t = Keep
	case "on":
		*t = On
	case "off":
		*t = Off
	default:
		return fmt.Errorf("toggle %q: want on, off or keep", b)
	}
	return nil
}

// Offloads are the ethtool features of one interface that a port mode
// needs. The named fields are ethtool -K's short names, which stand for
// groups of kernel features; Features names single kernel features as
// `ethtool -k` prints them (a glob such as "tx-udp*" is allowed).
type Offloads struct {
	// TxChecksum is `ethtool -K DEV tx`: every tx-checksum-* feature. Off
	// for a pod whose host end is driven by AF_XDP: a veth leaves TCP and
	// UDP checksums to the "hardware", and AF_XDP has no way to carry the
	// partial checksum, so the frame would leave xvsd with a bad one.
	TxChecksum Toggle
	// GRO is `ethtool -K DEV gro` (rx-gro). On gives a veth NAPI, which
	// it needs to take frames that XDP redirects into it (the fast path).
	GRO Toggle
	// TSO is `ethtool -K DEV tso`: the tx-tcp*-segmentation features.
	TSO Toggle
	// Features sets kernel features by name (or glob), true for on.
	Features map[string]bool `json:",omitempty"`
}

// IsZero reports whether o changes nothing.
func (o Offloads) IsZero() bool {
	return o.TxChecksum == Keep && o.GRO == Keep && o.TSO == Keep && len(o.Features) == 0
}

// ask is one pattern and the value wanted for the features it matches.
type ask struct {
	field   string // how the caller spelt it, for errors
	pattern string
	on      bool
	glob    bool
}

func (o Offloads) asks() ([]ask, error) {
	var out []ask
	add := func(field, pattern string, t Toggle) error {
		switch t {
		case Keep:
			return nil
		case On, Off:
			out = append(out, ask{field, pattern, t == On, strings.ContainsAny(pattern, "*?[")})
			return nil
		}
		return fmt.Errorf("offloads.%s: bad toggle %d", field, t)
	}
	if err := add("tx_checksum", "tx-checksum-*", o.TxChecksum); err != nil {
		return nil, err
	}
	if err := add("gro", "rx-gro", o.GRO); err != nil {
		return nil, err
	}
	if err := add("tso", "tx-tcp*-segmentation", o.TSO); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(o.Features))
	for n := range o.Features {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := path.Match(n, ""); err != nil || n == "" {
			return nil, fmt.Errorf("offloads.features: bad name %q", n)
		}
		t := Off
		if o.Features[n] {
			t = On
		}
		if err := add("features["+n+"]", n, t); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Feature is one kernel feature of an interface as ethtool reports it.
type Feature struct {
	Active bool // what the interface does now
	Fixed  bool // the driver does not let it change
}

// The ethtool ioctl interface (linux/ethtool.h).
const (
	ethtoolGStrings  = 0x1b
	ethtoolGSSetInfo = 0x37
	ethtoolGFeatures = 0x3a
	ethtoolSFeatures = 0x3b
	ethSSFeatures    = 4
	ethGStringLen    = 32

	// ETHTOOL_F_UNSUPPORTED: a requested bit is not changeable. The
	// other flag (ETHTOOL_F_WISH, wanted but not active) is found by
	// reading back, which names the feature.
	ethtoolFUnsupported = 1 << 0
)

// ifreqData is struct ifreq with ifr_data, padded to the kernel's size.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte
}

// ethtool is an ioctl socket in one namespace. SIOCETHTOOL looks the
// device up in the socket's namespace, so after the socket is made no
// thread has to stay in that namespace.
type ethtool struct {
	fd     int
	nsDesc string
}

func openEthtool(nsPath string) (*ethtool, error) {
	fd := -1
	mk := func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("ethtool socket: %w", err)
		}
		return nil
	}
	var err error
	if nsPath == "" {
		err = mk()
	} else {
		err = Do(nsPath, mk)
	}
	if err != nil {
		return nil, err
	}
	return &ethtool{fd: fd, nsDesc: nsPath}, nil
}

func (e *ethtool) close() { unix.Close(e.fd) }

// ioctl runs one SIOCETHTOOL command on dev with buf (the command struct,
// starting with its cmd word) and returns the ioctl's non-negative result.
func (e *ethtool) ioctl(dev string, buf []byte) (uintptr, error) {
	if len(dev) >= unix.IFNAMSIZ {
		return 0, fmt.Errorf("interface name %q: too long", dev)
	}
	var ifr ifreqData
	copy(ifr.name[:], dev)
	ifr.data = unsafe.Pointer(&buf[0])
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(e.fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(buf)
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}

// featureNames returns the kernel's feature names, indexed by bit.
func (e *ethtool) featureNames(dev string) ([]string, error) {
	info := make([]byte, 8+8+4)
	binary.NativeEndian.PutUint32(info[0:], ethtoolGSSetInfo)
	binary.NativeEndian.PutUint64(info[8:], 1<<ethSSFeatures)
	if _, err := e.ioctl(dev, info); err != nil {
		return nil, fmt.Errorf("ethtool string set of %s: %w", dev, err)
	}
	if binary.NativeEndian.Uint64(info[8:])&(1<<ethSSFeatures) == 0 {
		return nil, fmt.Errorf("ethtool features of %s: %w", dev, unix.EOPNOTSUPP)
	}
	n := int(binary.NativeEndian.Uint32(info[16:]))
	if n <= 0 || n > 4096 {
		return nil, fmt.Errorf("ethtool features of %s: %d names", dev, n)
	}
	gs := make([]byte, 12+n*ethGStringLen)
	binary.NativeEndian.PutUint32(gs[0:], ethtoolGStrings)
	binary.NativeEndian.PutUint32(gs[4:], ethSSFeatures)
	binary.NativeEndian.PutUint32(gs[8:], uint32(n))
	if _, err := e.ioctl(dev, gs); err != nil {
		return nil, fmt.Errorf("ethtool feature names of %s: %w", dev, err)
	}
	names := make([]string, n)
	for i := range names {
		s := gs[12+i*ethGStringLen : 12+(i+1)*ethGStringLen]
		if j := strings.IndexByte(string(s), 0); j >= 0 {
			s = s[:j]
		}
		names[i] = string(s)
	}
	return names, nil
}

// featureBlocks holds ETHTOOL_GFEATURES' answer: per 32-bit block,
// available (changeable), requested, active, never_changed.
type featureBlocks [][4]uint32

func (b featureBlocks) bit(i, field int) bool { return b[i/32][field]&(1<<(i%32)) != 0 }

func (e *ethtool) getFeatures(dev string, n int) (featureBlocks, error) {
	blocks := (n + 31) / 32
	buf := make([]byte, 8+blocks*16)
	binary.NativeEndian.PutUint32(buf[0:], ethtoolGFeatures)
	binary.NativeEndian.PutUint32(buf[4:], uint32(blocks))
	if _, err := e.ioctl(dev, buf); err != nil {
		return nil, fmt.Errorf("ethtool get features of %s: %w", dev, err)
	}
	out := make(featureBlocks, blocks)
	for i := range out {
		for j := range 4 {
			out[i][j] = binary.NativeEndian.Uint32(buf[8+i*16+j*4:])
		}
	}
	return out, nil
}

// setFeatures asks for the bits in set: value on (true) or off.
func (e *ethtool) setFeatures(dev string, n int, set map[int]bool) (uintptr, error) {
	blocks := (n + 31) / 32
	buf := make([]byte, 8+blocks*8)
	binary.NativeEndian.PutUint32(buf[0:], ethtoolSFeatures)
	binary.NativeEndian.PutUint32(buf[4:], uint32(blocks))
	for i, on := range set {
		off := 8 + (i/32)*8
		binary.NativeEndian.PutUint32(buf[off:], binary.NativeEndian.Uint32(buf[off:])|1<<(i%32))
		if on {
			binary.NativeEndian.PutUint32(buf[off+4:], binary.NativeEndian.Uint32(buf[off+4:])|1<<(i%32))
		}
	}
	r, err := e.ioctl(dev, buf)
	if err != nil {
		return 0, fmt.Errorf("ethtool set features of %s: %w", dev, err)
	}
	return r, nil
}

// features reads every feature of dev.
func (e *ethtool) features(dev string) (map[string]Feature, []string, featureBlocks, error) {
	names, err := e.featureNames(dev)
	if err != nil {
		return nil, nil, nil, err
	}
	b, err := e.getFeatures(dev, len(names))
	if err != nil {
		return nil, nil, nil, err
	}
	m := make(map[string]Feature, len(names))
	for i, n := range names {
		if n == "" {
			continue
		}
		m[n] = Feature{Active: b.bit(i, 2), Fixed: !b.bit(i, 0)}
	}
	return m, names, b, nil
}

// plan resolves asks against dev's features: the bits to change, and an
// error naming the first ask that cannot be met (no such feature, or a
// fixed one in the other state). A glob passes over fixed features that
// already differ as long as it changes at least one; that is what
// `ethtool -K DEV tx off` does with tx-checksum-ipv4 [fixed] on a veth.
func plan(dev string, asks []ask, names []string, b featureBlocks) (map[int]bool, error) {
	set := map[int]bool{}
	for _, a := range asks {
		matched, good := false, false
		for i, n := range names {
			if n == "" {
				continue
			}
			ok := n == a.pattern
			if a.glob {
				ok, _ = path.Match(a.pattern, n)
			}
			if !ok {
				continue
			}
			matched = true
			fixed, active := !b.bit(i, 0), b.bit(i, 2)
			switch {
			case active == a.on:
				good = true
			case !fixed:
				set[i] = a.on
				good = true
			case !a.glob:
				return nil, fmt.Errorf("offloads.%s on %s: feature %s is fixed %s", a.field, dev, n, onOff(active))
			}
		}
		if !matched {
			return nil, fmt.Errorf("offloads.%s on %s: no feature %q", a.field, dev, a.pattern)
		}
		if !good {
			return nil, fmt.Errorf("offloads.%s on %s: every %s feature is fixed %s", a.field, dev, a.pattern, onOff(!a.on))
		}
	}
	return set, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// apply sets o on dev and returns what undoes it (the previous state of
// every bit it changed).
func (e *ethtool) apply(dev string, o Offloads) (undo map[int]bool, err error) {
	asks, err := o.asks()
	if err != nil {
		return nil, err
	}
	if len(asks) == 0 {
		return nil, nil
	}
	names, err := e.featureNames(dev)
	if err != nil {
		return nil, err
	}
	b, err := e.getFeatures(dev, len(names))
	if err != nil {
		return nil, err
	}
	set, err := plan(dev, asks, names, b)
	if err != nil || len(set) == 0 {
		return nil, err
	}
	undo = make(map[int]bool, len(set))
	for i := range set {
		undo[i] = b.bit(i, 2)
	}
	r, err := e.setFeatures(dev, len(names), set)
	if err != nil {
		return nil, err
	}
	after, err := e.getFeatures(dev, len(names))
	if err != nil {
		e.setFeatures(dev, len(names), undo)
		return nil, err
	}
	var stuck []string
	for i, on := range set {
		if after.bit(i, 2) != on {
			stuck = append(stuck, names[i]+" stayed "+onOff(!on))
		}
	}
	if len(stuck) > 0 || r&ethtoolFUnsupported != 0 {
		e.setFeatures(dev, len(names), undo)
		sort.Strings(stuck)
		if len(stuck) == 0 {
			stuck = []string{"the driver refused a change"}
		}
		return nil, fmt.Errorf("offloads on %s: %s", dev, strings.Join(stuck, ", "))
	}
	return undo, nil
}

// restore puts back what apply returned.
func (e *ethtool) restore(dev string, undo map[int]bool) error {
	if len(undo) == 0 {
		return nil
	}
	names, err := e.featureNames(dev)
	if err != nil {
		return err
	}
	_, err = e.setFeatures(dev, len(names), undo)
	return err
}

// differs lists how dev's features differ from o, one phrase each.
func (e *ethtool) differs(dev string, o Offloads) ([]string, error) {
	asks, err := o.asks()
	if err != nil || len(asks) == 0 {
		return nil, err
	}
	_, names, b, err := e.features(dev)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range asks {
		for i, n := range names {
			ok := n == a.pattern
			if a.glob {
				ok, _ = path.Match(a.pattern, n)
			}
			if !ok || n == "" {
				continue
			}
			// A fixed feature a glob cannot change is not a difference.
			if active := b.bit(i, 2); active != a.on && !(a.glob && !b.bit(i, 0)) {
				out = append(out, fmt.Sprintf("%s: offload %s is %s, want %s", dev, n, onOff(active), onOff(a.on)))
			}
		}
	}
	return out, nil
}

// SetOffloads applies o to the interface dev in the namespace at nsPath
// ("" for the caller's own), as `ethtool -K` would, and checks by reading
// back that every asked feature took. On error nothing is changed.
func SetOffloads(nsPath, dev string, o Offloads) error {
	e, err := openEthtool(nsPath)
	if err != nil {
		return err
	}
	defer e.close()
	_, err = e.apply(dev, o)
	return err
}

// Features returns every kernel feature of dev in the namespace at nsPath
// ("" for the caller's own), by the names `ethtool -k` prints.
func Features(nsPath, dev string) (map[string]Feature, error) {
	e, err := openEthtool(nsPath)
	if err != nil {
		return nil, err
	}
	defer e.close()
	m, _, _, err := e.features(dev)
	return m, err
}

// errNoDev tells whether err says the interface is gone.
func errNoDev(err error) bool {
	return errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO)
}
