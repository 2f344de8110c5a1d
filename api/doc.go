// Package api is xvsd's control API: a gRPC service (Xvs, defined in
// xvspb/xvs.proto) served on a unix socket, the server that maps it onto a
// Dataplane (the running *vswitch.Switch), and the Go client that xvsctl and
// the CNI plugin use.
//
// The socket is created mode 0600 in a directory of mode 0750: only root
// talks to xvsd. Listen removes a stale socket left by a crashed xvsd but
// refuses to start when another xvsd still answers on it.
//
// Errors reach clients as gRPC status codes: InvalidArgument for input that
// fails validation (the message names the field and quotes the value, as
// the config file's errors do), NotFound, AlreadyExists, FailedPrecondition
// for changes the dataplane refuses in its current state (deleting a
// connected route), Unavailable for errors wrapping ErrNotReady, Internal
// otherwise. See errors.go for the table. Reads are answered whether or not
// the switch is ready; Status says which.
//
// # Services
//
// service.go serves xvspb/service.proto's Services service over a
// ServiceBackend (the daemon): SetServices validates with
// config.ResolveServices (the file's rules and words, "services[0].ports[1].protocol:
// ..."), ListServices returns every source's services and the NAT policy,
// ShowConntrack walks the conntrack table with conntrack.ParseFilter's
// filter and a limit (default DefaultConntrackLimit) and returns its
// counters. Without a NAT stage the calls answer Unavailable.
//
// # State across restarts
//
// With ServerOptions.StateFile set, every port and route the API adds is
// recorded (state.go: protojson messages, written atomically by rename) and
// Restore replays them through the same validation at start, after the
// config file's ports: a restarted xvsd re-adopts every pod with its
// addresses. A recorded port whose interface is gone is dropped with a
// warning; only an unreadable file stops the start.
//
// # Concurrency
//
// gRPC runs each call on its own goroutine. The server serializes calls
// that change state (AddPort, DelPort, AddRoute, DelRoute) with one mutex,
// so check-then-act validation against the current ports cannot race;
// reads go straight to the Dataplane, whose methods are safe for concurrent
// use. A Client is safe for concurrent use.
//
// # Allocation
//
// Control path only: every call allocates. Nothing here runs per packet.
//
// # Regenerating the protobuf code
//
// The generated xvspb/*.pb.go files are committed, so building needs no
// protoc. After editing xvspb/xvs.proto, with protoc (Debian
// protobuf-compiler) and the two plugins installed:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
//	go generate ./api/
//
// Regenerating an unchanged .proto with these versions reproduces the
// committed files byte for byte.
package api

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative -I . xvspb/xvs.proto
//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative -I . xvspb/cni.proto
//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative -I . xvspb/bgp.proto
//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative -I . xvspb/kube.proto
//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative -I . xvspb/service.proto
