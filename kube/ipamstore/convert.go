package ipamstore

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xvs-project/xvs/ipam"
	xvsv1 "github.com/xvs-project/xvs/kube/apis/xvs/v1"
)

// blockFromObject decodes an IPAMBlock into an ipam.Block with the
// object's resourceVersion as Revision. An object the allocator could
// not use safely is an error: a name that is not BlockName of its cidr
// (two objects could then hold one block), an address that does not
// parse or lies outside the block, an address or a handle twice.
func blockFromObject(o *xvsv1.IPAMBlock) (ipam.Block, error) {
	cidr, err := xvsv1.ParseCIDR(o.Spec.CIDR)
	if err != nil {
		return ipam.Block{}, fmt.Errorf("ipamblock %q: spec.%w", o.Name, err)
	}
	if want := xvsv1.BlockName(cidr); o.Name != want {
		return ipam.Block{}, fmt.Errorf("ipamblock %q: name does not match spec.cidr %s (want %q)", o.Name, cidr, want)
	}
	b := ipam.Block{CIDR: cidr, Affinity: o.Spec.Affinity, Revision: o.ResourceVersion}
	if n := len(o.Spec.Allocations); n > 0 {
		b.Allocations = make([]ipam.Allocation, 0, n)
	}
	for i, a := range o.Spec.Allocations {
		addr, err := netip.ParseAddr(a.Addr)
		if err != nil || !cidr.Contains(addr) {
			return ipam.Block{}, fmt.Errorf("ipamblock %q: spec.allocations[%d].addr %q: not an address of %s", o.Name, i, a.Addr, cidr)
		}
		b.Allocations = append(b.Allocations, ipam.Allocation{
			Addr:      addr,
			Handle:    ipam.Handle{ContainerID: a.ContainerID, IfName: a.IfName},
			Namespace: a.Namespace, Pod: a.Pod, Node: a.Node,
		})
	}
	// The store writes them sorted; someone else's writer may not have.
	sort.Slice(b.Allocations, func(i, j int) bool { return b.Allocations[i].Addr.Less(b.Allocations[j].Addr) })
	if !ipam.CheckBlock(&b) {
		return ipam.Block{}, fmt.Errorf("ipamblock %q: spec.allocations: an address or a handle appears twice", o.Name)
	}
	return b, nil
}

// objectFromBlock is the IPAMBlock of b; meta (may be nil) supplies the
// existing object's metadata (labels, annotations, owner references),
// which an Update would otherwise erase.
func objectFromBlock(b ipam.Block, meta *metav1.ObjectMeta) *xvsv1.IPAMBlock {
	o := &xvsv1.IPAMBlock{Spec: xvsv1.IPAMBlockSpec{CIDR: b.CIDR.String(), Affinity: b.Affinity}}
	if meta != nil {
		meta.DeepCopyInto(&o.ObjectMeta)
	}
	o.Name = xvsv1.BlockName(b.CIDR)
	o.ResourceVersion = b.Revision
	if len(b.Allocations) > 0 {
		o.Spec.Allocations = make([]xvsv1.IPAMAllocation, len(b.Allocations))
	}
	for i, a := range b.Allocations {
		o.Spec.Allocations[i] = xvsv1.IPAMAllocation{
			Addr: a.Addr.String(), ContainerID: a.Handle.ContainerID, IfName: a.Handle.IfName,
			Namespace: a.Namespace, Pod: a.Pod, Node: a.Node,
		}
	}
	return o
}

