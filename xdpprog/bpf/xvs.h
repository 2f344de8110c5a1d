/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xvs.h: what xvs's BPF programs share: the map value layouts (the Go side
 * gets them from here through bpf2go's -type), the maps, and the header
 * views the decisions read.
 *
 * Every object includes every map definition; the Go side creates the maps
 * once (FastPath, the uplink's steering) and hands them to each program it
 * loads, so the definitions here are the one place their shapes are set.
 */
#ifndef XVS_H
#define XVS_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

/* Outer headers of VXLAN over IPv4: Ethernet, IPv4 without options, UDP,
 * VXLAN. */
#define VXLAN4_HLEN (ETH_HLEN + 20 + 8 + 8)
/* ... and over IPv6 without extension headers. */
#define VXLAN6_HLEN (ETH_HLEN + 40 + 8 + 8)

/*
 * An Ethernet header. Not linux/if_ether.h's, which is packed: clang would
 * read its ethertype a byte at a time.
 */
struct eth {
	__u8 dst[6];
	__u8 src[6];
	__be16 proto;
};

/* The VXLAN header (RFC 7348): the I flag in flags, the VNI in the top
 * three bytes of vni. */
struct vxlan {
	__u8 flags;
	__u8 reserved[3];
	__be32 vni;
};

#define VXLAN_FLAG_I 0x08

/* xvs_cfg.flags */
enum xvs_cfg_flag {
	XVS_CFG_HAS4 = 1, /* node4 is the node's IPv4 VTEP address */
	XVS_CFG_HAS6 = 2, /* node6 is the node's IPv6 VTEP address */
	/* The XDP fast path may decapsulate VXLAN over IPv4 (vni, mac). */
	XVS_CFG_DECAP = 4,
	/* VXLAN for a destination only tc reaches goes whole to the kernel,
	 * whose collect_md VXLAN device decapsulates (and merges) it for its
	 * tc program, xvs_tunnel_in. */
	XVS_CFG_KERNEL = 8,
};

/*
 * The uplink's configuration, the one entry of xvs_cfg. Network-order
 * fields hold the wire's bytes, so the programs compare them as loaded.
 */
struct xvs_cfg {
	__u32 flags; /* enum xvs_cfg_flag */
	__be16 port; /* the node's VXLAN UDP port */
	__u16 _pad;
	__be32 node4;
	__be32 node6[4];
	__be32 vni; /* as the VXLAN header's second word: VNI << 8 */
	__u8 mac[6]; /* the node's VTEP MAC */
	__u16 _pad2;
};

/* The pod-prefix tries' keys. */
struct xvs_pfx4 {
	__u32 prefixlen;
	__be32 addr;
};

struct xvs_pfx6 {
	__u32 prefixlen;
	__be32 addr[4];
};

/* xvs_dest.flags */
enum xvs_dest_flag {
	/* XDP programs may redirect to the destination: its pod's eth0 runs
	 * NAPI. The tc fast path reaches every destination. */
	XVS_DEST_XDP = 1,
	/* Behind a VXLAN tunnel the kernel's collect_md device builds: the tc
	 * fast path sets the tunnel key and redirects to that device. XDP
	 * programs never take it. */
	XVS_DEST_TUNNEL = 2,
};

/* A fast-path destination, the value of xvs_fp4 and xvs_fp6 (host byte
 * order for numbers). */
struct xvs_dest {
	__u32 ifindex;
	__u16 mtu; /* the largest IP packet the destination takes */
	__u16 _pad;
	__u8 dst[6]; /* the pod's MAC */
	__u8 src[6]; /* the gateway's MAC */
	__u8 flags; /* enum xvs_dest_flag */
	__u8 _pad2[3];
	/* A tunnel destination (XVS_DEST_TUNNEL) also has: */
	__u32 vni; /* bpf_tunnel_key.tunnel_id */
	__u32 tun_flags; /* bpf_skb_set_tunnel_key's flags */
	/* bpf_tunnel_key.remote_ipv4 (host order) or remote_ipv6 */
	__u32 remote[4];
	/* bpf_tunnel_key.local_ipv4 (host order) or local_ipv6; zero: the
	 * route's */
	__u32 local[4];
};

/* The counters of xvs_fpstats: frames forwarded, by program and family. */
enum xvs_stat {
	XVS_STAT_XDP4 = 0,
	XVS_STAT_XDP6 = 1,
	XVS_STAT_TC4 = 2, /* XVS_STAT_XDP4 + XVS_STAT_TC */
	XVS_STAT_TC6 = 3,
	XVS_STAT_TC = 2,
};

/* bpf2go emits Go declarations only for types in the object's BTF: these
 * pointers (in .rodata, never read) put the enums there. */
const enum xvs_cfg_flag *xvs_btf_cfg_flag __attribute__((unused));
const enum xvs_dest_flag *xvs_btf_dest_flag __attribute__((unused));
const enum xvs_stat *xvs_btf_stat __attribute__((unused));

/* The AF_XDP sockets, by rx queue. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xvs_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xvs_cfg);
} xvs_cfg SEC(".maps");

/* The pod prefixes an uplink steers to the switch. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xvs_pfx4);
	__type(value, __u32);
} xvs_pfx4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xvs_pfx6);
	__type(value, __u32);
} xvs_pfx6 SEC(".maps");

/* The fast path's destinations, by IP address. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __be32);
	__type(value, struct xvs_dest);
} xvs_fp4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct in6_addr);
	__type(value, struct xvs_dest);
} xvs_fp6 SEC(".maps");

/*
 * A flow source the fast path leaves to the switch's workers (the key of
 * xvs_punt): a service backend's address, transport protocol and port,
 * whose replies the NAT stage must translate back. IPv4 in addr[0], the
 * rest zero; port in network order.
 */
struct xvs_punt {
	__be32 addr[4];
	__be16 port;
	__u8 proto;
	__u8 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct xvs_punt);
	__type(value, __u32);
} xvs_punt SEC(".maps");

