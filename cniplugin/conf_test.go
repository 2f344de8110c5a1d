package cniplugin

import (
	"errors"
	"github.com/containernetworking/cni/pkg/skel"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestParseConf(t *testing.T) {
	tests := []struct {
		name, conf string
		code       uint   // 0: valid
		field      string // named in the message
	}{
		{"minimal", `{"cniVersion": "1.1.0", "name": "n", "type": "xvs-cni"}`, 0, ""},
		{"full", `{"cniVersion": "1.0.0", "name": "n", "type": "xvs-cni", "api_socket": "/run/x.sock", "mode": "af-packet", "mtu": 1400, "timeout": "5s",
			"ipam": {"type": "xvs", "ipv4_pools": ["a"], "assign_ipv6": "false"}}`, 0, ""},
		{"not json", `{"cniVersion":`, types.ErrDecodingFailure, "JSON"},
		{"no type", `{"cniVersion": "1.1.0", "name": "n"}`, types.ErrInvalidNetworkConfig, "type"},
		{"no version", `{"name": "n", "type": "xvs-cni"}`, types.ErrInvalidNetworkConfig, "cniVersion"},
		{"bad mode", `{"cniVersion": "1.1.0", "type": "xvs-cni", "mode": "fast"}`, types.ErrInvalidNetworkConfig, "mode"},
		{"mtu low", `{"cniVersion": "1.1.0", "type": "xvs-cni", "mtu": 576}`, types.ErrInvalidNetworkConfig, "mtu"},
		{"relative socket", `{"cniVersion": "1.1.0", "type": "xvs-cni", "api_socket": "x.sock"}`, types.ErrInvalidNetworkConfig, "api_socket"},
		{"bad timeout", `{"cniVersion": "1.1.0", "type": "xvs-cni", "timeout": "soon"}`, types.ErrInvalidNetworkConfig, "timeout"},
		{"other ipam", `{"cniVersion": "1.1.0", "type": "xvs-cni", "ipam": {"type": "host-local"}}`, types.ErrInvalidNetworkConfig, "ipam.type"},
		{"assign yes", `{"cniVersion": "1.1.0", "type": "xvs-cni", "ipam": {"assign_ipv4": "yes"}}`, types.ErrInvalidNetworkConfig, "ipam.assign_ipv4"},
		{"no family", `{"cniVersion": "1.1.0", "type": "xvs-cni", "ipam": {"assign_ipv4": "false", "assign_ipv6": "false"}}`, types.ErrInvalidNetworkConfig, "assign_ipv4"},
		{"pools not list", `{"cniVersion": "1.1.0", "type": "xvs-cni", "ipam": {"ipv4_pools": "a"}}`, types.ErrDecodingFailure, "JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConf([]byte(tc.conf))
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("ParseConf: %v", err)
				}
				if c.APISocket == "" || c.timeout <= 0 {
					t.Errorf("defaults not applied: %+v", c)
				}
				return
			}
			var ce *types.Error
			if !errors.As(err, &ce) {
				t.Fatalf("ParseConf: %v, want a CNI error", err)
			}
			if ce.Code != tc.code || !strings.Contains(ce.Msg, tc.field) {
				t.Errorf("ParseConf: code %d %q, want code %d naming %q", ce.Code, ce.Msg, tc.code, tc.field)
			}
		})
	}
}

func TestRequestFamilies(t *testing.T) {
	tests := []struct {
		ipam       string
		ipv4, ipv6 bool
	}{
		{`{}`, false, false}, // xvsd picks: every family with a pool
		{`{"assign_ipv6": "true"}`, true, true},
		{`{"assign_ipv6": "false"}`, true, false},
		{`{"assign_ipv4": "false", "assign_ipv6": "true"}`, false, true},
	}
	for _, tc := range tests {
		c, err := ParseConf([]byte(`{"cniVersion": "1.1.0", "type": "xvs-cni", "ipam": ` + tc.ipam + `}`))
		if err != nil {
			t.Fatal(err)
		}
		r, err := request(nil2args(), c)
		if err != nil {
			t.Fatal(err)
		}
		if r.Ipv4 != tc.ipv4 || r.Ipv6 != tc.ipv6 {
			t.Errorf("%s: ipv4 %v ipv6 %v, want %v %v", tc.ipam, r.Ipv4, r.Ipv6, tc.ipv4, tc.ipv6)
		}
	}
}

func nil2args() *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: "c", IfName: "eth0", Args: "IgnoreUnknown=1;K8S_POD_NAME=p;K8S_POD_NAMESPACE=ns"}
}

// TestXVSDDown: with nothing on the socket ADD fails at once with code 11
// and STATUS with 50, both naming the socket.
func TestXVSDDown(t *testing.T) {
	sock := t.TempDir() + "/none.sock"
	conf := []byte(`{"cniVersion": "1.1.0", "name": "n", "type": "xvs-cni", "api_socket": "` + sock + `", "timeout": "24h"}`)
	args := nil2args()
	args.StdinData = conf
	args.Netns = "/run/netns/x"
	for _, tc := range []struct {
		name string
		f    func(*skel.CmdArgs) error
		code uint
	}{{"ADD", Add, types.ErrTryAgainLater}, {"DEL", Del, types.ErrTryAgainLater}, {"STATUS", Status, 50}} {
		// With a 24h call timeout, a plugin that waited for xvsd instead
		// of failing on the refused connection would hang here until go
		// test's own timeout fails the run: no wall-clock bound needed.
		err := tc.f(args)
		var ce *types.Error
		if !errors.As(err, &ce) || ce.Code != tc.code || !strings.Contains(ce.Msg, sock) {
			t.Errorf("%s: %v, want code %d naming %s", tc.name, err, tc.code, sock)
		}
	}
}
