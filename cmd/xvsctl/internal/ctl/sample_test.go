package ctl

import "github.com/xvs-project/xvs/api/xvspb"

func samplePorts() []*xvspb.Port {
	return []*xvspb.Port{
		{Id: 1, Name: "eth0", Kind: "uplink", Mode: "xdp-native", Up: true, Mac: "02:00:00:00:00:01", Addresses: []string{"192.0.2.10/24", "2001:db8::10/64"}, Mtu: 1500,
			Stats: &xvspb.PortStats{RxPackets: 1234567, RxBytes: 98765432, TxPackets: 1200000, TxBytes: 96000000, TxDrops: 3}},
		{Id: 2, Name: "xvs1a2b3c", Kind: "pod", Mode: "af-packet", Up: true, Reason: "xdp attach: operation not supported, fell back to af-packet",
			PeerMac: "02:42:0a:f4:01:05", Addresses: []string{"10.244.1.5/32"}, Mtu: 1450, Stats: &xvspb.PortStats{}},
		{Id: 3, Name: "xvs-host", Kind: "host", Mode: "xdp-generic", Up: false, Reason: "link gone", Mtu: 1500},
	}
}

func sampleRoutes() []*xvspb.Route {
	return []*xvspb.Route{
		{Prefix: "0.0.0.0/0", Origin: "static", Kind: "adjacency", Via: "192.0.2.1", Port: "eth0", NextHop: "port 1 via 192.0.2.1 dst 020000000009"},
		{Prefix: "10.244.1.5/32", Origin: "pod", Kind: "port", Port: "xvs1a2b3c", NextHop: "port 2 dst 02420af40105"},
		{Prefix: "198.51.100.0/24", Origin: "static", Kind: "drop"},
		{Prefix: "2001:db8::/64", Origin: "connected", Kind: "adjacency", Port: "eth0", NextHop: "port 1 attached (unresolved)"},
	}
}

func sampleNeighbors() []*xvspb.Neighbor {
	return []*xvspb.Neighbor{
		{Port: "eth0", Address: "192.0.2.1", Mac: "02:00:00:00:00:09", State: "reachable"},
		{Port: "eth0", Address: "fe80::1", State: "incomplete"},
		{Port: "xvs1a2b3c", Address: "10.244.1.5", Mac: "02:42:0a:f4:01:05", State: "static", Static: true},
	}
}

func sampleCounters() *xvspb.GetCountersResponse {
	return &xvspb.GetCountersResponse{
		Drops:  []*xvspb.Counter{{Name: "bad-ethernet"}, {Name: "ttl-expired", Value: 12}, {Name: "no-route", Value: 3456}},
		Events: []*xvspb.Counter{{Name: "rx-packets", Value: 1000000}, {Name: "forwarded-ipv4", Value: 999000}, {Name: "forwarded-ipv6"}},
	}
}

func sampleStatus() *xvspb.StatusResponse {
	return &xvspb.StatusResponse{
		Ready: true, Version: "v0.1.0", Pid: 4242, StartTimeUnix: 1700000000, Ports: 3, PortsUp: 2, Neighbors: 3,
		Fib: &xvspb.FibSummary{RoutesV4: 3, RoutesV6: 1,
			ByOrigin: []*xvspb.Counter{{Name: "connected", Value: 1}, {Name: "pod", Value: 1}, {Name: "static", Value: 2}},
			ByKind:   []*xvspb.Counter{{Name: "adjacency", Value: 2}, {Name: "drop", Value: 1}, {Name: "port", Value: 1}}},
	}
}
