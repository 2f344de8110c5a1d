package ctl

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/xvs-project/xvs/api/xvspb"
)

func TestParseMemif(t *testing.T) {
	for _, tc := range []struct {
		line string
		want *xvspb.PortConfig
		err  string
	}{
		{"port add m0 addr=198.18.5.2/32 memif-socket=@xvs-m0 memif-netns=/run/netns/p1 memif-id=3 memif-queues=2 memif-ring=512 memif-polling=true",
			&xvspb.PortConfig{Name: "m0", Kind: "pod", Mode: "memif", Addresses: []string{"198.18.5.2/32"},
				Memif: &xvspb.MemifConfig{Socket: "@xvs-m0", Netns: "/run/netns/p1", Id: 3, Queues: 2, RingSize: 512, Polling: true}}, ""},
		{"port add m0 memif-ring=big", nil, `memif-ring="big": not a number`},
		{"port add m0 memif-colour=red", nil, `unknown key "memif-colour"`},
	} {
		_, cmd, err := ParseArgs(strings.Fields(tc.line))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.line, err)
		}
		if !proto.Equal(tc.want, cmd.Port) {
			t.Errorf("%s (-want +got):\n-%v\n+%v", tc.line, tc.want, cmd.Port)
		}
	}
}

func TestFormatPortsMemif(t *testing.T) {
	ports := []*xvspb.Port{
		{Id: 4, Name: "m0", Kind: "pod", Mode: "memif", Up: true, Mtu: 1500, Stats: &xvspb.PortStats{},
			Memif: &xvspb.MemifStatus{Role: "server", Socket: "@xvs-m0", Connected: true, PeerName: "dpdk", PeerIf: "net_memif0",
				RxQueues: 1, TxQueues: 1, RingSize: 1024, BufferSize: 2048, Connects: 2}},
		{Id: 5, Name: "m1", Kind: "pod", Mode: "memif", Reason: "memif peer disconnected: peer closed the connection", Mtu: 1500, Stats: &xvspb.PortStats{},
			Memif: &xvspb.MemifStatus{Role: "server", Socket: "/run/xvs/m1.sock", Id: 1, Polling: true, LastReason: "peer closed the connection", Connects: 1, RxDrops: 3}},
	}
	var b strings.Builder
	if err := FormatPorts(&b, ports); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"m0: memif server on @xvs-m0 id 0, interrupt, peer dpdk/net_memif0, rings 1 rx 1 tx x 1024 slots, buffers 2048 B, connects 2\n",
		"m1: down: memif peer disconnected: peer closed the connection\n",
		"m1: memif server on /run/xvs/m1.sock id 1, polling, no peer (last: peer closed the connection), connects 1, rx drops 3\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("show ports lacks %q:\n%s", want, b.String())
		}
	}
}
