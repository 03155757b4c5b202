package sriov

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/k8snetworkplumbingwg/sriovnet"
)

// maxDPUPFIndex is the highest PF index sriovnet's *DPU helpers accept; they
// reject anything but "0" and "1" (a BlueField has two PFs per host).
const maxDPUPFIndex = 1

// Sriovnet resolves representors on a real DPU with
// sriovnet.GetVfRepresentorDPU, which scans /sys/class/net for a switchdev
// netdev (non-empty phys_switch_id) whose phys_port_name is
// "c1pf<PF>vf<VF>", then the legacy "pf<PF>vf<VF>". The returned name is the
// netdev name, which need not equal the port name (e.g. after a rename).
//
// Known limits inherited from sriovnet v1.3.0: controller 1 is assumed (no
// multi-host/multi-chassis), and VF.PFPCIAddress is not used.
type Sriovnet struct{}

var _ Resolver = (*Sriovnet)(nil)

// NewSriovnet returns a Sriovnet resolver. It has no configuration: sriovnet
// reads the real sysfs of the current network namespace.
func NewSriovnet() *Sriovnet {
	return &Sriovnet{}
}

// Representor returns the representor netdev of vf, a wrapped ErrNotFound if
// none exists, or an error for a PF index sriovnet cannot handle.
func (s *Sriovnet) Representor(vf VF) (string, error) {
	if vf.PFIndex > maxDPUPFIndex {
		return "", fmt.Errorf("sriov: VF %s: PF index %d not supported on the DPU (sriovnet accepts 0 or 1)", vf, vf.PFIndex)
	}
	// GetVfRepresentorFromPortParams needs the controller number, which the
	// legacy pf<N>vf<M> names lack; this call matches both name forms.
	name, err := sriovnet.GetVfRepresentorDPU( //nolint:staticcheck // see above
		strconv.FormatUint(uint64(vf.PFIndex), 10),
		strconv.FormatUint(uint64(vf.VFIndex), 10),
	)
	if err != nil {
		return "", mapSriovnetError(vf, err)
	}
	return name, nil
}

// mapSriovnetError turns sriovnet's not-found sentinels into our ErrNotFound
// so callers depend on this package, not on sriovnet. The original error
// stays in the chain (two %w) for logs and for errors.Is against sriovnet's
// sentinels.
func mapSriovnetError(vf VF, err error) error {
	if errors.Is(err, sriovnet.ErrRepresentorNotFound) || errors.Is(err, sriovnet.ErrDeviceNotFound) {
		return fmt.Errorf("sriov: VF %s: %w (sriovnet: %w)", vf, ErrNotFound, err)
	}
	return fmt.Errorf("sriov: VF %s: sriovnet: %w", vf, err)
}
