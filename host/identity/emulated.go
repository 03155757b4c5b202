package identity

import (
	"fmt"

	"github.com/kai-dpu/kai/host/config"
	"github.com/kai-dpu/kai/sriov"
)

// Emulated resolves VFs from a fixed table (identity.vfs in the config). In
// the lab a "VF" is a veth with no PCI device behind it, so the lab declares
// which made-up PCI address stands for which PF/VF.
type Emulated struct {
	vfs map[string]sriov.VF
}

var _ Resolver = (*Emulated)(nil)

// NewEmulated builds the table. Entries are expected to be validated by
// config (unique, well-formed); addresses are normalized again here so a
// hand-built table behaves the same. The table is copied, so later changes
// to vfs do not affect the resolver.
func NewEmulated(vfs []config.EmulatedVF) *Emulated {
	m := make(map[string]sriov.VF, len(vfs))
	for _, v := range vfs {
		pci := config.NormalizePCI(v.PCI)
		m[pci] = sriov.VF{
			PFIndex:      v.PF,
			PFPCIAddress: config.NormalizePCI(v.PFPCI),
			VFIndex:      v.VF,
			PCIAddress:   pci,
		}
	}
	return &Emulated{vfs: m}
}

// Resolve looks pci up in the table.
func (e *Emulated) Resolve(pci string) (sriov.VF, error) {
	n, err := checkPCI(pci)
	if err != nil {
		return sriov.VF{}, err
	}
	vf, ok := e.vfs[n]
	if !ok {
		return sriov.VF{}, fmt.Errorf("identity: VF %s: %w (not in identity.vfs)", n, ErrUnknownVF)
	}
	return vf, nil
}
