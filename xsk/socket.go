package xsk

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BindMode selects copy or zero-copy binding.
type BindMode uint8

const (
	// BindAuto tries zero-copy and falls back to copy mode.
	BindAuto BindMode = iota
	// BindCopy forces copy mode.
	BindCopy
	// BindZeroCopy forces zero-copy; Open fails where the driver lacks it.
	BindZeroCopy
)

// ErrZeroCopy is wrapped when zero-copy was forced but could not be had.
var ErrZeroCopy = errors.New("zero-copy unavailable")

// Config sizes a socket's rings. Sizes are powers of two; a zero RxSize or
// TxSize leaves that ring out (not both).
type Config struct {
	RxSize, TxSize     uint32
	FillSize, CompSize uint32 // default: RxSize and TxSize, or 2048
	Bind               BindMode
	// NoShare registers the Umem's memory anew for this socket instead of
	// sharing another socket's registration (XDP_SHARED_UMEM). Addresses
	// stay the same; the kernel pins the pages once more.
	NoShare bool
}

// bindBusyWait bounds how long Open waits for a just-closed socket on the
// same queue to go away.
const bindBusyWait = 500 * time.Millisecond

// DefaultRingSize is used for a fill or completion ring left at zero.
const DefaultRingSize = 2048

// Socket is one AF_XDP socket bound to a device queue, over a Umem it may
// share with the worker's other sockets. It has its own fill and completion
// rings in every case (one pair per device queue is what the kernel needs).
//
// The rings are exported for callers that batch by hand; Refill, RxTake,
// TxPut and Reclaim wrap them and keep the Umem's frame accounting, which
// Close relies on to recover frames the kernel still held.
type Socket struct {
	fd      int
	id      uint16
	umem    *Umem
	ifindex int
	queue   int
	zc      bool
	shared  bool
	closed  bool
	// kickErrs counts wakeups the kernel refused for a reason other than
	// "busy, try again" (the link went down or away).
	kickErrs uint64

	Fill FillRing
	Comp CompletionRing
	Rx   RxRing
	Tx   TxRing
}

// Open creates a socket on ifindex/queue over u. It shares the registration
// of a live socket on u whose mode fits cfg.Bind, else registers u itself.
// The socket belongs to the Umem's goroutine.
func Open(u *Umem, ifindex, queue int, cfg Config) (*Socket, error) {
	if u.mem == nil {
		return nil, errors.New("xsk open: umem closed")
	}
	if cfg.RxSize == 0 && cfg.TxSize == 0 {
		return nil, errors.New("xsk open: no rx or tx ring")
	}
	if cfg.FillSize == 0 {
		cfg.FillSize = cfg.RxSize
		if cfg.FillSize == 0 {
			cfg.FillSize = DefaultRingSize
		}
	}
	if cfg.CompSize == 0 {
		cfg.CompSize = cfg.TxSize
		if cfg.CompSize == 0 {
			cfg.CompSize = DefaultRingSize
		}
	}
	for _, n := range []uint32{cfg.RxSize, cfg.TxSize, cfg.FillSize, cfg.CompSize} {
		if n&(n-1) != 0 {
			return nil, fmt.Errorf("xsk open: ring size %d is not a power of two", n)
		}
	}

	// Zero-copy first when allowed; a shared registration fixes the mode
	// (the kernel takes it from the first socket), so it is used only when
	// its mode is acceptable.
	var errs []error
	if !cfg.NoShare {
		for _, src := range u.socks {
			if (cfg.Bind == BindCopy && src.zc) || (cfg.Bind == BindZeroCopy && !src.zc) {
				continue
			}
			s, err := open(u, ifindex, queue, cfg, unix.XDP_SHARED_UMEM, src)
			if err == nil {
				return s, nil
			}
			errs = append(errs, fmt.Errorf("shared umem: %w", err))
			break
		}
	}
	if cfg.Bind != BindCopy {
		s, err := open(u, ifindex, queue, cfg, unix.XDP_ZEROCOPY|unix.XDP_USE_NEED_WAKEUP, nil)
		if err == nil {
			return s, nil
		}
		errs = append(errs, fmt.Errorf("zero-copy: %w", err))
		if cfg.Bind == BindZeroCopy {
			return nil, fmt.Errorf("xsk open ifindex %d queue %d: %w: %w", ifindex, queue, ErrZeroCopy, errors.Join(errs...))
		}
	}
	s, err := open(u, ifindex, queue, cfg, unix.XDP_COPY|unix.XDP_USE_NEED_WAKEUP, nil)
	if err == nil {
		return s, nil
	}
	errs = append(errs, fmt.Errorf("copy: %w", err))
	return nil, fmt.Errorf("xsk open ifindex %d queue %d: %w", ifindex, queue, errors.Join(errs...))
}

