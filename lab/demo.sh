#!/usr/bin/env bash
# make demo: bring up a lab (one node running xvsd with kernel forwarding
# off, two pods, an outside namespace), ping IPv4 and IPv6 between the pods,
# run a short iperf3 between them, show xvsd's ports and counters, and tear
# everything down — on success, failure or Ctrl-C alike.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
XVSCTL=$BIN/xvsctl
prefix=xd$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')
iperf_pid=""

teardown() {
	rc=$?
	trap - EXIT INT TERM
	if [ -n "$iperf_pid" ] && kill -0 "$iperf_pid" 2>/dev/null; then
		kill "$iperf_pid" 2>/dev/null || true
	fi
	echo
	echo "== tearing down lab $prefix"
	"$XVSCTL" lab down -prefix "$prefix" || "$XVSCTL" lab sweep -prefix "$prefix" || true
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
