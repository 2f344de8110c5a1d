package cniplugin

import (
	"context"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/xvs-project/xvs/api/xvspb"
)

// Funcs are the plugin's commands for skel.PluginMainFuncs.
func Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: Add, Del: Del, Check: Check, GC: GC, Status: Status}
}

// About is the plugin's VERSION "about" line.
const About = "xvs-cni: pods on the xvs userspace vSwitch (xvsd does the work over its API socket)"

// call dials xvsd and runs f. A socket nobody answers on is a
// *types.Error with code (11 for ADD/DEL/CHECK/GC, 50 for STATUS) and a
// message naming the socket.
func call[T any](c *NetConf, code uint, f func(context.Context, xvspb.CNIClient) (T, error)) (T, error) {
	var zero T
	conn, err := grpc.NewClient("unix://"+c.APISocket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return zero, types.NewError(code, "xvsd API socket "+c.APISocket, err.Error())
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	out, err := f(ctx, xvspb.NewCNIClient(conn))
	if err != nil {
		st, _ := status.FromError(err)
		switch st.Code() {
		case codes.Unavailable:
			return zero, types.NewError(code, fmt.Sprintf("xvsd is not answering on %s: is it running?", c.APISocket), st.Message())
		case codes.DeadlineExceeded:
			return zero, types.NewError(code, fmt.Sprintf("xvsd on %s did not answer within %v", c.APISocket, c.timeout), st.Message())
		case codes.Unimplemented:
			return zero, types.NewError(code, fmt.Sprintf("xvsd on %s has no CNI server: add an ipam: section to its config", c.APISocket), st.Message())
		}
		return zero, types.NewError(types.ErrIOFailure, "xvsd call failed", err.Error())
	}
	return out, nil
}

func fromPB(e *xvspb.CNIError) error {
	if e == nil {
		return nil
	}
	return types.NewError(uint(e.GetCode()), e.GetMsg(), e.GetDetails())
}

func request(args *skel.CmdArgs, c *NetConf) (*xvspb.CNIRequest, error) {
	k := K8sArgs{}
	if args.Args != "" {
		if err := types.LoadArgs(args.Args, &k); err != nil {
			return nil, types.NewError(types.ErrInvalidEnvironmentVariables, "CNI_ARGS", err.Error())
		}
	}
	r := &xvspb.CNIRequest{
		ContainerId: args.ContainerID, Netns: args.Netns, Ifname: args.IfName,
		PodName: string(k.K8S_POD_NAME), PodNamespace: string(k.K8S_POD_NAMESPACE),
		PodAnnotations: c.annotations(), Mode: c.Mode,
		Ipv4Pools: c.IPAM.IPv4Pools, Ipv6Pools: c.IPAM.IPv6Pools, Mtu: int32(c.MTU),
		Memif: string(c.Memif),
	}
	if a := c.IPAM.AssignIPv4; a != nil || c.IPAM.AssignIPv6 != nil {
		r.Ipv4 = a == nil || *a == "true"
		r.Ipv6 = c.IPAM.AssignIPv6 != nil && *c.IPAM.AssignIPv6 == "true"
	}
	return r, nil
}

// Add is CNI ADD.
func Add(args *skel.CmdArgs) error {
	c, err := ParseConf(args.StdinData)
	if err != nil {
		return err
	}
	req, err := request(args, c)
	if err != nil {
		return err
	}
	rep, err := call(c, types.ErrTryAgainLater, func(ctx context.Context, cl xvspb.CNIClient) (*xvspb.CNIAddReply, error) {
		return cl.CNIAdd(ctx, req)
	})
	if err != nil {
		return err
	}
	if err := fromPB(rep.GetError()); err != nil {
		return err
	}
	res, err := result(c, args, rep)
	if err != nil {
		return err
	}
	return types.PrintResult(res, c.CNIVersion)
}

// result is xvsd's answer as a CNI result, appended to prevResult's
// interfaces, IPs and routes when xvs runs after another plugin.
func result(c *NetConf, args *skel.CmdArgs, rep *xvspb.CNIAddReply) (*current.Result, error) {
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	if c.PrevResult != nil {
		prev, err := current.NewResultFromResult(c.PrevResult)
		if err != nil {
			return nil, types.NewError(types.ErrDecodingFailure, "prevResult", err.Error())
		}
		res = prev
	}
	base := len(res.Interfaces)
	res.Interfaces = append(res.Interfaces,
		&current.Interface{Name: rep.GetHostIfname(), Mac: rep.GetHostMac()},
		&current.Interface{Name: args.IfName, Mac: rep.GetPodMac(), Sandbox: args.Netns, Mtu: int(rep.GetMtu())},
	)
	podIdx := base + 1
	for _, ip := range rep.GetIps() {
		a, n, err := net.ParseCIDR(ip.GetAddress())
		if err != nil {
			return nil, types.NewError(types.ErrDecodingFailure, "xvsd's address", err.Error())
		}
		n.IP = a
		res.IPs = append(res.IPs, &current.IPConfig{Interface: &podIdx, Address: *n, Gateway: net.ParseIP(ip.GetGateway())})
	}
	// Each memif port is an interface of its own in the pod's sandbox,
	// with no kernel device: CNI 1.1's socketPath says where its
	// application connects (an abstract socket in the pod's netns).
	for i, m := range rep.GetMemifs() {
		idx := len(res.Interfaces)
		res.Interfaces = append(res.Interfaces, &current.Interface{Name: fmt.Sprintf("memif%d", i), Sandbox: args.Netns, SocketPath: m.GetSocketPath()})
		for _, ip := range m.GetIps() {
			a, n, err := net.ParseCIDR(ip.GetAddress())
			if err != nil {
				return nil, types.NewError(types.ErrDecodingFailure, "xvsd's memif address", err.Error())
			}
			n.IP = a
			res.IPs = append(res.IPs, &current.IPConfig{Interface: &idx, Address: *n, Gateway: net.ParseIP(ip.GetGateway())})
		}
	}
	for _, r := range rep.GetRoutes() {
		_, dst, err := net.ParseCIDR(r.GetDst())
		if err != nil {
			return nil, types.NewError(types.ErrDecodingFailure, "xvsd's route", err.Error())
		}
		res.Routes = append(res.Routes, &types.Route{Dst: *dst, GW: net.ParseIP(r.GetGw())})
	}
	if len(c.DNS.Nameservers) > 0 || len(c.DNS.Search) > 0 || c.DNS.Domain != "" || len(c.DNS.Options) > 0 {
		res.DNS = c.DNS
	}
	return res, nil
}

// Del is CNI DEL. It succeeds when the pod is already gone; it fails
// (code 11) when xvsd cannot be asked, so the runtime retries rather than
// leaking the pod's addresses.
func Del(args *skel.CmdArgs) error {
	return podCall(args, xvspb.CNIClient.CNIDel)
}

// Check is CNI CHECK.
func Check(args *skel.CmdArgs) error {
	return podCall(args, xvspb.CNIClient.CNICheck)
}

// podCall is a verb on one attachment that answers nothing but an error
// (DEL, CHECK): parse, ask xvsd, map its error.
func podCall(args *skel.CmdArgs, rpc func(xvspb.CNIClient, context.Context, *xvspb.CNIRequest, ...grpc.CallOption) (*xvspb.CNIReply, error)) error {
	c, err := ParseConf(args.StdinData)
	if err != nil {
		return err
	}
	req, err := request(args, c)
	if err != nil {
		return err
	}
	rep, err := call(c, types.ErrTryAgainLater, func(ctx context.Context, cl xvspb.CNIClient) (*xvspb.CNIReply, error) {
		return rpc(cl, ctx, req)
	})
	if err != nil {
		return err
	}
	return fromPB(rep.GetError())
}

// GC is CNI GC: xvsd releases every attachment of this node not in
// cni.dev/valid-attachments.
func GC(args *skel.CmdArgs) error {
	c, err := ParseConf(args.StdinData)
	if err != nil {
		return err
	}
	req := &xvspb.CNIGCRequest{}
	for _, a := range c.ValidAttachments {
		req.Valid = append(req.Valid, &xvspb.CNIAttachment{ContainerId: a.ContainerID, Ifname: a.IfName})
	}
	rep, err := call(c, types.ErrTryAgainLater, func(ctx context.Context, cl xvspb.CNIClient) (*xvspb.CNIReply, error) {
		return cl.CNIGC(ctx, req)
	})
	if err != nil {
		return err
	}
	return fromPB(rep.GetError())
}

// Status is CNI STATUS: code 50 when xvsd cannot take ADDs (not running,
// dataplane not ready, no pool).
func Status(args *skel.CmdArgs) error {
	c, err := ParseConf(args.StdinData)
	if err != nil {
		return err
	}
	rep, err := call(c, codeNotReady, func(ctx context.Context, cl xvspb.CNIClient) (*xvspb.CNIReply, error) {
		return cl.CNIStatus(ctx, &xvspb.CNIStatusRequest{})
	})
	if err != nil {
		return err
	}
	return fromPB(rep.GetError())
}

// codeNotReady is CNI 1.1's "plugin not available" for STATUS (the
// library names no constant for it).
const codeNotReady uint = 50
