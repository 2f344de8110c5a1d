package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/xvs-project/xvs/api/xvspb"
)

// ErrUnreachable: nothing answers on the API socket.
var ErrUnreachable = errors.New("cannot reach xvsd")

// UnreachableError says why the API socket did not answer.
type UnreachableError struct {
	Path string
	Err  error // the dial error
}

func (e *UnreachableError) Error() string {
	switch {
	case errors.Is(e.Err, syscall.EACCES) || errors.Is(e.Err, syscall.EPERM):
		return fmt.Sprintf("cannot reach xvsd at %s: permission denied (the socket is root's)", e.Path)
	default:
		return fmt.Sprintf("cannot reach xvsd at %s: is it running?", e.Path)
	}
}

func (e *UnreachableError) Unwrap() []error { return []error{ErrUnreachable, e.Err} }

// maxMsg bounds responses: a full Internet table listed by ListRoutes is
// about 100 MB on the wire.
const maxMsg = 256 << 20

// Client talks to xvsd. Methods return status errors from the server
// unchanged (use status.Code or Code) and an *UnreachableError when nobody
// answers.
type Client struct {
	path string
	conn *grpc.ClientConn
	rpc  xvspb.XvsClient
}

// Dial prepares a client for the socket at path. It does not connect:
// the first call does, and fails with *UnreachableError if nobody answers.
func Dial(path string) (*Client, error) {
	conn, err := grpc.NewClient("unix://"+path,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsg)),
	)
	if err != nil {
		return nil, fmt.Errorf("api client %s: %w", path, err)
	}
	return &Client{path: path, conn: conn, rpc: xvspb.NewXvsClient(conn)}, nil
}

// Close releases the connection.
func (c *Client) Close() error { return c.conn.Close() }

// RPC is the raw generated client, for calls the wrapper does not cover.
func (c *Client) RPC() xvspb.XvsClient { return c.rpc }

// wrap turns "transport unavailable" into an UnreachableError with the
// reason a plain dial gives (missing socket, refused, permission denied).
func (c *Client) wrap(err error) error {
	if err == nil || status.Code(err) != codes.Unavailable {
		return err
	}
	conn, derr := net.DialTimeout("unix", c.path, time.Second)
	if derr == nil {
		conn.Close()
		return err // the socket answers: the server itself said Unavailable
	}
	return &UnreachableError{Path: c.path, Err: derr}
}

func (c *Client) Ports(ctx context.Context) ([]*xvspb.Port, error) {
	r, err := c.rpc.ListPorts(ctx, &xvspb.ListPortsRequest{})
	return r.GetPorts(), c.wrap(err)
}

func (c *Client) AddPort(ctx context.Context, pc *xvspb.PortConfig) (*xvspb.Port, error) {
	r, err := c.rpc.AddPort(ctx, &xvspb.AddPortRequest{Port: pc})
	return r.GetPort(), c.wrap(err)
}

func (c *Client) DelPort(ctx context.Context, name string) error {
	_, err := c.rpc.DelPort(ctx, &xvspb.DelPortRequest{Name: name})
	return c.wrap(err)
}

// Routes lists every route, or with match non-empty the longest match of
// an address or prefix.
func (c *Client) Routes(ctx context.Context, match string) ([]*xvspb.Route, error) {
	r, err := c.rpc.ListRoutes(ctx, &xvspb.ListRoutesRequest{Match: match})
	return r.GetRoutes(), c.wrap(err)
}

func (c *Client) AddRoute(ctx context.Context, r *xvspb.AddRouteRequest) error {
	_, err := c.rpc.AddRoute(ctx, r)
	return c.wrap(err)
}

func (c *Client) DelRoute(ctx context.Context, prefix string) error {
	_, err := c.rpc.DelRoute(ctx, &xvspb.DelRouteRequest{Prefix: prefix})
	return c.wrap(err)
}

func (c *Client) Neighbors(ctx context.Context) ([]*xvspb.Neighbor, error) {
	r, err := c.rpc.ListNeighbors(ctx, &xvspb.ListNeighborsRequest{})
	return r.GetNeighbors(), c.wrap(err)
}

func (c *Client) Counters(ctx context.Context) (*xvspb.GetCountersResponse, error) {
	r, err := c.rpc.GetCounters(ctx, &xvspb.GetCountersRequest{})
	return r, c.wrap(err)
}

func (c *Client) Status(ctx context.Context) (*xvspb.StatusResponse, error) {
	r, err := c.rpc.Status(ctx, &xvspb.StatusRequest{})
	return r, c.wrap(err)
}
