package cniplugin

import (
	"testing"

	"github.com/xvs-project/xvs/api/xvspb"
)

// TestMemifResult: the config's memif key reaches xvsd as it is, and each
// memif xvsd reports is an interface of the sandbox with socketPath and
// its own IPs pointing at it.
func TestMemifResult(t *testing.T) {
	c, err := ParseConf([]byte(`{"cniVersion": "1.1.0", "name": "n", "type": "xvs-cni", "memif": [{"queues": 2}]}`))
	if err != nil {
		t.Fatal(err)
	}
	args := nil2args()
	args.Netns = "/run/netns/p"
	req, err := request(args, c)
	if err != nil {
		t.Fatal(err)
	}
	if req.Memif != `[{"queues": 2}]` {
		t.Errorf("request memif %q", req.Memif)
	}
	rep := &xvspb.CNIAddReply{HostIfname: "xvs0", Ips: []*xvspb.CNIIP{{Address: "198.19.0.2/32", Gateway: "169.254.1.1"}},
		Memifs: []*xvspb.CNIMemif{{Port: "xvs0-m0", SocketPath: "@xvs-memif0", Ips: []*xvspb.CNIIP{
			{Address: "198.19.0.3/32", Gateway: "169.254.1.1"}, {Address: "fd00::3/128", Gateway: "fe80::ecee:eeff:feee:eeee"}}}}}
	res, err := result(c, args, rep)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Interfaces) != 3 {
		t.Fatalf("interfaces %+v", res.Interfaces)
	}
	m := res.Interfaces[2]
	if m.Name != "memif0" || m.SocketPath != "@xvs-memif0" || m.Sandbox != "/run/netns/p" {
		t.Errorf("memif interface %+v", m)
	}
	if len(res.IPs) != 3 || *res.IPs[0].Interface != 1 || *res.IPs[1].Interface != 2 || *res.IPs[2].Interface != 2 || res.IPs[2].Address.String() != "fd00::3/128" {
		t.Errorf("IPs %v", res.IPs)
	}
}
