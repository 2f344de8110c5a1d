/* SPDX-License-Identifier: GPL-2.0 */
/*
 * steer.h: the uplink's decisions, which the XDP uplink program and the tc
 * program and socket filter of an AF_PACKET uplink share: which frames
 * from the network are the switch's (steer), and which VXLAN the kernel's
 * VXLAN device is to take (kernel_vxlan).
 */
#ifndef XVS_STEER_H
#define XVS_STEER_H

#include "xvs.h"

/* steer's results. */
#define XVS_TAKE 1 /* the switch's */
#define XVS_PASS 0 /* the host's */

/* udp_to_vtep4 reports whether the IPv4 packet ip is unfragmented UDP to
 * the node's IPv4 VTEP address. */
static __always_inline int udp_to_vtep4(const struct iphdr *ip, const struct xvs_cfg *cfg)
{
	/* MF flag and fragment offset */
	return ip->protocol == IPPROTO_UDP && !(ip->frag_off & bpf_htons(0x3fff)) && ip->daddr == cfg->node4;
}

/* udp_to_vtep6 reports whether the node has an IPv6 VTEP and the IPv6
 * packet ip6, whose UDP header udp is readable, is UDP right after the
 * fixed header to its address and VXLAN port. */
static __always_inline int udp_to_vtep6(const struct ipv6hdr *ip6, const struct udphdr *udp,
					const struct xvs_cfg *cfg)
{
	return (cfg->flags & XVS_CFG_HAS6) && ip6->nexthdr == IPPROTO_UDP &&
	       addr6_eq(ip6->daddr.in6_u.u6_addr32, cfg->node6) && udp->dest == cfg->port;
}

/* vxlan_ok reports whether the VXLAN header vx has the I flag and the
 * node's VNI, and the inner frame behind it is for the node's VTEP MAC. */
static __always_inline int vxlan_ok(const struct vxlan *vx, const struct xvs_cfg *cfg)
{
	return (vx->flags & VXLAN_FLAG_I) && (vx->vni & bpf_htonl(0xffffff00)) == cfg->vni &&
	       mac_eq((const void *)(vx + 1), cfg->mac);
}

/*
 * steer is the uplink's steering on the headers at data..end: XVS_TAKE for
 * packets to a pod prefix and unfragmented UDP to the node's VTEP address
 * and port, else XVS_PASS. The UDP port behind an IPv4 header of any
 * length is read from the packet: by packet pointer in XDP (skb NULL,
 * data..end the packet), with bpf_skb_load_bytes on an sk_buff.
 */
static __always_inline int steer(struct __sk_buff *skb, void *data, void *end)
{
	struct eth *eth = data;
	struct xvs_cfg *cfg;

	if (NEED(eth, sizeof(*eth), end))
		return XVS_PASS;
	if (eth->proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		struct xvs_pfx4 key = { .prefixlen = 32 };
		__be16 port;

		if (NEED(ip, sizeof(*ip), end))
			return XVS_PASS;
		key.addr = ip->daddr;
		if (bpf_map_lookup_elem(&xvs_pfx4, &key))
			return XVS_TAKE;
		/* VXLAN to the node? */
		cfg = config();
		if (!cfg || !(cfg->flags & XVS_CFG_HAS4) || !udp_to_vtep4(ip, cfg))
			return XVS_PASS;
		/* The UDP header behind the IPv4 header, 20..60 bytes. */
		__u32 ihl = (ip_ver_ihl(ip) & 0x0f) * 4;
		if (ihl < sizeof(*ip))
			return XVS_PASS;
		if (skb) {
			if (ihl + ETH_HLEN + sizeof(struct udphdr) > skb->len)
				return XVS_PASS;
			if (bpf_skb_load_bytes(skb, ETH_HLEN + ihl + __builtin_offsetof(struct udphdr, dest), &port,
					       sizeof(port)))
				return XVS_PASS;
		} else {
			struct udphdr *udp = (void *)ip + ihl;

			if (NEED(udp, sizeof(*udp), end))
				return XVS_PASS;
			port = udp->dest;
		}
		return port == cfg->port ? XVS_TAKE : XVS_PASS;
	}
	if (eth->proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		struct xvs_pfx6 key = { .prefixlen = 128 };

		if (NEED(ip6, sizeof(*ip6), end))
			return XVS_PASS;
		__builtin_memcpy(key.addr, &ip6->daddr, sizeof(key.addr));
		if (bpf_map_lookup_elem(&xvs_pfx6, &key))
			return XVS_TAKE;
		/* VXLAN to the node? UDP right after the fixed header. */
		cfg = config();
		if (!cfg)
			return XVS_PASS;
		struct udphdr *udp = (void *)(ip6 + 1);
		if (NEED(udp, sizeof(*udp), end))
			return XVS_PASS;
		return udp_to_vtep6(ip6, udp, cfg) ? XVS_TAKE : XVS_PASS;
	}
	return XVS_PASS;
}

