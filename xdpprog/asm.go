package xdpprog

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// Two programs stay in Go assembly, as they are a handful of instructions
// with no header to parse: the pod program without the fast path (a
// redirect to the rx queue's socket, podProgram) and IngressDrop without
// it (TC_ACT_SHOT). Going through C would add an object and a load of its
// spec for nothing a reader gains. Everything else is C (bpf/, gen.go).

// mdRxQueueIdx is struct xdp_md's rx_queue_index.
const mdRxQueueIdx = 16

func mapPtr(dst asm.Register, m *ebpf.Map) asm.Instruction {
	ins := asm.LoadMapPtr(dst, 0)
	if err := ins.AssociateMap(m); err != nil {
		panic(err) // LoadMapPtr is always a map load
	}
	return ins
}

// redirect ends the program: bpf_redirect_map(xsks, rx_queue_index, miss).
func redirect(xsks *ebpf.Map, ctx asm.Register, miss uint32) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, ctx, mdRxQueueIdx, asm.Word).WithSymbol("redirect"),
		mapPtr(asm.R1, xsks),
		asm.Mov.Imm(asm.R3, int32(miss)),
		asm.FnRedirectMap.Call(),
		asm.Return(),
	}
}

// podProgram is the pod program without the fast path: every frame to its
// rx queue's socket.
func podProgram(xsks *ebpf.Map, miss uint32) asm.Instructions {
	return redirect(xsks, asm.R1, miss)
}
