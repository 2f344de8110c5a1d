package memif

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// mapRegion maps a peer's memory region after checking that the file
// really is as large as announced and cannot shrink under us: a mapping
// past the end of its file faults (SIGBUS) on first touch, which would kill
// the process. DPDK, libmemif and gomemif all seal their memfds against
// shrinking; a region without that seal is refused.
func mapRegion(fd int, size, max uint64) ([]byte, error) {
	if size == 0 {
		return nil, fmt.Errorf("region size 0")
	}
	if size > max {
		return nil, fmt.Errorf("region size %d above the limit %d", size, max)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat region fd: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("region fd is not a regular file (mode %#o)", st.Mode)
	}
	if uint64(st.Size) < size {
		return nil, fmt.Errorf("region size %d above its file's %d bytes", size, st.Size)
	}
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil {
		return nil, fmt.Errorf("region fd seals: %w", err)
	}
	if seals&unix.F_SEAL_SHRINK == 0 {
		return nil, fmt.Errorf("region fd not sealed against shrinking (seals %#x)", seals)
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap region of %d bytes: %w", size, err)
	}
	return mem, nil
}

// newRegion creates a sealed memfd of size bytes and maps it (the client's
// side of a region).
func newRegion(name string, size uint64) (int, []byte, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_ALLOW_SEALING|unix.MFD_CLOEXEC)
	if err != nil {
		return -1, nil, fmt.Errorf("memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("truncate memfd to %d: %w", size, err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK); err != nil {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("seal memfd: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("mmap memfd: %w", err)
	}
	return fd, mem, nil
}

func newEventFD() (int, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("eventfd: %w", err)
	}
	return fd, nil
}
