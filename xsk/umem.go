package xsk

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ErrNoFrames is returned when the UMEM has no free frame.
var ErrNoFrames = errors.New("no free umem frames")

// Umem is a region of frames shared by every port of one worker, with an
// O(1) stack of free frame addresses. AF_XDP sockets register it with the
// kernel; AF_PACKET and fake ports use the same frames as plain buffers, so a
// packet keeps one address from receive to transmit whatever ports it crosses.
//
// A Umem is owned by one goroutine (its worker); it is not safe for concurrent
// use.
type Umem struct {
	mem       []byte
	frameSize uint64
	shift     uint
	nframes   int
	free      []uint64 // stack of free frame base addresses

	// owner[i] is the id of the socket whose kernel rings (fill, rx in
	// flight, tx, completion) hold frame i, or 0 when user space holds it.
	// Socket.Close gives the frames still marked with its id back to the
	// free stack, so a port's close loses no frames.
	owner  []uint16
	nextID uint16
	// socks are the live bound sockets; a new socket shares the UMEM
	// registration (XDP_SHARED_UMEM) of one of them.
	socks []*Socket
}

// NewUmem maps frames frames of frameSize bytes each. frameSize must be a
// power of two between 2048 and 4096 (the AF_XDP aligned-mode chunk sizes).
func NewUmem(frames, frameSize int) (*Umem, error) {
	if frameSize != 2048 && frameSize != 4096 {
		return nil, fmt.Errorf("umem frame size %d: must be 2048 or 4096", frameSize)
	}
	if frames <= 0 || frames&(frames-1) != 0 {
		return nil, fmt.Errorf("umem frame count %d: must be a power of two", frames)
	}
	mem, err := unix.Mmap(-1, 0, frames*frameSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap umem: %w", err)
	}
	u := &Umem{mem: mem, frameSize: uint64(frameSize), nframes: frames, free: make([]uint64, 0, frames), owner: make([]uint16, frames)}
	for s := uint(0); 1<<s < frameSize; s++ {
		u.shift = s + 1
	}
	for i := frames - 1; i >= 0; i-- {
		u.free = append(u.free, uint64(i)*uint64(frameSize))
	}
	return u, nil
}

// Mem returns the whole region (for registration with the kernel).
func (u *Umem) Mem() []byte { return u.mem }

// FrameSize returns the size of one frame.
func (u *Umem) FrameSize() int { return int(u.frameSize) }

// Frames returns the number of frames.
func (u *Umem) Frames() int { return u.nframes }

// Sockets returns how many sockets are bound over the Umem.
func (u *Umem) Sockets() int { return len(u.socks) }

// FreeCount returns how many frames are free.
func (u *Umem) FreeCount() int { return len(u.free) }

// Base returns the start of the frame that holds addr.
func (u *Umem) Base(addr uint64) uint64 { return addr &^ (u.frameSize - 1) }

// Frame returns the whole frame that holds addr, from its base.
func (u *Umem) Frame(addr uint64) []byte {
	b := u.Base(addr)
	return u.mem[b : b+u.frameSize : b+u.frameSize]
}

// Bytes returns n bytes at addr. The slice is capped at the end of the frame.
func (u *Umem) Bytes(addr uint64, n int) []byte {
	end := u.Base(addr) + u.frameSize
	return u.mem[addr : addr+uint64(n) : end]
}

// Alloc pops a free frame and returns its base address.
func (u *Umem) Alloc() (uint64, bool) {
	n := len(u.free)
	if n == 0 {
		return 0, false
	}
	a := u.free[n-1]
	u.free = u.free[:n-1]
	return a, true
}

// index returns the frame number of addr.
func (u *Umem) index(addr uint64) uint64 { return addr >> u.shift }

// Free returns the frame holding addr to the free stack.
func (u *Umem) Free(addr uint64) {
	u.free = append(u.free, addr&^(u.frameSize-1))
}

// Close unmaps the region. It fails while a socket still uses it.
func (u *Umem) Close() error {
	if u.mem == nil {
		return nil
	}
	if len(u.socks) > 0 {
		return fmt.Errorf("close umem: %d sockets still open", len(u.socks))
	}
	err := unix.Munmap(u.mem)
	u.mem = nil
	return err
}