// blockHandles is the handle index's function: the handle keys
// (ipam.Handle.String) allocated in the block.
func blockHandles(o *xvsv1.IPAMBlock) []string {
	seen := make(map[string]bool, len(o.Spec.Allocations))
	out := make([]string, 0, len(o.Spec.Allocations))
	for _, a := range o.Spec.Allocations {
		k := ipam.Handle{ContainerID: a.ContainerID, IfName: a.IfName}.String()
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

func holds(o *xvsv1.IPAMBlock, handle string) bool {
	for _, a := range o.Spec.Allocations {
		if (ipam.Handle{ContainerID: a.ContainerID, IfName: a.IfName}).String() == handle {
			return true
		}
	}
	return false
}

// PoolFromObject converts an IPPool into an ipam.Pool and checks it on
// its own (ipam.Pool.Validate: name, cidr, blockSize, vxlanMode,
// nodeSelector). The error is a *PoolError naming the object's field
// (spec.nodeSelector, …). The API server's CEL rules already refuse a bad
// cidr or blockSize at admission; what only the agent can check is the
// selector's syntax, overlaps between pools (ValidPools), and objects
// stored before the rules existed.
//
// vxlanMode Never (the CRD's default) becomes Encapsulation "" (the
// default, none), so a pool stored without an encapsulation reads back
// as it was written.
func PoolFromObject(o *xvsv1.IPPool) (ipam.Pool, error) {
	p := ipam.Pool{
		Name: o.Name, BlockSize: int(o.Spec.BlockSize), NATOutgoing: o.Spec.NATOutgoing,
		NodeSelector: o.Spec.NodeSelector, Disabled: o.Spec.Disabled,
	}
	cidr, err := xvsv1.ParseCIDR(o.Spec.CIDR)
	if err != nil {
		return ipam.Pool{}, &PoolError{Pool: o.Name, Field: "spec.cidr", Value: strconv.Quote(o.Spec.CIDR), Err: ipam.ErrInvalidPool, Detail: err.Error()}
	}
	p.CIDR = cidr
	switch o.Spec.VXLANMode {
	case "", xvsv1.VXLANNever:
	case xvsv1.VXLANAlways:
		p.Encapsulation = ipam.EncapVXLAN
	case xvsv1.VXLANCrossSubnet:
		p.Encapsulation = ipam.EncapVXLANCrossSubnet
	default:
		return ipam.Pool{}, &PoolError{Pool: o.Name, Field: "spec.vxlanMode", Value: strconv.Quote(string(o.Spec.VXLANMode)), Err: ipam.ErrInvalidPool, Detail: "want Always, CrossSubnet or Never"}
	}
	if err := p.Validate(); err != nil {
		pe := &PoolError{Pool: o.Name, Err: ipam.ErrInvalidPool, Detail: err.Error()}
		var ie *ipam.PoolError
		if errors.As(err, &ie) {
			// The same error, its field named as the object has it.
			*pe = *ie
			pe.Pool = o.Name
			switch ie.Field {
			case "":
			case "name":
				pe.Field = "metadata.name"
			default:
				pe.Field = "spec." + ie.Field
			}
		}
		return ipam.Pool{}, pe
	}
	return p, nil
}

// objectFromPool is the IPPool spec of p. A blockSize equal to the
// family's default is left as old had it (set or unset): the CRD keeps
// blockSize immutable, unset included.
func specFromPool(p ipam.Pool, old *xvsv1.IPPoolSpec) xvsv1.IPPoolSpec {
	s := xvsv1.IPPoolSpec{
		CIDR: p.CIDR.String(), BlockSize: int32(p.BlockSize), NATOutgoing: p.NATOutgoing,
		NodeSelector: p.NodeSelector, Disabled: p.Disabled, VXLANMode: xvsv1.VXLANNever,
	}
	switch p.EffectiveEncapsulation() {
	case ipam.EncapVXLAN:
		s.VXLANMode = xvsv1.VXLANAlways
	case ipam.EncapVXLANCrossSubnet:
		s.VXLANMode = xvsv1.VXLANCrossSubnet
	}
	if old != nil && old.CIDR == s.CIDR {
		if eff, ok := old.EffectiveBlockSize(); ok && eff == p.EffectiveBlockSize() {
			s.BlockSize = old.BlockSize
		}
	}
	return s
}

// PoolError is an IPPool refused by the store: ipam's own error, with
// Field named as the object has it (spec.cidr, spec.nodeSelector,
// metadata.name) and Err the ipam sentinel (ipam.ErrPoolOverlap,
// ipam.ErrBadBlockSize, ipam.ErrInvalidPool).
type PoolError = ipam.PoolError

// ValidPools converts every IPPool and returns the pools that can be
// used, sorted by name, and the refused ones with their errors. Two pools
// that overlap cannot both be used: the older one (creationTimestamp,
// then name) stays, so adding a bad pool never takes a working one away.
func ValidPools(objs []*xvsv1.IPPool) ([]ipam.Pool, []*PoolError) {
	objs = append([]*xvsv1.IPPool(nil), objs...)
	sort.Slice(objs, func(i, j int) bool {
		ti, tj := objs[i].CreationTimestamp, objs[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return objs[i].Name < objs[j].Name
	})
	var ok []ipam.Pool
	var bad []*PoolError
	for _, o := range objs {
		p, err := PoolFromObject(o)
		if err != nil {
			bad = append(bad, err.(*PoolError))
			continue
		}
		var clash *ipam.Pool
		for i := range ok {
			if ok[i].CIDR.Overlaps(p.CIDR) {
				clash = &ok[i]
				break
			}
		}
		if clash != nil {
			bad = append(bad, &PoolError{Pool: p.Name, Field: "spec.cidr", Value: p.CIDR.String(), Err: ipam.ErrPoolOverlap,
				Detail: fmt.Sprintf("overlaps the older pool %q (%s)", clash.Name, clash.CIDR)})
			continue
		}
		ok = append(ok, p)
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i].Name < ok[j].Name })
	sort.Slice(bad, func(i, j int) bool { return bad[i].Pool < bad[j].Pool })
	return ok, bad
}

// eventMessage is what the Event on a refused pool says.
func eventMessage(e *PoolError) string {
	return e.Error() + "; the pool is not used (the other pools are)"
}
