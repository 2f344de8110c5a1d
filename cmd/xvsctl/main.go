// Command xvsctl inspects and changes a running xvsd through its API
// socket. Everything but the wiring lives in package ctl.
package main

import (
	"os"

	"github.com/xvs-project/xvs/cmd/xvsctl/internal/ctl"
)

// labMain runs "xvsctl lab ..."; lab.go sets it to lab.Main. Without it
// (lab.go deleted) xvsctl says "lab: not built yet".
var labMain func(args []string) int

func main() {
	os.Exit(ctl.Main(os.Args[1:], os.Stdout, os.Stderr, ctl.Options{Lab: labMain}))
}
