package xdpprog

// The BPF programs in C (bpf/*.c, bpf/*.h) compile to the committed
// xdp_bpfel.o and tc_bpfel.o and their Go loaders with bpf2go, at the
// module's cilium/ebpf version; a plain go build needs no clang. After
// editing the C, run `go generate ./xdpprog` (or `make generate`) and
// commit what it writes, bpf/SHA256SUMS and bpf/clang.version included:
// TestObjectsMatchSources fails until the objects are rebuilt from the
// sources, and, where the same clang is installed, rebuilds them itself
// and compares.
//
// -mcpu=v3 (ALU32 and JMP32, kernels from 5.1) for tighter code than
// bpf2go's default v1. The -idirafter lines find <asm/types.h>, which the
// kernel's UAPI headers include, where Debian keeps it for amd64 and arm64.
// Only little-endian objects: the Go side writes the map values in host
// order, and xvs runs on amd64 and arm64.

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -type xvs_cfg_flag -type xvs_dest_flag -type xvs_stat xdp bpf/xdp.c -- -O2 -mcpu=v3 -Wall -Werror -idirafter /usr/include/x86_64-linux-gnu -idirafter /usr/include/aarch64-linux-gnu
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -no-global-types tc bpf/tc.c -- -O2 -mcpu=v3 -Wall -Werror -idirafter /usr/include/x86_64-linux-gnu -idirafter /usr/include/aarch64-linux-gnu
//go:generate sh -c "sha256sum bpf/*.c bpf/*.h xdp_bpfel.o tc_bpfel.o > bpf/SHA256SUMS && clang --version | head -n 1 > bpf/clang.version"
