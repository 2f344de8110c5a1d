package cniplugin

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// DefaultSocket is xvsd's API socket (config.DefaultAPISocket).
const DefaultSocket = "/run/xvs/xvsd.sock"

// NetConf is xvs-cni's network configuration: the CNI fields, and xvs's.
type NetConf struct {
	types.PluginConf
	// APISocket is xvsd's API socket (default DefaultSocket).
	APISocket string `json:"api_socket,omitempty"`
	// Mode is the pod port's mode: auto (AF_XDP, falling back to
	// AF_PACKET where XDP cannot attach), xdp-native, xdp-generic,
	// xdp-zerocopy or af-packet.
	Mode string `json:"mode,omitempty"`
	// MTU of the pod's interface; 0: from the pool's encapsulation and
	// xvsd's uplink.
	MTU int `json:"mtu,omitempty"`
	// Timeout bounds one call to xvsd (default 2m: an ADD waits for the
	// store's commit behind other pods').
	Timeout string `json:"timeout,omitempty"`
	// Memif asks for memif ports for every pod of this network: true, or
	// a list of ports ([{"queues": 2, "ringSize": 1024, "mac": "..."}]);
	// a pod's xvs.dev/memif annotation wins over it. xvsd checks it.
	Memif json.RawMessage `json:"memif,omitempty"`
	IPAM  IPAM            `json:"ipam"`
	// RuntimeConfig carries the pod's annotations when the runtime passes
	// them (the io.kubernetes.cri.pod-annotations capability).
	RuntimeConfig struct {
		PodAnnotations  map[string]string `json:"io.kubernetes.cri.pod-annotations,omitempty"`
		PodAnnotations2 map[string]string `json:"podAnnotations,omitempty"`
	} `json:"runtimeConfig"`

	timeout time.Duration
}

// IPAM is the ipam section, as Calico's plugin reads it: the pools to use
// in order, and which families to assign. xvsd does the IPAM; type may be
// empty or "xvs".
type IPAM struct {
	Type       string   `json:"type,omitempty"`
	IPv4Pools  []string `json:"ipv4_pools,omitempty"`
	IPv6Pools  []string `json:"ipv6_pools,omitempty"`
	AssignIPv4 *string  `json:"assign_ipv4,omitempty"`
	AssignIPv6 *string  `json:"assign_ipv6,omitempty"`
}

var modes = map[string]bool{"": true, "auto": true, "xdp-zerocopy": true, "xdp-native": true, "xdp-generic": true, "af-packet": true}

// badConf is CNI's "invalid network config" (7) naming the field.
func badConf(field string, value any, format string, a ...any) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("network config: %s %v: %s", field, value, fmt.Sprintf(format, a...)), "")
}

// ParseConf decodes and checks stdin's network config. Errors are
// *types.Error with code 6 (not JSON) or 7 (a bad field, named).
func ParseConf(stdin []byte) (*NetConf, error) {
	c := &NetConf{}
	if err := json.Unmarshal(stdin, c); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "network config: not valid JSON", err.Error())
	}
	if c.Type == "" {
		return nil, badConf("type", `""`, "missing")
	}
	if c.CNIVersion == "" {
		return nil, badConf("cniVersion", `""`, "missing")
	}
	if !modes[c.Mode] {
		return nil, badConf("mode", fmt.Sprintf("%q", c.Mode), "want auto, xdp-native, xdp-generic, xdp-zerocopy or af-packet")
	}
	if c.MTU != 0 && (c.MTU < 1280 || c.MTU > 65535) {
		return nil, badConf("mtu", c.MTU, "want 1280-65535 (IPv6's minimum) or 0 for the pool's")
	}
	if c.APISocket == "" {
		c.APISocket = DefaultSocket
	} else if !filepath.IsAbs(c.APISocket) {
		return nil, badConf("api_socket", fmt.Sprintf("%q", c.APISocket), "want an absolute path")
	}
	c.timeout = 2 * time.Minute
	if c.Timeout != "" {
		d, err := time.ParseDuration(c.Timeout)
		if err != nil || d <= 0 {
			return nil, badConf("timeout", fmt.Sprintf("%q", c.Timeout), "want a positive duration such as 30s")
		}
		c.timeout = d
	}
	switch c.IPAM.Type {
	case "", "xvs", "xvs-ipam":
	default:
		return nil, badConf("ipam.type", fmt.Sprintf("%q", c.IPAM.Type), "xvsd assigns the addresses: leave it out or write \"xvs\"")
	}
	for _, a := range []struct {
		f string
		v *string
	}{{"ipam.assign_ipv4", c.IPAM.AssignIPv4}, {"ipam.assign_ipv6", c.IPAM.AssignIPv6}} {
		if a.v != nil && *a.v != "true" && *a.v != "false" {
			return nil, badConf(a.f, fmt.Sprintf("%q", *a.v), "want \"true\" or \"false\"")
		}
	}
	if c.IPAM.AssignIPv4 != nil && c.IPAM.AssignIPv6 != nil && *c.IPAM.AssignIPv4 == "false" && *c.IPAM.AssignIPv6 == "false" {
		return nil, badConf("ipam.assign_ipv4", `"false"`, "and assign_ipv6 \"false\": the pod would get no address")
	}
	if err := version.ParsePrevResult(&c.PluginConf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "network config: prevResult", err.Error())
	}
	return c, nil
}

// annotations are the pod's, from runtimeConfig.
func (c *NetConf) annotations() map[string]string {
	if len(c.RuntimeConfig.PodAnnotations) > 0 {
		return c.RuntimeConfig.PodAnnotations
	}
	return c.RuntimeConfig.PodAnnotations2
}

// K8sArgs are the CNI_ARGS keys the kubelet passes.
type K8sArgs struct {
	types.CommonArgs
	K8S_POD_NAME               types.UnmarshallableString //nolint:revive
	K8S_POD_NAMESPACE          types.UnmarshallableString //nolint:revive
	K8S_POD_INFRA_CONTAINER_ID types.UnmarshallableString //nolint:revive
	K8S_POD_UID                types.UnmarshallableString //nolint:revive
}
