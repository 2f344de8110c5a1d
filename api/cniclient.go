package api

import "github.com/xvs-project/xvs/api/xvspb"

// CNI is the client of the CNI service on the same socket (xvsctl show
// pools, blocks, endpoints).
func (c *Client) CNI() xvspb.CNIClient { return xvspb.NewCNIClient(c.conn) }
