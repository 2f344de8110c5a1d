package config

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/xvs-project/xvs/ipam"
)

// DefaultIPAMStore is the bbolt file of the ipam: section's store.
const DefaultIPAMStore = "/var/lib/xvs/ipam.db"

// IPAM is the ipam: section. Present, it turns on the CNI server: xvsd
// assigns pod addresses from these pools and plumbs the pods the xvs-cni
// plugin asks for.
type IPAM struct {
	// Store is the path of the bbolt file (default DefaultIPAMStore); the
	// endpoint records go in a directory next to it.
	Store string `yaml:"store"`
	// Node is this node's name (default: the hostname).
	Node string `yaml:"node"`
	// NodeLabels are matched against the pools' nodeSelectors.
	NodeLabels map[string]string `yaml:"node_labels"`
	Pools      []IPPool          `yaml:"pools"`
}

// IPPool is one pool, with Calico's IPPool field names.
type IPPool struct {
	Name      string `yaml:"name"`
	CIDR      string `yaml:"cidr"`
	BlockSize int    `yaml:"blockSize"`
	// VXLANMode is Calico's: Never (default), Always, CrossSubnet.
	VXLANMode    string `yaml:"vxlanMode"`
	NATOutgoing  bool   `yaml:"natOutgoing"`
	NodeSelector string `yaml:"nodeSelector"`
	Disabled     bool   `yaml:"disabled"`
}

// IPAMConfig is the resolved ipam: section.
type IPAMConfig struct {
	Store      string
	Node       string
	NodeLabels map[string]string
	Pools      []ipam.Pool
}

func (s *IPAM) resolve(e *errs) *IPAMConfig {
	c := &IPAMConfig{Store: s.Store, Node: s.Node, NodeLabels: s.NodeLabels}
	if c.Store == "" {
		c.Store = DefaultIPAMStore
	}
	if c.Node == "" {
		h, err := os.Hostname()
		if err != nil {
			e.missing("ipam.node", "empty, and the hostname is unknown: "+err.Error())
		}
		c.Node = h
	}
	for i, p := range s.Pools {
		field := fmt.Sprintf("ipam.pools[%d]", i)
		pool := ipam.Pool{Name: p.Name, BlockSize: p.BlockSize, NATOutgoing: p.NATOutgoing, NodeSelector: p.NodeSelector, Disabled: p.Disabled}
		cidr, err := netip.ParsePrefix(p.CIDR)
		if err != nil {
			e.str(field+".cidr", p.CIDR, "want a CIDR such as 198.18.0.0/16")
			continue
		}
		pool.CIDR = cidr
		switch p.VXLANMode {
		case "", "Never":
			pool.Encapsulation = ipam.EncapNone
		case "Always":
			pool.Encapsulation = ipam.EncapVXLAN
		case "CrossSubnet":
			pool.Encapsulation = ipam.EncapVXLANCrossSubnet
		default:
			e.str(field+".vxlanMode", p.VXLANMode, "want Never, Always or CrossSubnet")
			continue
		}
		if err := pool.Validate(); err != nil {
			// A *ipam.PoolError: names the pool, the field and the value.
			*e = append(*e, fmt.Errorf("%s: %w", field, err))
			continue
		}
		c.Pools = append(c.Pools, pool)
	}
	if err := ipam.ValidatePools(c.Pools); err != nil {
		*e = append(*e, fmt.Errorf("ipam.pools: %w", err))
	}
	return c
}
