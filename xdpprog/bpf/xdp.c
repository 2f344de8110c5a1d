// SPDX-License-Identifier: GPL-2.0
/*
 * xdp.c: the XDP programs in front of xvs's AF_XDP sockets.
 *
 *   xvs_pod_fast     a pod port's: the fast path, then the socket
 *   xvs_uplink       an uplink's: pod prefixes and VXLAN for the node to
 *                    the socket, everything else to the host
 *   xvs_uplink_fast  xvs_uplink with the fast path (and VXLAN
 *                    decapsulation) in front
 *
 * A pod port without the fast path redirects every frame and stays in Go
 * assembly (program.go): five instructions.
 */
#include "xvs.h"
#include "fast.h"
#include "steer.h"

/* What bpf_redirect_map returns for a queue without a socket
 * (Options.MissAction). */
const volatile __u32 miss_action = XDP_PASS;

/* to_socket ends a program: the frame to its rx queue's socket. */
static __always_inline int to_socket(struct xdp_md *ctx)
{
	return bpf_redirect_map(&xvs_xsks, ctx->rx_queue_index, miss_action);
}

SEC("xdp")
int xvs_pod_fast(struct xdp_md *ctx)
{
	int act = fast_xdp(ctx);

	if (act >= 0)
		return act;
	return to_socket(ctx);
}

static __always_inline int steer_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	if (steer(NULL, data, end) == XVS_TAKE)
		return to_socket(ctx);
	return XDP_PASS;
}

SEC("xdp")
int xvs_uplink(struct xdp_md *ctx)
{
	return steer_xdp(ctx);
}

/*
 * vxlan_decap strips the outer headers of VXLAN over IPv4 for the node,
 * when the config allows it (XVS_CFG_DECAP), so the fast path behind it
 * sees the inner frame, and reports whether it did; *kernel says whether
 * the kernel's VXLAN device takes what only tc reaches (XVS_CFG_KERNEL).
 * It takes only what needs no more checking than this: IHL 5,
 * unfragmented, UDP to the node's VTEP address and port, UDP and IP
 * lengths that agree with the frame's, the I flag, the node's VNI, and an
 * inner frame for the node's VTEP MAC. A non-zero UDP checksum is not
 * verified here (the worker verifies it): the inner packet's own
 * checksums, which the pod checks, still cover what it carries, and the
 * fast path keeps an IPv4 header checksum as right or as wrong as it came.
 */
static __always_inline int vxlan_decap(struct xdp_md *ctx, int *kernel)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct eth *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	struct xvs_cfg *cfg = config();

	if (!cfg || (cfg->flags & (XVS_CFG_HAS4 | XVS_CFG_DECAP)) != (XVS_CFG_HAS4 | XVS_CFG_DECAP))
		return 0;
	/* The outer headers and the inner Ethernet header. */
	if (NEED(data, VXLAN4_HLEN + ETH_HLEN, end))
		return 0;
	if (eth->proto != bpf_htons(ETH_P_IP) || ip_ver_ihl(ip) != 0x45 || !udp_to_vtep4(ip, cfg) ||
	    udp->dest != cfg->port)
		return 0;
	/* Lengths: IP total = frame - 14, UDP length = IP total - 20. */
	__u32 tot = bpf_ntohs(ip->tot_len);
	if (tot != (__u64)(end - data) - ETH_HLEN || bpf_ntohs(udp->len) + sizeof(*ip) != tot)
		return 0;
	if (!vxlan_ok((void *)(udp + 1), cfg))
		return 0;
	*kernel = cfg->flags & XVS_CFG_KERNEL;
	return bpf_xdp_adjust_head(ctx, VXLAN4_HLEN) == 0;
}

SEC("xdp")
int xvs_uplink_fast(struct xdp_md *ctx)
{
	int kernel = 0;
	int stripped = vxlan_decap(ctx, &kernel);
	int act = fast_xdp(ctx);

	if (act >= 0)
		return act;
	if (stripped) {
		/* The outer headers are still in front of the data. */
		bpf_xdp_adjust_head(ctx, -VXLAN4_HLEN);
		/* A destination only tc reaches, with the kernel's VXLAN device
		 * in use: the kernel's, whole; its device decapsulates and
		 * merges it for its tc program. */
		if (act == XVS_TC_ONLY && kernel)
			return XDP_PASS;
	}
	return steer_xdp(ctx);
}

char _license[] SEC("license") = "GPL";
