/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fast.h: the fast path's decision, in XDP (fast_xdp) and on an sk_buff
 * (fast_decide_skb, which the tc programs and their socket filters share,
 * so that they agree frame by frame), and the tc programs' rewrite
 * (tc_forward).
 *
 * The decision: IPv4 without options or IPv6, TTL or hop limit above 1, not
 * from a punted source (xvs_punt: a service backend, whose replies the
 * workers' NAT stage translates back), to a fast-path destination, no
 * bigger than its MTU. For a GSO super-frame
 * the size checked is one segment's: IP header, TCP header (or UDP's 8
 * bytes) and gso_size; other GSO types go to the switch. Everything else
 * goes to the switch, which answers, routes and sends ICMP errors.
 */
#ifndef XVS_FAST_H
#define XVS_FAST_H

#include "xvs.h"

/* fast_xdp's results besides an XDP verdict. */
#define XVS_NEXT (-1) /* not the fast path's: the frame is untouched */
#define XVS_TC_ONLY (-2) /* a destination only tc reaches; untouched */

/*
 * punted reports whether a TCP or UDP packet from saddr (n words: 1 for
 * IPv4, 4 for IPv6), whose transport header is at l4, comes from a source
 * in xvs_punt: a service backend, whose replies only the workers translate
 * back. One whose ports cannot be read is not (cut short, nothing could
 * translate it).
 */
static __always_inline int punted(const __be32 *saddr, int n, __u8 proto, void *l4, void *end)
{
	struct xvs_punt k = {};

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 0;
	if (NEED(l4, 2, end))
		return 0;
	for (int i = 0; i < n; i++)
		k.addr[i] = saddr[i];
	k.port = *(__be16 *)l4;
	k.proto = proto;
	return bpf_map_lookup_elem(&xvs_punt, &k) != NULL;
}

/* set_macs writes the destination's MACs into the frame at eth. */
static __always_inline void set_macs(struct eth *eth, const struct xvs_dest *d)
{
	__builtin_memcpy(eth->dst, d->dst, 6);
	__builtin_memcpy(eth->src, d->src, 6);
}

/*
 * fast_xdp forwards the frame if the fast path takes it: TTL or hop limit
 * down by one, the destination's MACs, a redirect through the devmap. A
 * destination whose pod does not run NAPI (no XVS_DEST_XDP) gives
 * XVS_TC_ONLY, if the packet fits its MTU (one too big is the switch's,
 * which answers it); all else XVS_NEXT.
 */
static __always_inline int fast_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct eth *eth = data;
	struct xvs_dest *d;
	__u32 stat;

	if (NEED(eth, sizeof(*eth), end))
		return XVS_NEXT;
	if (eth->proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if (NEED(ip, sizeof(*ip), end))
			return XVS_NEXT;
		if (ip_ver_ihl(ip) != 0x45 || ip->ttl <= 1)
			return XVS_NEXT;
		if (punted(&ip->saddr, 1, ip->protocol, ip + 1, end))
			return XVS_NEXT;
		d = bpf_map_lookup_elem(&xvs_fp4, &ip->daddr);
		if (!d || bpf_ntohs(ip->tot_len) > d->mtu)
			return XVS_NEXT;
		if (!(d->flags & XVS_DEST_XDP))
			return XVS_TC_ONLY;
		ip->ttl--;
		ip->check = csum_ttl_dec(ip->check);
		stat = XVS_STAT_XDP4;
	} else if (eth->proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if (NEED(ip6, sizeof(*ip6), end))
			return XVS_NEXT;
		if (ip6->hop_limit <= 1)
			return XVS_NEXT;
		if (punted(ip6->saddr.in6_u.u6_addr32, 4, ip6->nexthdr, ip6 + 1, end))
			return XVS_NEXT;
		d = bpf_map_lookup_elem(&xvs_fp6, &ip6->daddr);
		if (!d || bpf_ntohs(ip6->payload_len) + sizeof(*ip6) > d->mtu)
			return XVS_NEXT;
		if (!(d->flags & XVS_DEST_XDP))
			return XVS_TC_ONLY;
		ip6->hop_limit--;
		stat = XVS_STAT_XDP6;
	} else {
		return XVS_NEXT;
	}
	set_macs(eth, d);
	count(stat);
	/* XDP_DROP for a destination without its device: never, as
	 * FastPath.Add puts the device in first. */
	return bpf_redirect_map(&xvs_fpdev, d->ifindex, XDP_DROP);
}

/* seg_fits reports whether a segment of hlen header bytes (IP and L4) and
 * the skb's gso_size bytes of payload fits d's MTU. */
static __always_inline int seg_fits(struct __sk_buff *skb, __u64 hlen, const struct xvs_dest *d)
{
	return hlen + skb->gso_size <= d->mtu;
}

/* size_fits checks the frame behind an IP header of iplen bytes at ip,
 * whose L4 protocol is proto, against d's MTU: the whole frame, or for a
 * GSO super-frame one TCP or UDP segment. */