func open(u *Umem, ifindex, queue int, cfg Config, flags uint16, src *Socket) (_ *Socket, err error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	s := &Socket{fd: fd, umem: u, ifindex: ifindex, queue: queue, shared: src != nil}
	defer func() {
		if err != nil {
			s.unmap()
			unix.Close(fd)
		}
	}()
	if src == nil {
		reg := unix.XDPUmemReg{
			Addr: uint64(uintptr(unsafe.Pointer(&u.mem[0]))),
			Len:  uint64(len(u.mem)),
			Size: uint32(u.frameSize),
		}
		if err := setsockopt(fd, unix.SOL_XDP, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
			return nil, fmt.Errorf("umem reg: %w", err)
		}
	}
	sizes := []struct {
		opt int
		n   uint32
	}{
		{unix.XDP_UMEM_FILL_RING, cfg.FillSize},
		{unix.XDP_UMEM_COMPLETION_RING, cfg.CompSize},
		{unix.XDP_RX_RING, cfg.RxSize},
		{unix.XDP_TX_RING, cfg.TxSize},
	}
	for _, o := range sizes {
		if o.n == 0 {
			continue
		}
		n := int32(o.n)
		if err := setsockopt(fd, unix.SOL_XDP, o.opt, unsafe.Pointer(&n), 4); err != nil {
			return nil, fmt.Errorf("ring size (opt %d, %d): %w", o.opt, o.n, err)
		}
	}
	if cfg.TxSize > 32 {
		// Copy mode sends at most max_tx_budget frames (default 32) per
		// sendto; let one kick drain the ring. Kernels before 6.17 lack the
		// option and keep 32.
		n := int32(cfg.TxSize)
		setsockopt(fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, unsafe.Pointer(&n), 4)
	}
	var off unix.XDPMmapOffsets
	olen := uint32(unsafe.Sizeof(off))
	if err := getsockopt(fd, unix.SOL_XDP, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), &olen); err != nil {
		return nil, fmt.Errorf("mmap offsets: %w", err)
	}
	if err := mapRing(fd, &s.Fill.ring, off.Fr, cfg.FillSize, 8, unix.XDP_UMEM_PGOFF_FILL_RING); err != nil {
		return nil, err
	}
	s.Fill.addrs = unsafe.Slice((*uint64)(unsafe.Pointer(&s.Fill.mem[off.Fr.Desc])), cfg.FillSize)
	if err := mapRing(fd, &s.Comp.ring, off.Cr, cfg.CompSize, 8, unix.XDP_UMEM_PGOFF_COMPLETION_RING); err != nil {
		return nil, err
	}
	s.Comp.addrs = unsafe.Slice((*uint64)(unsafe.Pointer(&s.Comp.mem[off.Cr.Desc])), cfg.CompSize)
	if cfg.RxSize > 0 {
		if err := mapRing(fd, &s.Rx.ring, off.Rx, cfg.RxSize, 16, unix.XDP_PGOFF_RX_RING); err != nil {
			return nil, err
		}
		s.Rx.descs = unsafe.Slice((*unix.XDPDesc)(unsafe.Pointer(&s.Rx.mem[off.Rx.Desc])), cfg.RxSize)
	}
	if cfg.TxSize > 0 {
		if err := mapRing(fd, &s.Tx.ring, off.Tx, cfg.TxSize, 16, unix.XDP_PGOFF_TX_RING); err != nil {
			return nil, err
		}
		s.Tx.descs = unsafe.Slice((*unix.XDPDesc)(unsafe.Pointer(&s.Tx.mem[off.Tx.Desc])), cfg.TxSize)
	}
	sa := &unix.SockaddrXDP{Flags: flags, Ifindex: uint32(ifindex), QueueID: uint32(queue)}
	if src != nil {
		sa.SharedUmemFD = uint32(src.fd)
	}
	// A socket closed on this queue a moment ago is released by a kernel
	// work item (the buffer pool's deferred release); until it runs, bind
	// says EBUSY. Wait for it, briefly.
	for wait := time.Millisecond; ; wait *= 2 {
		err = unix.Bind(fd, sa)
		if err != unix.EBUSY || wait > bindBusyWait {
			break
		}
		time.Sleep(wait)
	}
	if err != nil {
		return nil, fmt.Errorf("bind: %w", err)
	}
	var opts uint32
	olen = 4
	if err := getsockopt(fd, unix.SOL_XDP, unix.XDP_OPTIONS, unsafe.Pointer(&opts), &olen); err != nil {
		return nil, fmt.Errorf("xdp options: %w", err)
	}
	s.zc = opts&unix.XDP_OPTIONS_ZEROCOPY != 0
	u.nextID++
	if u.nextID == 0 {
		u.nextID = 1
	}
	s.id = u.nextID
	u.socks = append(u.socks, s)
	return s, nil
}

