package api

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/xvs-project/xvs/api/xvspb"
)

// kubeServer implements xvspb.KubeServer; status is nil without the
// node agent. The status is any JSON-marshalable value (kube/agent's
// Status), so this package does not depend on client-go.
type kubeServer struct {
	xvspb.UnimplementedKubeServer
	status func() any
}

// RegisterKube adds the Kubernetes service over the agent's status (nil:
// xvsd runs without a kubernetes: section). Call it before Serve.
func (s *Server) RegisterKube(status func() any) {
	xvspb.RegisterKubeServer(s.grpc, &kubeServer{status: status})
}

func (k *kubeServer) KubeStatus(context.Context, *xvspb.KubeStatusRequest) (*xvspb.KubeStatusResponse, error) {
	if k.status == nil {
		return &xvspb.KubeStatusResponse{}, nil
	}
	js, err := json.Marshal(k.status())
	if err != nil {
		return nil, err
	}
	return &xvspb.KubeStatusResponse{Enabled: true, StatusJson: js}, nil
}

// ErrNoKube: xvsd runs without a kubernetes: section.
var ErrNoKube = errors.New("xvsd runs standalone (no kubernetes: section in its config)")

// KubeStatus returns the node agent's status as JSON (kube/agent.Status).
func (c *Client) KubeStatus(ctx context.Context) (json.RawMessage, error) {
	resp, err := xvspb.NewKubeClient(c.conn).KubeStatus(ctx, &xvspb.KubeStatusRequest{})
	if err != nil {
		return nil, c.wrap(err)
	}
	if !resp.GetEnabled() {
		return nil, ErrNoKube
	}
	return resp.GetStatusJson(), nil
}