/* kernel_fits reports whether the kernel's VXLAN device and its tc program
 * can deliver the inner frame, behind outer headers of outer bytes, to d:
 * not a destination behind a tunnel again, and, unless it is a GSO
 * super-frame (whose segments the device's program checks), no bigger
 * than d's MTU. The rest is the switch's, which answers a packet too big
 * with its ICMP error instead of the device's silent drop. */
static __always_inline int kernel_fits(struct __sk_buff *skb, __u32 outer, const struct xvs_dest *d)
{
	if (d->flags & XVS_DEST_TUNNEL)
		return 0;
	if (skb->gso_size)
		return 1;
	return skb->len - (outer + ETH_HLEN) <= d->mtu;
}

/* kernel_inner checks the VXLAN header and the inner frame behind outer
 * headers of outer bytes (Ethernet to VXLAN) at data. */
static __always_inline int kernel_inner(struct __sk_buff *skb, void *data, void *end, __u32 outer,
					const struct xvs_cfg *cfg)
{
	struct vxlan *vx = data + outer - sizeof(struct vxlan);
	struct eth *in = data + outer;
	struct xvs_dest *d;

	if (!vxlan_ok(vx, cfg))
		return 0;
	/* The inner IP header sits 2 bytes off a word boundary in the copy:
	 * only its bytes are read, and its address is the lookup key where it
	 * is. */
	if (in->proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(in + 1);

		if (NEED(ip6, sizeof(*ip6), end) || ip6->hop_limit <= 1)
			return 0;
		d = bpf_map_lookup_elem(&xvs_fp6, &ip6->daddr);
		/* Keeps clang from merging the two lookups into one call
		 * with the map in a register, which the verifier cannot
		 * inline. */
		barrier_var(d);
	} else if (in->proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(in + 1);

		if (NEED(ip, sizeof(*ip), end) || ip->ttl <= 1)
			return 0;
		d = bpf_map_lookup_elem(&xvs_fp4, &ip->daddr);
		barrier_var(d);
	} else {
		return 0;
	}
	return d && kernel_fits(skb, outer, d);
}

/*
 * kernel_vxlan, on a copy of the headers, reports whether the kernel's
 * VXLAN device is to take the frame (XVS_CFG_KERNEL set): VXLAN over IPv4
 * without options or IPv6 without extension headers, to the node's VTEP
 * address and port, with the I flag, the node's VNI and an inner frame for
 * the node's VTEP MAC, to a fast-path destination with TTL or hop limit
 * above 1 that kernel_fits.
 */
static __always_inline int kernel_vxlan(struct __sk_buff *skb, void *data, void *end)
{
	struct eth *eth = data;
	struct xvs_cfg *cfg = config();

	if (!cfg || !(cfg->flags & XVS_CFG_KERNEL))
		return 0;
	if (NEED(eth, sizeof(*eth), end))
		return 0;
	if (eth->proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		struct udphdr *udp = (void *)(ip + 1);

		if (NEED(data, VXLAN4_HLEN + ETH_HLEN, end))
			return 0;
		if (!(cfg->flags & XVS_CFG_HAS4) || ip_ver_ihl(ip) != 0x45 || !udp_to_vtep4(ip, cfg) ||
		    udp->dest != cfg->port)
			return 0;
		return kernel_inner(skb, data, end, VXLAN4_HLEN, cfg);
	}
	if (eth->proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if (NEED(data, VXLAN6_HLEN + ETH_HLEN, end))
			return 0;
		if (!udp_to_vtep6(ip6, (void *)(ip6 + 1), cfg))
			return 0;
		return kernel_inner(skb, data, end, VXLAN6_HLEN, cfg);
	}
	return 0;
}

#endif /* XVS_STEER_H */
