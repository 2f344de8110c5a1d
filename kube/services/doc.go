// Package services turns Kubernetes Services and EndpointSlices into the
// switch's load-balanced services (spec.Service): client-go informers on
// both, debounced, every change applied as the whole set through a Sink
// (xvsd's switch, SetServices), as kube-proxy does.
//
// Conversion (Convert), per Service:
//
//   - Every ClusterIP of every family (spec.clusterIPs, falling back to
//     spec.clusterIP): dual-stack, IPv4-only, IPv6-only. Headless
//     services (clusterIP None), ExternalName services and services
//     without a ClusterIP are ignored.
//   - Ports: TCP and UDP. An SCTP port is skipped (the NAT stage does not
//     translate it), logged once per Service version and counted in
//     Stats.SkippedPorts; the service's other ports still apply.
//   - Endpoints from the EndpointSlices labelled
//     kubernetes.io/service-name with the Service's name, of the
//     ClusterIPs' families (FQDN slices ignored): the first address of
//     each endpoint, the conditions ready (unset: true), serving (unset:
//     ready) and terminating (unset: false), Local when the endpoint's
//     nodeName is this node. A port's backends come from the slice port
//     with the service port's name and protocol, whose port number is
//     the resolved targetPort (named targetPorts included: the
//     EndpointSlice controller resolves them per pod).
//   - sessionAffinity ClientIP with sessionAffinityConfig's timeout,
//     internalTrafficPolicy and externalTrafficPolicy Local, nodePort
//     (NodePort and LoadBalancer services).
//
// The `kubernetes` Service in `default` comes through like any other: its
// EndpointSlice, which the API server itself keeps, points at the API
// server's host address.
//
// A converted service that spec.Service.Validate refuses is left out,
// logged and counted (Stats.Refused); so is the whole set when the Sink
// refuses it (Stats.ApplyErrors), retried on the next change or after
// RetryInterval.
//
// Concurrency: Run owns one goroutine that converts and applies; the
// informer handlers only kick it. Stats is safe from any goroutine. The
// Sink is called from Run's goroutine only.
//
// Allocation: control plane only; nothing here is on a packet path.
package services
