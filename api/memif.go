package api

import (
	"github.com/xvs-project/xvs/api/xvspb"
	"github.com/xvs-project/xvs/config"
	"github.com/xvs-project/xvs/spec"
)

// memifFromPB is a wire memif section in the config file's terms.
func memifFromPB(m *xvspb.MemifConfig) *config.PortMemif {
	if m == nil {
		return nil
	}
	return &config.PortMemif{
		Socket: m.GetSocket(), Netns: m.GetNetns(), ID: m.GetId(), Queues: int(m.GetQueues()),
		RingSize: int(m.GetRingSize()), Polling: m.GetPolling(), Secret: m.GetSecret(),
	}
}

func memifToPB(m *spec.MemifStatus) *xvspb.MemifStatus {
	if m == nil {
		return nil
	}
	return &xvspb.MemifStatus{
		Role: m.Role, Socket: m.Socket, Id: m.ID, Polling: m.Polling, Connected: m.Connected,
		PeerName: m.PeerName, PeerIf: m.PeerIf, RxQueues: uint32(m.RxQueues), TxQueues: uint32(m.TxQueues),
		RingSize: uint32(m.RingSize), BufferSize: uint32(m.BufferSize), LastReason: m.LastReason,
		Connects: m.Connects, Disconnects: m.Disconnects, RxDrops: m.RxDrops,
	}
}
