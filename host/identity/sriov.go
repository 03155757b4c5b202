package identity

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/k8snetworkplumbingwg/sriovnet"
	utilfs "github.com/k8snetworkplumbingwg/sriovnet/pkg/utils/filesystem"

	"github.com/kai-dpu/kai/host/config"
	"github.com/kai-dpu/kai/sriov"
)

// Sriov resolves VFs from the host's sysfs:
//   - the PF PCI address is the target of <vf>/physfn
//     (sriovnet.GetPfPciFromVfPci);
//   - the PF index is the PF's PCI function number
//     (sriovnet.GetPfIndexByVfPciAddress). On a BlueField host PF0 is
//     function 0 and PF1 function 1, which is what the DPU calls pf0/pf1;
//     on NICs whose ports are separate PCI devices this would be wrong;
//   - the VF index is N of the PF's virtfnN link that points back at the VF.
//
// The VF index is read here rather than with
// sriovnet.GetVfIndexByPciAddress: in sriovnet v1.3.0 that function uses
// filepath.Glob and os.Readlink directly, bypassing the utilfs.Fs that every
// other lookup goes through, so it could not be tested against a fake sysfs
// and would mix two views of the filesystem. It also matches the link
// target by substring; this matches the exact basename.
type Sriov struct{}

var _ Resolver = (*Sriov)(nil)

// NewSriov returns a Sriov resolver. It has no configuration: sriovnet reads
// /sys of the current mount namespace.
func NewSriov() *Sriov {
	return &Sriov{}
}

var virtfnRe = regexp.MustCompile(`^virtfn([0-9]+)$`)

// Resolve returns the identity of the VF at pci. Addresses that are not a
// PCI device, or a device without a physfn link (a PF, or a non-SR-IOV
// device), give a wrapped ErrUnknownVF; unreadable or inconsistent sysfs
// gives another error, so a permissions problem is not mistaken for a wrong
// deviceID.
func (s *Sriov) Resolve(pci string) (sriov.VF, error) {
	vfPCI, err := checkPCI(pci)
	if err != nil {
		return sriov.VF{}, err
	}
	dev := filepath.Join(sriovnet.PciSysDir, vfPCI)
	if _, err := utilfs.Fs.Stat(dev); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return sriov.VF{}, fmt.Errorf("identity: VF %s: %w (no such PCI device in %s)", vfPCI, ErrUnknownVF, sriovnet.PciSysDir)
		}
		return sriov.VF{}, fmt.Errorf("identity: VF %s: %w", vfPCI, err)
	}
	pfPCI, err := sriovnet.GetPfPciFromVfPci(vfPCI)
	if err != nil {
		return sriov.VF{}, physfnError(vfPCI, err)
	}
	if !config.ValidPCI(pfPCI) {
		return sriov.VF{}, fmt.Errorf("identity: VF %s: physfn points to %q, not a PCI address", vfPCI, pfPCI)
	}
	pfIndex, err := sriovnet.GetPfIndexByVfPciAddress(vfPCI)
	if err != nil {
		return sriov.VF{}, fmt.Errorf("identity: VF %s: PF index: %w", vfPCI, err)
	}
	if pfIndex < 0 || pfIndex > 7 {
		return sriov.VF{}, fmt.Errorf("identity: VF %s: PF index %d is not a PCI function number", vfPCI, pfIndex)
	}
	vfIndex, err := vfIndexOf(pfPCI, vfPCI)
	if err != nil {
		return sriov.VF{}, err
	}
	return sriov.VF{
		PFIndex:      uint32(pfIndex),
		PFPCIAddress: pfPCI,
		VFIndex:      vfIndex,
		PCIAddress:   vfPCI,
	}, nil
}

// physfnError classifies a failed physfn read. sriovnet formats the
// underlying error with %v, so errors.Is cannot see fs.ErrNotExist through
// it; a second look at the link tells "not a VF" from "cannot read sysfs".
func physfnError(vfPCI string, err error) error {
	_, statErr := utilfs.Fs.Stat(filepath.Join(sriovnet.PciSysDir, vfPCI, "physfn"))
	if errors.Is(statErr, fs.ErrNotExist) {
		return fmt.Errorf("identity: %s: %w (a PCI device without physfn: a PF or not SR-IOV; sriovnet: %w)", vfPCI, ErrUnknownVF, err)
	}
	return fmt.Errorf("identity: VF %s: PF lookup: %w", vfPCI, err)
}

// vfIndexOf finds N such that <pf>/virtfnN links to vfPCI.
func vfIndexOf(pfPCI, vfPCI string) (uint32, error) {
	pfDir := filepath.Join(sriovnet.PciSysDir, pfPCI)
	entries, err := utilfs.Fs.ReadDir(pfDir)
	if err != nil {
		return 0, fmt.Errorf("identity: VF %s: list PF %s: %w", vfPCI, pfPCI, err)
	}
	for _, e := range entries {
		m := virtfnRe.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		target, err := utilfs.Fs.Readlink(filepath.Join(pfDir, e.Name()))
		if err != nil {
			return 0, fmt.Errorf("identity: VF %s: read %s of PF %s: %w", vfPCI, e.Name(), pfPCI, err)
		}
		if path.Base(target) != vfPCI {
			continue
		}
		n, err := strconv.ParseUint(m[1], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("identity: VF %s: %s of PF %s: %w", vfPCI, e.Name(), pfPCI, err)
		}
		return uint32(n), nil
	}
	return 0, fmt.Errorf("identity: VF %s: PF %s has no virtfn link to it (VFs being removed?)", vfPCI, pfPCI)
}
