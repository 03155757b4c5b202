// Package cni implements kai-cni, the CNI plugin that tells kai-host which
// VF belongs to which pod and Kai network.
//
// kai-cni is a chained plugin: sriov-cni (on real hosts) or the reference
// host-device plugin (in the lab) has already moved the VF into the pod's
// network namespace, and IPAM has already assigned addresses. kai-cni never
// creates, moves or configures interfaces; it only reads the VF's MAC inside
// the pod, collects the addresses from prevResult and reports the attachment
// to kai-host over its unix socket. ADD returns only once the DPU reports the
// attachment Ready, so a pod never starts with a VF whose traffic the DPU
// would still drop.
//
// Network configuration (one entry of a conflist, after the VF plugin):
//
//	{
//	  "type": "kai-cni",
//	  "network": "blue",                // Kai network; default: the conflist name
//	  "socket": "/run/kai/host.sock",   // kai-host's socket (default shown)
//	  "timeoutSeconds": 30,             // how long ADD waits for Ready (default 30)
//	  "deviceID": "0000:03:00.2",       // VF PCI address; Multus injects it
//	  "delToleratesUnavailable": true,  // DEL succeeds when kai-host is down (default true)
//	  "capabilities": {"deviceID": true, "CNIDeviceInfoFile": true}
//	}
//
// The VF's PCI address comes from deviceID, else runtimeConfig.deviceID,
// else the device-info file Multus writes for the SR-IOV device plugin
// (runtimeConfig.CNIDeviceInfoFile, or Multus' default path for this
// network, container and interface).
package cni
