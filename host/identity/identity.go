// Package identity turns the VF PCI address that the CNI chain hands
// kai-host (Multus deviceID from the SR-IOV device plugin) into the VF
// identity the DPU understands: PF, VF index and PCI addresses.
//
// The identity comes from sysfs, never from the VF's MAC or netdev name
// (see DESIGN.md, "Identities"): by the time kai-cni runs, the netdev has
// been moved into the pod and may have been renamed; the PCI topology does
// not change.
package identity

import (
	"errors"
	"fmt"

	"github.com/kai-dpu/kai/host/config"
	"github.com/kai-dpu/kai/sriov"
)

// ErrUnknownVF is returned (wrapped) when a PCI address does not name a VF
// this host knows: not a VF at all, or absent from the lab table. Callers
// fail the CNI ADD with it instead of retrying.
var ErrUnknownVF = errors.New("not a known VF")

// Resolver resolves a VF PCI address ("0000:03:00.2") to its identity.
type Resolver interface {
	Resolve(pci string) (sriov.VF, error)
}

// New returns the Resolver for c.Mode. An unknown or empty mode is an error
// rather than a default: the emulated table on a real host (or sysfs in the
// lab) would fail much later and less clearly. config.Parse fills in the
// default mode.
func New(c config.Identity) (Resolver, error) {
	switch c.Mode {
	case config.ModeSriov:
		return NewSriov(), nil
	case config.ModeEmulated:
		return NewEmulated(c.VFs), nil
	default:
		return nil, fmt.Errorf("identity: unknown mode %q (allowed: %q, %q)", c.Mode, config.ModeSriov, config.ModeEmulated)
	}
}

// checkPCI normalizes pci and rejects anything that is not a full PCI
// address before it is joined into a sysfs path or used as a map key.
func checkPCI(pci string) (string, error) {
	n := config.NormalizePCI(pci)
	if !config.ValidPCI(n) {
		return "", fmt.Errorf("identity: %q is not a PCI address like 0000:03:00.2: %w", pci, ErrUnknownVF)
	}
	return n, nil
}
