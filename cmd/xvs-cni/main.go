// Command xvs-cni is the xvs CNI plugin: a container runtime runs it to
// attach pods to xvsd, which does the work (see package cniplugin).
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/xvs-project/xvs/cniplugin"
)

func main() {
	skel.PluginMainFuncs(cniplugin.Funcs(), version.All, cniplugin.About)
}
