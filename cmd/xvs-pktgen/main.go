// Command xvs-pktgen is the AF_XDP / AF_PACKET traffic generator and sink:
// bounded, paced UDP (optionally VXLAN) traffic with sequence numbers and
// timestamps, and the loss, reordering and latency it saw. See perf/pktgen.
package main

import (
	"os"

	"github.com/xvs-project/xvs/perf/pktgen"
)

func main() { os.Exit(pktgen.Main(os.Args[1:], os.Stdout, os.Stderr)) }
