package sriov

import (
	"errors"
	"fmt"
)

// VF identifies a virtual function by PF and index, never by MAC or name.
type VF struct {
	PFIndex      uint32 // PF number on the DPU (0, 1)
	PFPCIAddress string // optional, host-side PF PCI address
	VFIndex      uint32
	PCIAddress   string // host-side VF PCI address (informational on the DPU)
}

// String renders the VF the way BlueField names its representor, so error
// messages can be matched against `ip link` output by eye. The host PCI
// address is appended when known because it is what an operator has on the
// host side.
func (vf VF) String() string {
	s := fmt.Sprintf("pf%dvf%d", vf.PFIndex, vf.VFIndex)
	if vf.PCIAddress != "" {
		s += " (pci " + vf.PCIAddress + ")"
	}
	return s
}

// ErrNotFound is returned (wrapped) when no representor exists for a VF.
//
// Callers use errors.Is to tell "not there (yet)" — e.g. the host has not
// created the VF, so retry later — from real failures such as an unreadable
// sysfs or an invalid identity.
var ErrNotFound = errors.New("representor not found")

// Resolver finds the representor netdev of a VF on the DPU.
type Resolver interface {
	Representor(vf VF) (string, error)
}

// RepresentorNames returns the candidate representor names for vf, most
// specific first: the external-controller form "c1pf<PF>vf<VF>" that current
// BlueField firmware uses for host VFs, then the legacy "pf<PF>vf<VF>". The
// order matches sriovnet.GetVfRepresentorDPU so both implementations prefer
// the same netdev when, as on some DPUs, a local VF "pf0vf3" and a host VF
// "c1pf0vf3" coexist.
func RepresentorNames(vf VF) []string {
	return []string{
		fmt.Sprintf("c1pf%dvf%d", vf.PFIndex, vf.VFIndex),
		fmt.Sprintf("pf%dvf%d", vf.PFIndex, vf.VFIndex),
	}
}
