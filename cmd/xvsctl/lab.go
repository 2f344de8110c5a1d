package main

import "github.com/xvs-project/xvs/lab"

// "xvsctl lab ..." is the test lab's command line (package lab).
func init() { labMain = lab.Main }
