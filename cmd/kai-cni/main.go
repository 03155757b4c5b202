// Command kai-cni is Kai's CNI plugin. It is chained after the plugin that
// moves an SR-IOV VF into the pod and reports the attachment to kai-host,
// which hands it to the node's DPU. The logic lives in host/cni.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	cniversion "github.com/containernetworking/cni/pkg/version"

	"github.com/kai-dpu/kai/host/cni"
)

// version is set by the Makefile's -ldflags "-X main.version=...", like
// the other binaries.
var version = "dev"

func main() {
	p := cni.New()
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:    p.Add,
		Del:    p.Del,
		Check:  p.Check,
		Status: p.Status,
		GC:     p.GC,
	}, cniversion.PluginSupports("0.4.0", "1.0.0", "1.1.0"), "kai-cni "+version+": reports SR-IOV VF attachments to kai-host")
}
