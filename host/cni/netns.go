package cni

import (
	"errors"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// linkMAC reads the MAC of ifName inside the pod's netns. The interface is
// the truth: the DPU's anti-spoofing admits exactly this MAC, so it must be
// what the VF actually sends with, whatever a plugin reported.
func linkMAC(netnsPath, ifName string) (string, error) {
	if netnsPath == "" {
		return "", types.NewError(types.ErrInvalidNetNS, "kai-cni: CNI_NETNS is empty", "")
	}
	netns, err := ns.GetNS(netnsPath)
	if err != nil {
		return "", types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("kai-cni: opening pod netns %s: %v", netnsPath, err), "")
	}
	defer func() { _ = netns.Close() }()

	var mac net.HardwareAddr
	err = netns.Do(func(ns.NetNS) error {
		link, err := netlink.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("looking up %s: %w", ifName, err)
		}
		mac = link.Attrs().HardwareAddr
		return nil
	})
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		return "", types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("interface %s not found in pod netns %s: kai-cni must be chained after the plugin that moves the VF into the pod (sriov-cni or host-device)", ifName, netnsPath), "")
	case err != nil:
		return "", fmt.Errorf("kai-cni: reading %s in pod netns %s: %w", ifName, netnsPath, err)
	}
	if len(mac) == 0 {
		return "", types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("interface %s in pod netns %s has no MAC address; kai-cni needs an Ethernet VF", ifName, netnsPath), "")
	}
	return mac.String(), nil
}

// sameMAC compares MACs independent of case and separator style.
func sameMAC(a, b string) bool {
	ma, errA := net.ParseMAC(a)
	mb, errB := net.ParseMAC(b)
	return errA == nil && errB == nil && ma.String() == mb.String()
}

// addressing returns the pod interface's MAC and the addresses prevResult
// assigned to it. The MAC is read from the interface and, when prevResult
// names one for the same interface and sandbox, must agree with it: a
// mismatch means the chain is inconsistent and the DPU would drop the
// pod's traffic.
func addressing(prev *current.Result, netnsPath, ifName string) (string, []string, error) {
	mac, err := linkMAC(netnsPath, ifName)
	if err != nil {
		return "", nil, err
	}
	ours := -1
	for i, iface := range prev.Interfaces {
		if iface != nil && iface.Name == ifName && iface.Sandbox == netnsPath {
			ours = i
			break
		}
	}
	if ours >= 0 && prev.Interfaces[ours].Mac != "" && !sameMAC(prev.Interfaces[ours].Mac, mac) {
		return "", nil, types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("prevResult reports MAC %s for %s but the interface has %s", prev.Interfaces[ours].Mac, ifName, mac), "")
	}

	var ips []string
	for _, ipc := range prev.IPs {
		if ipc == nil || ipc.Address.IP == nil {
			continue
		}
		// An address bound to another interface of the result (a chain may
		// report host-side veths) is not the VF's.
		if ipc.Interface != nil {
			i := *ipc.Interface
			if i < 0 || i >= len(prev.Interfaces) || prev.Interfaces[i] == nil || prev.Interfaces[i].Name != ifName {
				continue
			}
			if ours >= 0 && i != ours {
				continue
			}
		}
		ips = append(ips, ipc.Address.IP.String())
	}
	return mac, ips, nil
}
