#!/usr/bin/env bash
# make demo: bring up a lab (one node running xvsd with kernel forwarding
# off, two pods, an outside namespace), ping IPv4 and IPv6 between the pods,
# run a short iperf3 between them, show xvsd's ports and counters; then a
# second lab of two nodes that reach each other's pods only through VXLAN
# (Calico's VXLAN mode), ping across it in both families; then three
# nodes that learn each other's pod blocks over BGP (full mesh, IPv4 and
# IPv6 sessions), their status and a ping across; and tear everything down — on success, failure or Ctrl-C alike.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
XVSCTL=$BIN/xvsctl
prefix=xd$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')
vxprefix=${prefix}v
bgpprefix=${prefix}b
iperf_pid=""

teardown() {
	rc=$?
	trap - EXIT INT TERM
	if [ -n "$iperf_pid" ] && kill -0 "$iperf_pid" 2>/dev/null; then
		kill "$iperf_pid" 2>/dev/null || true
	fi
	echo
	for p in "$prefix" "$vxprefix" "$bgpprefix"; do
		if [ -d "/run/xvs-lab/$p" ]; then
			echo "== tearing down lab $p"
			"$XVSCTL" lab down -prefix "$p" || "$XVSCTL" lab sweep -prefix "$p" || true
		fi
	done
	if [ "$rc" = 0 ]; then echo "== demo OK"; else echo "== demo FAILED (exit $rc)"; fi
	exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

step() { echo; echo "== $*"; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

if [ "$(id -u)" != 0 ]; then echo "make demo needs root (network namespaces)" >&2; exit 1; fi

step "lab up ($prefix): node with xvsd, pods, outside"
"$XVSCTL" lab up -prefix "$prefix" -xvsd "$BIN/xvsd"
eval "$("$XVSCTL" lab status -prefix "$prefix" -o env)"

step "kernel forwarding in the node (must be 0: every forwarded packet went through xvsd)"
in_ns "$LAB_NODE_NS" sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding

step "ping IPv4 pod1 ($LAB_POD1_V4) -> pod2 ($LAB_POD2_V4)"
in_ns "$LAB_POD1_NS" ping -n -c 5 -i 0.2 -w 10 "$LAB_POD2_V4"

step "ping IPv6 pod1 ($LAB_POD1_V6) -> pod2 ($LAB_POD2_V6)"
in_ns "$LAB_POD1_NS" ping -n -c 5 -i 0.2 -w 10 "$LAB_POD2_V6"

step "iperf3 TCP pod1 -> pod2, 3 seconds"
in_ns "$LAB_POD2_NS" iperf3 -s -1 -B "$LAB_POD2_V4" >/dev/null 2>&1 &
iperf_pid=$!
for _ in $(seq 50); do
	in_ns "$LAB_POD2_NS" ss -Hltn 'sport = :5201' | grep -q . && break
	sleep 0.1
done
timeout 30 ip netns exec "$LAB_POD1_NS" iperf3 -c "$LAB_POD2_V4" -t 3 --connect-timeout 3000

step "xvsctl show ports"
"$XVSCTL" -s "$LAB_NODE_SOCKET" show ports

step "xvsctl show counters (drop reasons: see vswitch/counters.go)"
"$XVSCTL" -s "$LAB_NODE_SOCKET" show counters

step "lab down ($prefix)"
"$XVSCTL" lab down -prefix "$prefix"

step "VXLAN lab up ($vxprefix): two nodes with xvsd; the outside routes only the nodes, pods cross inside VXLAN"
"$XVSCTL" lab up -prefix "$vxprefix" -nodes 2 -pods 1 -encap vxlan -xvsd "$BIN/xvsd"
eval "$("$XVSCTL" lab status -prefix "$vxprefix" -o env)"

step "the outside's routes: no pod block, only the nodes' underlay"
in_ns "$LAB_OUTSIDE_NS" ip route

step "ping IPv4 pod1 on node1 ($LAB_POD1_V4) -> pod2 on node2 ($LAB_POD2_V4), through VXLAN over IPv4"
in_ns "$LAB_POD1_NS" ping -n -c 5 -i 0.2 -w 10 "$LAB_POD2_V4"

step "ping IPv6 pod1 on node1 ($LAB_POD1_V6) -> pod2 on node2 ($LAB_POD2_V6), through VXLAN over IPv6"
in_ns "$LAB_POD1_NS" ping -n -c 5 -i 0.2 -w 10 "$LAB_POD2_V6"

step "xvsctl show routes on node1 (the other node's pod blocks go into the tunnel)"
"$XVSCTL" -s "$LAB_NODE1_SOCKET" show routes

step "xvsctl show counters on node1"
"$XVSCTL" -s "$LAB_NODE1_SOCKET" show counters

step "lab down ($vxprefix)"
"$XVSCTL" lab down -prefix "$vxprefix"

step "BGP lab up ($bgpprefix): three nodes on one segment; pod blocks from BGP, none in the outside"
"$XVSCTL" lab up -prefix "$bgpprefix" -nodes 3 -pods 1 -bgp -xvsd "$BIN/xvsd"
eval "$("$XVSCTL" lab status -prefix "$bgpprefix" -o env)"
for _ in $(seq 100); do
	[ "$("$XVSCTL" -s "$LAB_NODE1_SOCKET" node status | grep -c Established)" = 4 ] && break
	sleep 0.2
done

step "xvsctl node status on node1 (as calicoctl node status)"
"$XVSCTL" -s "$LAB_NODE1_SOCKET" node status

step "xvsctl bgp routes -family v4 on node1"
"$XVSCTL" -s "$LAB_NODE1_SOCKET" bgp routes -family v4

step "ping IPv4 pod1 on node1 ($LAB_POD1_V4) -> pod3 on node3 ($LAB_POD3_V4), natively via the BGP next hop"
in_ns "$LAB_POD1_NS" ping -n -c 5 -i 0.2 -w 10 "$LAB_POD3_V4"

step "ping IPv6 pod1 on node1 ($LAB_POD1_V6) -> pod3 on node3 ($LAB_POD3_V6)"
in_ns "$LAB_POD1_NS" ping -n -c 5 -i 0.2 -w 10 "$LAB_POD3_V6"
