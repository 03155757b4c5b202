package apiserver

import (
	"fmt"
	"net/netip"
	"strings"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/dpu/controller"
	"github.com/kai-dpu/kai/dpu/store"
	"github.com/kai-dpu/kai/sriov"
)

func fromProto(p *kaiv1.Attachment) (store.Attachment, error) {
	if p == nil {
		return store.Attachment{}, &controller.Error{Kind: controller.InvalidArgument, Msg: "attachment is required"}
	}
	a := store.Attachment{
		ID: p.GetId(), Node: p.GetNode(), Network: p.GetNetwork(), MAC: p.GetMac(),
		Pod: store.Pod{Namespace: p.GetPod().GetNamespace(), Name: p.GetPod().GetName(), UID: p.GetPod().GetUid()},
		VF: sriov.VF{
			PFIndex: p.GetVf().GetPfIndex(), PFPCIAddress: p.GetVf().GetPfPciAddress(),
			VFIndex: p.GetVf().GetVfIndex(), PCIAddress: p.GetVf().GetPciAddress(),
		},
	}
	for _, s := range p.GetIps() {
		// Accept "ip" or "ip/len" (CNI results carry prefixes).
		s, _, _ = strings.Cut(s, "/")
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return store.Attachment{}, &controller.Error{Kind: controller.InvalidArgument, Msg: fmt.Sprintf("attachment %s: IP %q is not an address", a.ID, s)}
		}
		a.IPs = append(a.IPs, ip.Unmap())
	}
	return a, nil
}

func toProto(a store.Attachment) *kaiv1.Attachment {
	p := &kaiv1.Attachment{
		Id: a.ID, Node: a.Node, Network: a.Network, Mac: a.MAC, Generation: a.Generation,
		Pod: &kaiv1.Pod{Namespace: a.Pod.Namespace, Name: a.Pod.Name, Uid: a.Pod.UID},
		Vf:  &kaiv1.VF{PfIndex: a.VF.PFIndex, PfPciAddress: a.VF.PFPCIAddress, VfIndex: a.VF.VFIndex, PciAddress: a.VF.PCIAddress},
		Status: &kaiv1.AttachmentStatus{
			Phase: phase(a.Status.Phase), Reason: a.Status.Reason,
			Representor: a.Representor, ObservedGeneration: a.Status.ObservedGeneration,
		},
	}
	for _, ip := range a.IPs {
		p.Ips = append(p.Ips, ip.String())
	}
	return p
}

func phase(p store.Phase) kaiv1.Phase {
	switch p {
	case store.Ready:
		return kaiv1.Phase_PHASE_READY
	case store.Error:
		return kaiv1.Phase_PHASE_ERROR
	case store.Pending:
		return kaiv1.Phase_PHASE_PENDING
	default:
		return kaiv1.Phase_PHASE_PENDING
	}
}
