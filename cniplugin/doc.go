// Package cniplugin is the xvs-cni plugin's logic (cmd/xvs-cni is its
// main on skel.PluginMainFuncs, every CNI spec version the library
// speaks, 0.1.0 to 1.1.0): it parses the network config (a bad field is
// CNI code 7 naming it), reads K8S_POD_NAME/K8S_POD_NAMESPACE from
// CNI_ARGS and the pod's annotations from runtimeConfig
// (io.kubernetes.cri.pod-annotations), and forwards ADD, DEL, CHECK, GC and
// STATUS to xvsd's CNI service over its API socket, where package
// cniserver does the work. It turns xvsd's answer into a CNI result
// (host and pod interfaces, IPs, routes, DNS from the config), appended to
// prevResult when another plugin ran first. The config's memif key goes to
// xvsd as it is (xvsd checks it with the pod's xvs.dev/memif annotation);
// each memif port xvsd made is an interface "memif<i>" in the pod's
// sandbox with CNI 1.1's socketPath and its own IPs.
//
// When xvsd does not answer, ADD, DEL, CHECK and GC fail at once with code
// 11 (try again later: DEL must not pretend, or the pod's addresses
// would leak) and STATUS with 50, each naming the socket.
//
// Concurrency: one call per process, as CNI runs plugins. Allocation: not
// on any packet path.
package cniplugin
