package ipam

import (
	"encoding/json"
	"fmt"
)

// The annotations Calico's CNI plugin reads to pick a pod's pools, on the
// pod or on its namespace; the network config's ipam section takes the
// same lists as ipv4_pools / ipv6_pools.
const (
	AnnotationIPv4Pools = "cni.projectcalico.org/ipv4pools"
	AnnotationIPv6Pools = "cni.projectcalico.org/ipv6pools"
)

// ParsePoolList decodes one annotation value: a JSON list of pool names
// or CIDRs, e.g. ["default-ipv4-ippool"] or ["198.18.0.0/16"]. key names
// the annotation in the error.
func ParsePoolList(key, value string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(value), &l); err != nil {
		return nil, fmt.Errorf("annotation %s %q: want a JSON list of pool names or CIDRs: %w", key, value, ErrBadAnnotation)
	}
	for _, s := range l {
		if s == "" {
			return nil, fmt.Errorf("annotation %s %q: empty pool name: %w", key, value, ErrBadAnnotation)
		}
	}
	return l, nil
}

// PodPools picks the pools for a pod as Calico does, each family on its
// own: the pod's annotation wins over its namespace's, and either over the
// network config's list (conf4, conf6). An empty result means every
// enabled pool of the family that selects the node.
func PodPools(pod, namespace map[string]string, conf4, conf6 []string) (v4, v6 []string, err error) {
	pick := func(key string, conf []string) ([]string, error) {
		for _, ann := range []map[string]string{pod, namespace} {
			if v, ok := ann[key]; ok {
				l, err := ParsePoolList(key, v)
				if err != nil {
					return nil, err
				}
				if len(l) > 0 {
					return l, nil
				}
			}
		}
		return conf, nil
	}
	if v4, err = pick(AnnotationIPv4Pools, conf4); err != nil {
		return nil, nil, err
	}
	if v6, err = pick(AnnotationIPv6Pools, conf6); err != nil {
		return nil, nil, err
	}
	return v4, v6, nil
}
