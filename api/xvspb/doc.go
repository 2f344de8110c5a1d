// Package xvspb is the generated protobuf and gRPC code of xvsd's API,
// from xvs.proto in this directory. Do not edit the .pb.go files: change
// the .proto and run `go generate ./api/` (see package api).
//
// Messages are plain data and not safe for concurrent mutation; the
// generated client is safe for concurrent use.
package xvspb
