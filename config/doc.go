// Package config reads xvsd's YAML configuration file, applies defaults and
// command-line overrides, validates it, and turns it into a vswitch.Config
// plus the daemon's own settings (API socket, metrics and health addresses,
// logging).
//
// Validation reports every problem it finds, each naming the field and the
// value, in the style
//
//	ports[1].addresses[0]: "10.0.0.300/32": invalid prefix
//	ports[0].name: "veth9": no such interface
//
// so an operator can fix a file without guessing. Unknown keys are errors
// (a typo must not silently fall back to a default).
//
// # File format
//
// Every key is optional; an empty file is a switch with no ports that waits
// for the CNI plugin to add pods through the API.
//
//	# worker goroutines, one per core you give the dataplane (default 1)
//	workers: 2
//	# frames per vector, 1..256 (default 256: fewer sendto calls per packet)
//	batch_size: 256
//	# busy | adaptive (default adaptive)
//	poll: adaptive
//	# adaptive: how long an idle worker keeps polling before it sleeps in
//	# poll(2), 0s..100ms (default 0s: sleep at once, which measured best
//	# where the pods share the worker's cores; spinning saves a wake-up per
//	# burst when the worker has a core to itself; see docs/BENCHMARKS.md)
//	idle_spin: 0s
//	# pin worker i to CPU worker_cpus[i] (default: not pinned), as VPP's
//	# corelist-workers: a pinned worker keeps its caches and never migrates
//	worker_cpus: [1]
//	# forward pod-to-pod frames in the pod ports' own BPF programs, without
//	# a trip through a worker (default false): XDP for AF_XDP ports, tc for
//	# af-packet ports (TCP super-frames whole, to other nodes' pods as well);
//	# and frames from the network to the node's pods in the uplink's
//	# program (XDP: to AF_XDP pods, VXLAN over IPv4 decapsulated there;
//	# tc on an af-packet uplink: to every pod). With vxlan: as well, xvsd
//	# creates its own metadata-mode VXLAN device, xvs.vxlan, through which
//	# af-packet pods' tc programs reach other nodes' pods (super-frames
//	# whole); the host's routes must reach the other nodes' VTEPs. AF_XDP pods must have GRO on
//	# (ethtool -K eth0 gro on) to receive redirected frames
//	xdp_fast_path: false
//	# UMEM frames per worker, a power of two (default 16384: 64 MiB at 4 KiB;
//	# the uplink keeps 2048 posted for the kernel to fill, each AF_XDP pod
//	# 1024, so about 13 AF_XDP pods per worker; mode auto puts the rest on
//	# AF_PACKET and says why)
//	frames: 16384
//	# UMEM frame size, 2048 or 4096 (default 4096)
//	frame_size: 4096
//	# the gateway pods route through; the switch answers ARP/NDP for it
//	gateway_v4: 169.254.1.1                  # default
//	gateway_v6: fe80::ecee:eeff:feee:eeee    # default
//	gateway_mac: ee:ee:ee:ee:ee:ee           # default
//	# ICMP errors per second per worker (default 100)
//	icmp_rate: 100
//
//	# ports and routes added through the API, replayed at start so a restart
//	# keeps every pod and its addresses (default /var/lib/xvs/state.json)
//	state_file: /var/lib/xvs/state.json
//
//	# gRPC API, a unix socket created 0600 (default /run/xvs/xvsd.sock)
//	api_socket: /run/xvs/xvsd.sock
//	# Prometheus /metrics; must be a loopback address (default 127.0.0.1:9091)
//	metrics_addr: 127.0.0.1:9091
//	# /healthz and /readyz; must be a loopback address (default 127.0.0.1:9099)
//	health_addr: 127.0.0.1:9099
//	# debug | info | warn | error (default info); text | json (default text)
//	log_level: info
//	log_format: text
//
//	# VXLAN (Calico's VXLAN mode): this node is a tunnel endpoint; leave the
//	# section out for native routing only. vxlan: {} takes every default.
//	vxlan:
//	  vni: 4096                    # default 4096, Calico's
//	  port: 4789                   # UDP port (default 4789)
//	  mac: 02:58:03:00:00:01       # this node's VTEP MAC (default: the uplink's)
//	  vtep_v4: 192.0.2.10          # tunnel source addresses (default: the
//	  vtep_v6: 2001:db8::10        # uplink's first address of each family)
//
//	ports:
//	  # the NIC: only pod-prefix and VXLAN traffic is steered to the switch
//	  - name: eth0
//	    kind: uplink                 # pod | uplink | host
//	    mode: auto                   # auto | xdp-zerocopy | xdp-native | xdp-generic | af-packet | memif
//	                                 # (af-packet: AF_PACKET steered by tc; the link keeps TSO)
//	    queue: 0                     # first NIC queue (uplink only)
//	    queues: 1                    # NIC queues from queue on, one AF_XDP socket each,
//	                                 # served by worker queue%workers (shown as eth0/q1, ...)
//	    addresses: [192.0.2.10/24, 2001:db8::10/64]   # node addresses, with subnet length
//	  # the host port: the switch's end of a veth pair whose other end the
//	  # kernel routes the pod prefixes out of (via 169.254.1.1 onlink and
//	  # fe80::ecee:eeff:feee:eeee); addresses are the node's own, which pods
//	  # reach through it (they may repeat the uplink's)
//	  - name: xvshostp
//	    kind: host
//	    addresses: [192.0.2.10/32, 2001:db8::10/128]
//	  # a pod, host end of its veth; addresses are the pod's /32 and /128
//	  - name: xvs1a2b3c
//	    kind: pod
//	    addresses: [10.244.1.5/32, fd00:10:244:1::5/128]
//	    peer_mac: 02:42:0a:f4:01:05  # the pod's eth0; omit to learn it
//	    mtu: 1450
//	  # a pod's memif: shared-memory rings, xvsd the memif server; the pod's
//	  # application connects to the socket. The pod's addresses here are
//	  # routed to the memif port while a peer is connected.
//	  - name: xvs1a2b3c-m0           # the port's name (no kernel interface)
//	    kind: pod
//	    mode: memif
//	    addresses: [10.244.1.6/32, fd00:10:244:1::6/128]
//	    peer_mac: 02:fe:0a:f4:01:06  # the application's MAC; omit to learn it
//	    memif:
//	      socket: "@xvs-memif"       # abstract (in netns), or an absolute path
//	      netns: /proc/1234/ns/net   # open it in the pod's namespace; omit for xvsd's
//	      id: 0                      # the interface id the peer asks for
//	      queues: 1                  # queue pairs offered, all served by one worker
//	      ring_size: 1024            # most descriptors per ring (power of two)
//	      polling: false             # true: the peer never signals, the worker polls
//
//	routes:
//	  - prefix: 0.0.0.0/0
//	    via: 192.0.2.1               # must be on a connected subnet of some port
//	  - prefix: 10.244.2.0/24
//	    via: 192.0.2.11
//	    port: eth0                   # optional: pin the output port
//	  - prefix: fd00:10:244:2::/64
//	    via: fe80::1                 # link-local next hops need a port
//	    port: eth0
//	  - prefix: 198.51.100.0/24
//	    blackhole: true
//	  # another node's pod blocks through VXLAN: its VTEP address (the
//	  # outer header's family follows it, IPv6 pods may ride IPv4) and MAC;
//	  # the pod MTU must leave room (1450 over IPv4, 1430 over IPv6)
//	  - prefix: 10.244.3.0/24
//	    vxlan: {remote: 192.0.2.12, mac: "02:58:03:00:00:02"}
//	  - prefix: fd00:10:244:3::/64
//	    vxlan: {remote: 2001:db8::12, mac: "02:58:03:00:00:02"}
//
//	# BGP (optional): package bgp's Config inline, in Calico's names, and
//	# what xvsd adds. Learned routes enter the FIB as origin bgp: natively
//	# via the BGP next hop (it must be on a port's subnet), or through the
//	# tunnel of the node a bgp.vxlan entry names; a prefix another origin
//	# (these routes:, pods, the node) has is left alone.
//	bgp:
//	  asNumber: 64512                # the cluster's (default)
//	  nodeIPv4: 192.0.2.10           # sessions from, and next hop of, what
//	  nodeIPv6: 2001:db8::10         # this node advertises
//	  meshMembers: [192.0.2.11, 192.0.2.12, 2001:db8::11, 2001:db8::12]
//	  peers:
//	    - {peerIP: 192.0.2.1, asNumber: 65000, families: [ipv4, ipv6]}
//	  # the node's pod blocks, advertised as aggregates and blackholed
//	  # here (pods' own /32 and /128 routes win over the blackhole)
//	  advertise: [10.244.1.0/26, fd00:10:244:1::/122]
//	  # other nodes' VTEPs (needs vxlan:): routes whose next hop or peer
//	  # is one of addresses go into the tunnel to remote (default: the
//	  # first address); Calico keeps this on the Node object
//	  vxlan:
//	    - {addresses: [192.0.2.12, 2001:db8::12], remote: 192.0.2.12, mac: "02:58:03:00:00:02"}
//
//	# Kubernetes (optional): run the node agent (package kube/agent). The
//	# BGP mesh follows the Node objects, explicit peers the BGPPeers, the
//	# AS the BGPConfiguration; other nodes' VTEPs and blocks (from their
//	# annotations) become VXLAN routes for pools with vxlanMode Always or
//	# CrossSubnet; pod annotations come from the API. Absent: xvsd runs
//	# standalone.
//	# With an ipam: section too, IPAM lives in the API server, as in
//	# Calico's Kubernetes datastore mode: the pools are the IPPool objects
//	# (ipam.pools is refused: apply IPPools instead), blocks are IPAMBlock
//	# objects claimed with resourceVersion compare-and-swap, so nodes
//	# sharing a pool never claim the same block, and the pods' allocations
//	# are recorded in them (a restarted xvsd re-adopts its pods from them
//	# and the endpoint records next to ipam.store; no bbolt file is
//	# opened). ipam.node, if set, must equal kubernetes.node. Until the
//	# store has synced with the API server the CNI server is not ready
//	# (STATUS 50, ADD "try again later"). Every node reclaims the blocks
//	# and addresses of a node whose Node object has been gone for
//	# reclaim_grace (no leader: the writes are compare-and-swap).
//	kubernetes:
//	  kubeconfig: /etc/xvs/kubeconfig  # empty: in-cluster (service account)
//	  node: node-a                     # default $NODE_NAME, ipam.node, hostname
//	  namespace: xvs-system            # BGPPeer password Secrets (default $POD_NAMESPACE)
//	  reclaim_grace: 10m               # default 10m, at least 1s
//
//	# Services (optional), translated by the switch's NAT stage; the API's
//	# and the Kubernetes agent's join them. Kubernetes' field names.
//	services:
//	  - name: default/web              # unique; "namespace/name" by convention
//	    clusterIPs: [198.19.128.10, "fd00:96::10"]   # at most one per family
//	    sessionAffinity: ClientIP      # None (default) | ClientIP
//	    timeoutSeconds: 10800          # ClientIP only, 1..86400 (default 10800)
//	    internalTrafficPolicy: Local   # Cluster (default) | Local
//	    externalTrafficPolicy: Cluster # Cluster (default) | Local (NodePort)
//	    ports:
//	      - name: http
//	        protocol: TCP              # TCP (default) | UDP; SCTP is refused
//	        port: 80
//	        nodePort: 30080            # optional: the port on the node's addresses
//	        endpoints:                 # of a ClusterIP's family
//	          - {addr: 198.19.1.5, port: 8080, local: true}   # ready defaults to true,
//	          - {addr: "fd00:19:1::5", port: 8080, ready: false, serving: true, terminating: true}
//	                                   # serving to ready, terminating to false
//
//	# natOutgoing (see Config.NATFor): traffic from an ipam pool (or an
//	# IPPool from the API) with natOutgoing: true to a destination outside
//	# every pool, these internal prefixes and the uplinks' subnets is
//	# source-NATed to the node's address.
//	nat:
//	  portMin: 61000                   # SNAT source ports, >= 1024 (default 61000-65535;
//	  portMax: 65535                   # one end given, the other is its default)
//	  internal: [198.19.128.0/20, "fd00:96::/112"]   # service CIDRs, other node subnets
//
// Command-line flags of xvsd override the file (see Overrides).
//
// # Concurrency
//
// Everything here is plain functions over values, safe for concurrent use;
// nothing is shared. Load and Resolve allocate freely: they run once at
// start-up or per API call, never per packet.
package config