static __always_inline int size_fits(struct __sk_buff *skb, void *ip, __u32 iplen, __u8 proto, void *end,
				     const struct xvs_dest *d)
{
	if (!skb->gso_size)
		return skb->len - ETH_HLEN <= d->mtu;
	if (proto == IPPROTO_UDP)
		return seg_fits(skb, iplen + sizeof(struct udphdr), d);
	if (proto != IPPROTO_TCP)
		return 0;
	/* The TCP header's length: data offset, the top nibble of byte 12. */
	__u8 *th = ip + iplen;
	if (NEED(th, 13, end))
		return 0;
	return seg_fits(skb, iplen + (th[12] >> 4) * 4, d);
}

/*
 * fast_decide_skb is the decision on an sk_buff's headers (data, end: the
 * packet or a copy): the destination, with *stat its family's counter
 * (XVS_STAT_XDP4 or XVS_STAT_XDP6; tc_forward adds XVS_STAT_TC), or NULL.
 */
static __always_inline struct xvs_dest *fast_decide_skb(struct __sk_buff *skb, void *data, void *end, __u32 *stat)
{
	struct eth *eth = data;
	struct xvs_dest *d;

	if (NEED(eth, sizeof(*eth), end))
		return NULL;
	if (eth->proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if (NEED(ip, sizeof(*ip), end))
			return NULL;
		if (ip_ver_ihl(ip) != 0x45 || ip->ttl <= 1)
			return NULL;
		if (punted(&ip->saddr, 1, ip->protocol, ip + 1, end))
			return NULL;
		d = bpf_map_lookup_elem(&xvs_fp4, &ip->daddr);
		if (!d || !size_fits(skb, ip, sizeof(*ip), ip->protocol, end, d))
			return NULL;
		*stat = XVS_STAT_XDP4;
		return d;
	}
	if (eth->proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if (NEED(ip6, sizeof(*ip6), end))
			return NULL;
		if (ip6->hop_limit <= 1)
			return NULL;
		if (punted(ip6->saddr.in6_u.u6_addr32, 4, ip6->nexthdr, ip6 + 1, end))
			return NULL;
		d = bpf_map_lookup_elem(&xvs_fp6, &ip6->daddr);
		if (!d || !size_fits(skb, ip6, sizeof(*ip6), ip6->nexthdr, end, d))
			return NULL;
		*stat = XVS_STAT_XDP6;
		return d;
	}
	return NULL;
}

/*
 * tc_forward forwards the frame fast_decide_skb took (its headers at data,
 * the packet or a copy, readable for the family's IP header): TTL or hop
 * limit, MACs, the tunnel key for a tunnel destination, counter, and
 * bpf_redirect out of the destination's host end, as the kernel's routing
 * would send it (the pod's veth receives it as usual: its XDP program, GRO
 * and counters). It returns the tc verdict, or -1 if a write failed.
 *
 * The writes go through bpf_skb_store_bytes, not packet pointers: a direct
 * write would make the verifier unclone every frame first, the dropped ones
 * included.
 */
static __always_inline int tc_forward(struct __sk_buff *skb, void *data, const struct xvs_dest *d, __u32 stat)
{
	if (stat == XVS_STAT_XDP4) {
		struct iphdr *ip = data + ETH_HLEN;
		/* TTL, protocol and checksum, stored back as one. */
		struct {
			__u8 ttl;
			__u8 protocol;
			__sum16 check;
		} t = { ip->ttl - 1, ip->protocol, csum_ttl_dec(ip->check) };

		if (bpf_skb_store_bytes(skb, ETH_HLEN + __builtin_offsetof(struct iphdr, ttl), &t, sizeof(t), 0))
			return -1;
	} else {
		struct ipv6hdr *ip6 = data + ETH_HLEN;
		__u8 hop = ip6->hop_limit - 1;

		if (bpf_skb_store_bytes(skb, ETH_HLEN + __builtin_offsetof(struct ipv6hdr, hop_limit), &hop, 1, 0))
			return -1;
	}
	struct eth macs;
	set_macs(&macs, d);
	if (bpf_skb_store_bytes(skb, 0, &macs, 12, 0))
		return -1;
	if (d->flags & XVS_DEST_TUNNEL) {
		/* For the collect_md VXLAN device: TTL 64, TOS and label 0. */
		struct bpf_tunnel_key key = { .tunnel_id = d->vni, .tunnel_ttl = 64 };

		__builtin_memcpy(key.remote_ipv6, d->remote, sizeof(key.remote_ipv6));
		__builtin_memcpy(key.local_ipv6, d->local, sizeof(key.local_ipv6));
		if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), d->tun_flags))
			return -1;
	}
	count(stat + XVS_STAT_TC);
	return bpf_redirect(d->ifindex, 0);
}

#endif /* XVS_FAST_H */
