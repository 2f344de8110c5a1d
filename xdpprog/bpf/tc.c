// SPDX-License-Identifier: GPL-2.0
/*
 * tc.c: the tc (TCX) ingress programs and socket filters of the ports xvs
 * drives with AF_PACKET, whose frames are sk_buffs (super-frames whole).
 *
 *   xvs_ingress_fp    a pod port's tc ingress: the fast path with
 *                     bpf_redirect, the rest dropped (the port's socket has
 *                     seen it)
 *   xvs_fp_filter     that port's socket filter: refuses exactly what
 *                     xvs_ingress_fp forwards
 *   xvs_tunnel_in     the collect_md VXLAN device's tc ingress: the fast
 *                     path for what it decapsulated for the node
 *   xvs_uplink_tc     an AF_PACKET uplink's tc ingress: drops what the
 *                     switch takes, passes the rest to the host
 *   xvs_uplink_flt    its socket filter: takes exactly what tc drops
 *   xvs_uplink_tcfp,  the same with the fast path to the node's pods, and
 *   xvs_uplink_fltfp  VXLAN for them left to the kernel's VXLAN device
 *
 * Each pair decides through the same functions (fast.h, steer.h) on the
 * same bytes, so they agree frame by frame. The socket filters return the
 * bytes to keep: 0 refuses the frame.
 *
 * The pod port's drop-everything program (no fast path) stays in Go
 * assembly (ingress.go): two instructions.
 */
#include "xvs.h"
#include "fast.h"
#include "steer.h"

#define FILTER_REFUSE 0
#define FILTER_TAKE 0x7fffffff

SEC("tc")
int xvs_ingress_fp(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct xvs_dest *d;
	__u32 stat;
	int act;

	d = fast_decide_skb(skb, data, end, &stat);
	if (!d)
		return TC_ACT_SHOT;
	act = tc_forward(skb, data, d, stat);
	return act < 0 ? TC_ACT_SHOT : act;
}

SEC("socket")
int xvs_fp_filter(struct __sk_buff *skb)
{
	struct hdr_copy c;
	void *end;
	__u32 stat;

	/* Too short for any fast frame: the socket's. */
	if (copy_headers(skb, &c, ETH_HLEN + sizeof(struct iphdr), XVS_COPY_FAST, &end))
		return FILTER_TAKE;
	return fast_decide_skb(skb, c.b, end, &stat) ? FILTER_REFUSE : FILTER_TAKE;
}

/* The tunnel device's VNI and the node's VTEP MAC
 * (AttachTunnelIngress's). */
const volatile __u32 tunnel_vni;
const volatile __u8 tunnel_mac[6] __attribute__((aligned(4)));

SEC("tc")
int xvs_tunnel_in(struct __sk_buff *skb)
{
	/* Up to tunnel_label: an IPv4 or an IPv6 tunnel's key. */
	struct bpf_tunnel_key key;
	const __u32 size = __builtin_offsetof(struct bpf_tunnel_key, local_ipv4);
	struct xvs_dest *d;
	__u32 stat;
	int act;

	if (bpf_skb_get_tunnel_key(skb, &key, size, 0) &&
	    bpf_skb_get_tunnel_key(skb, &key, size, BPF_F_TUNINFO_IPV6))
		return TC_ACT_SHOT;
	if (key.tunnel_id != tunnel_vni)
		return TC_ACT_SHOT;

	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	/* tunnel_mac is read through volatile lvalues: read as plain const
	 * memory, clang folds it to its initializer (zero) and no frame ever
	 * matches the value set at load time. */
	const __u32 mac_hi = *(const volatile __u32 *)tunnel_mac;
	const __u16 mac_lo = *(const volatile __u16 *)(tunnel_mac + 4);
	if (NEED(data, ETH_HLEN, end) || *(__u32 *)data != mac_hi || *(__u16 *)(data + 4) != mac_lo)
		return TC_ACT_SHOT;
	d = fast_decide_skb(skb, data, end, &stat);
	if (!d)
		return TC_ACT_SHOT;
	act = tc_forward(skb, data, d, stat);
	return act < 0 ? TC_ACT_SHOT : act;
}

/* uplink decides for an AF_PACKET uplink, in its tc program (filter 0) or
 * its socket filter (filter 1), with the fast path or without (fast). */
static __always_inline int uplink(struct __sk_buff *skb, int filter, int fast)
{
	struct hdr_copy c;
	void *end;

	if (copy_headers(skb, &c, ETH_HLEN, XVS_COPY_VXLAN, &end))
		return filter ? FILTER_REFUSE : TC_ACT_OK;
	if (fast) {
		struct xvs_dest *d;
		__u32 stat;

		/* VXLAN for a fast-path pod, with the kernel's VXLAN device in
		 * use: the kernel's (it decapsulates and merges, then the
		 * device's tc program forwards). */
		if (kernel_vxlan(skb, c.b, end))
			return filter ? FILTER_REFUSE : TC_ACT_OK;
		d = fast_decide_skb(skb, c.b, end, &stat);
		if (d) {
			if (filter)
				return FILTER_REFUSE;
			int act = tc_forward(skb, c.b, d, stat);
			if (act >= 0)
				return act;
		}
		/* What the fast path leaves goes on to the steering. */
	}
	if (steer(skb, c.b, end) == XVS_TAKE)
		return filter ? FILTER_TAKE : TC_ACT_SHOT;
	return filter ? FILTER_REFUSE : TC_ACT_OK;
}

SEC("tc")
int xvs_uplink_tc(struct __sk_buff *skb)
{
	return uplink(skb, 0, 0);
}

SEC("socket")
int xvs_uplink_flt(struct __sk_buff *skb)
{
	return uplink(skb, 1, 0);
}

SEC("tc")
int xvs_uplink_tcfp(struct __sk_buff *skb)
{
	return uplink(skb, 0, 1);
}

SEC("socket")
int xvs_uplink_fltfp(struct __sk_buff *skb)
{
	return uplink(skb, 1, 1);
}

char _license[] SEC("license") = "GPL";
