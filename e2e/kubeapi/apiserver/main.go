// Command apiserver is kube-apiserver, unchanged, built at the release this
// module pins. The tests start it on loopback against Debian's etcd.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