/* The destinations' devices, for XDP's bpf_redirect_map. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} xvs_fpdev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} xvs_fpstats SEC(".maps");

/*
 * Header views. A decision reads a frame through data and end: the packet
 * itself (XDP, and tc with direct packet access), or a copy of its first
 * bytes on the stack (socket filters, which cannot read the packet
 * directly, and the uplink's tc program, whose socket filter must decide
 * alike). Each read is preceded by a check against end, which the verifier
 * follows for packet pointers and clang turns into a length check for the
 * copy.
 */
#define NEED(data, n, end) ((void *)(data) + (n) > (void *)(end))

/*
 * The copy: 2 bytes in front put the IP header, behind 14 bytes of
 * Ethernet, on a word boundary, as the verifier wants stack loads aligned.
 * XVS_COPY_VXLAN is VXLAN over IPv6 up to the inner IPv6 destination
 * (70 + 14 + 40); XVS_COPY_FAST is Ethernet, IPv6 and a TCP header without
 * options.
 */
#define XVS_COPY_FAST 74
#define XVS_COPY_VXLAN 124

struct hdr_copy {
	__u16 _align;
	__u8 b[XVS_COPY_VXLAN];
} __attribute__((aligned(8)));

/* copy_headers copies the first min(len, max) bytes of skb to c and sets
 * *end past them; a frame shorter than min_len, or one that cannot be
 * read, returns -1. */
static __always_inline int copy_headers(struct __sk_buff *skb, struct hdr_copy *c, __u32 min_len, __u32 max,
					void **end)
{
	__u32 n = skb->len;

	if (n < min_len)
		return -1;
	if (n > max)
		n = max;
	if (bpf_skb_load_bytes(skb, 0, c->b, n))
		return -1;
	*end = c->b + n;
	return 0;
}

/* The first byte of an IPv4 header: version and IHL. 0x45 is IPv4 without
 * options, the only IPv4 the fast paths take. */
static __always_inline __u8 ip_ver_ihl(const struct iphdr *ip)
{
	return *(const __u8 *)ip;
}

/* The IPv4 header checksum after the TTL went down by one: it gains 0x0100
 * (RFC 1624), in either byte order, as one's-complement sums are
 * order-blind; the carry folds back once. */
static __always_inline __sum16 csum_ttl_dec(__sum16 check)
{
	__u32 sum = (__u32)check + bpf_htons(0x0100);

	return (__sum16)(sum + (sum >> 16));
}

/* Whether the 6-byte MACs at a and b (2-byte aligned) are equal, read as a
 * word and a half. */
static __always_inline int mac_eq(const void *a, const void *b)
{
	return *(const __u32 *)a == *(const __u32 *)b &&
	       *(const __u16 *)(a + 4) == *(const __u16 *)(b + 4);
}

static __always_inline int addr6_eq(const __be32 *a, const __be32 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/* count adds one frame to counter i. */
static __always_inline void count(__u32 i)
{
	__u64 *n = bpf_map_lookup_elem(&xvs_fpstats, &i);

	if (n)
		*n += 1;
}

static __always_inline struct xvs_cfg *config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&xvs_cfg, &zero);
}

#endif /* XVS_H */
