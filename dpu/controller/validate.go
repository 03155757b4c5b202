package controller

import (
	"fmt"
	"net"
	"regexp"

	"github.com/kai-dpu/kai/dpu/evpn"
	"github.com/kai-dpu/kai/dpu/store"
)

var (
	reID  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,252}$`)
	rePCI = regexp.MustCompile(`^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$`)
)

// validateSpec checks an attachment's fields on their own and normalizes
// the MAC. It needs no state, so a failure is InvalidArgument.
func validateSpec(a *store.Attachment) error {
	if !reID.MatchString(a.ID) {
		return errorf(InvalidArgument, "attachment id %q: must be 1-253 characters of letters, digits and ._:/- starting with a letter or digit", a.ID)
	}
	if a.Node == "" {
		return errorf(InvalidArgument, "attachment %s: node is required", a.ID)
	}
	if a.Network == "" {
		return errorf(InvalidArgument, "attachment %s: network is required", a.ID)
	}
	mac, err := evpn.NormalizeMAC(a.MAC)
	if err != nil {
		return wrap(InvalidArgument, err, "attachment %s", a.ID)
	}
	hw, _ := net.ParseMAC(mac)
	if hw[0]&1 == 1 {
		return errorf(InvalidArgument, "attachment %s: MAC %s is multicast; a VF needs a unicast MAC", a.ID, mac)
	}
	if mac == "00:00:00:00:00:00" {
		return errorf(InvalidArgument, "attachment %s: MAC is all zeros", a.ID)
	}
	a.MAC = mac
	seen := map[string]bool{}
	for _, ip := range a.IPs {
		if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() {
			return errorf(InvalidArgument, "attachment %s: IP %v is not a unicast address", a.ID, ip)
		}
		if seen[ip.String()] {
			return errorf(InvalidArgument, "attachment %s: IP %s listed twice", a.ID, ip)
		}
		seen[ip.String()] = true
	}
	if a.VF.PCIAddress != "" && !rePCI.MatchString(a.VF.PCIAddress) {
		return errorf(InvalidArgument, "attachment %s: VF PCI address %q must look like 0000:03:00.3", a.ID, a.VF.PCIAddress)
	}
	if a.VF.PFPCIAddress != "" && !rePCI.MatchString(a.VF.PFPCIAddress) {
		return errorf(InvalidArgument, "attachment %s: PF PCI address %q must look like 0000:03:00.0", a.ID, a.VF.PFPCIAddress)
	}
	return nil
}

// conflicts checks a against the other attachments (excluding ids in skip).
func conflicts(a store.Attachment, others []store.Attachment, skip map[string]bool) error {
	for _, o := range others {
		if o.ID == a.ID || skip[o.ID] {
			continue
		}
		if o.Representor == a.Representor {
			return errorf(AlreadyExists, "VF %s (representor %s) is already attached as %s", fmtVF(a), a.Representor, o.ID)
		}
		if o.Network == a.Network && o.MAC == a.MAC {
			return errorf(FailedPrecondition, "MAC %s is already in use in network %s by %s", a.MAC, a.Network, o.ID)
		}
	}
	return nil
}

func fmtVF(a store.Attachment) string {
	return fmt.Sprintf("pf%dvf%d", a.VF.PFIndex, a.VF.VFIndex)
}