func mapRing(fd int, r *ring, off unix.XDPRingOffset, n uint32, descSize uint64, pgoff int64) error {
	mem, err := unix.Mmap(fd, pgoff, int(off.Desc+uint64(n)*descSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("mmap ring at %#x: %w", pgoff, err)
	}
	r.mem = mem
	r.prod = (*uint32)(unsafe.Pointer(&mem[off.Producer]))
	r.cons = (*uint32)(unsafe.Pointer(&mem[off.Consumer]))
	r.flags = (*uint32)(unsafe.Pointer(&mem[off.Flags]))
	r.size, r.mask = n, n-1
	r.cachedProd, r.cachedCons = *r.prod, *r.cons
	return nil
}

func (s *Socket) unmap() {
	for _, r := range []*ring{&s.Fill.ring, &s.Comp.ring, &s.Rx.ring, &s.Tx.ring} {
		if r.mem != nil {
			unix.Munmap(r.mem)
			r.mem = nil
		}
	}
}

// FD returns the socket descriptor (for the XSKMAP and poll).
func (s *Socket) FD() int { return s.fd }

// ZeroCopy reports whether the kernel bound the socket in zero-copy mode.
func (s *Socket) ZeroCopy() bool { return s.zc }

// Shared reports whether the socket shares another socket's registration.
func (s *Socket) Shared() bool { return s.shared }

// Umem returns the socket's Umem.
func (s *Socket) Umem() *Umem { return s.umem }

// Refill moves up to max free frames from the Umem into the fill ring and
// returns how many it moved.
func (s *Socket) Refill(max int) int {
	u := s.umem
	if n := len(u.free); max > n {
		max = n
	}
	if max <= 0 {
		return 0
	}
	idx, got := s.Fill.Reserve(uint32(max))
	for i := uint32(0); i < got; i++ {
		a, _ := u.Alloc()
		u.owner[u.index(a)] = s.id
		s.Fill.Set(idx+i, a)
	}
	if got > 0 {
		s.Fill.Submit()
	}
	return int(got)
}

// RxTake returns the frame in peeked rx slot idx and hands it to user
// space. Release the slots with Rx.Release afterwards.
func (s *Socket) RxTake(idx uint32) (addr uint64, n uint32) {
	addr, n = s.Rx.Get(idx)
	s.umem.owner[s.umem.index(addr)] = 0
	return addr, n
}

// TxPut stores a frame in reserved tx slot idx and hands it to the kernel.
// Publish with Tx.Submit.
func (s *Socket) TxPut(idx uint32, addr uint64, n uint32) {
	s.Tx.Set(idx, addr, n)
	s.umem.owner[s.umem.index(addr)] = s.id
}

// Reclaim frees every completed tx frame to the Umem and returns how many.
func (s *Socket) Reclaim() int {
	idx, got := s.Comp.Peek(s.Comp.size)
	u := s.umem
	for i := uint32(0); i < got; i++ {
		a := s.Comp.Get(idx + i)
		u.owner[u.index(a)] = 0
		u.Free(a)
	}
	if got > 0 {
		s.Comp.Release(got)
	}
	return int(got)
}

// KickTx wakes the kernel to send the tx ring if it asked for it
// (need_wakeup); copy mode always asks. It reports whether it made the call.
// Transient refusals (EAGAIN, EBUSY, ENOBUFS) are retried by the next kick.
func (s *Socket) KickTx() bool {
	if !s.Tx.NeedWakeup() {
		return false
	}
	s.count(kickTx(s.fd))
	return true
}

func (s *Socket) count(e unix.Errno) {
	switch e {
	case 0, unix.EAGAIN, unix.EBUSY, unix.ENOBUFS, unix.EINTR:
	default:
		s.kickErrs++
	}
}

// KickErrors returns how many wakeups failed for good (ENETDOWN, ENXIO:
// the device went down or away).
func (s *Socket) KickErrors() uint64 { return s.kickErrs }

// TxPending returns how many submitted tx descriptors the kernel has not
// taken yet. In copy mode one sendto takes at most 32 (the kernel's
// TX_BATCH_SIZE), so a caller kicks again while this is non-zero.
func (s *Socket) TxPending() uint32 { return s.Tx.pending() }

// KickRx wakes the driver to refill from the fill ring if it asked for it.
func (s *Socket) KickRx() bool {
	if !s.Fill.NeedWakeup() {
		return false
	}
	s.count(kickRx(s.fd))
	return true
}

// Stats are the kernel's counters for one socket (XDP_STATISTICS).
type Stats = unix.XDPStatistics

// Stats reads the socket's kernel counters.
func (s *Socket) Stats() (Stats, error) {
	var st Stats
	n := uint32(unsafe.Sizeof(st))
	if err := getsockopt(s.fd, unix.SOL_XDP, unix.XDP_STATISTICS, unsafe.Pointer(&st), &n); err != nil {
		return st, fmt.Errorf("xdp statistics: %w", err)
	}
	return st, nil
}

// InKernel returns how many Umem frames the socket's kernel rings hold.
func (s *Socket) InKernel() int {
	n := 0
	for _, o := range s.umem.owner {
		if o == s.id {
			n++
		}
	}
	return n
}

// Close unbinds the socket and gives the frames its rings held back to the
// Umem. Other sockets sharing the registration keep working.
func (s *Socket) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	u := s.umem
	for i, o := range u.socks {
		if o == s {
			u.socks = append(u.socks[:i], u.socks[i+1:]...)
			break
		}
	}
	// The mappings hold the socket file open: unmap first so that close
	// releases the socket now and the kernel stops touching the frames.
	s.unmap()
	err := unix.Close(s.fd)
	for i, o := range u.owner {
		if o == s.id {
			u.owner[i] = 0
			u.Free(uint64(i) << u.shift)
		}
	}
	if err != nil {
		return fmt.Errorf("close xsk: %w", err)
	}
	return nil
}
