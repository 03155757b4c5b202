package agent

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/host/checkpoint"
	"github.com/kai-dpu/kai/host/devicepool"
	"github.com/kai-dpu/kai/host/identity"
)

// HostServer serves kai-cni (kai.v1.Host) on the agent.
type HostServer struct {
	kaiv1.UnimplementedHostServer
	a *Agent
}

// NewHostServer returns the kai.v1.Host service of a.
func NewHostServer(a *Agent) *HostServer { return &HostServer{a: a} }

// Add implements kai.v1.Host: resolve the VF, check the pool, checkpoint,
// attach on the DPU and wait until it is Ready. On failure the checkpoint
// entry is removed again, so a failed ADD leaves nothing behind.
func (h *HostServer) Add(ctx context.Context, r *kaiv1.HostAddRequest) (*kaiv1.HostAddResponse, error) {
	a := h.a
	switch {
	case r.GetId() == "":
		return nil, status.Error(codes.InvalidArgument, "attachment id is required")
	case r.GetNetwork() == "":
		return nil, status.Error(codes.InvalidArgument, "network is required")
	case r.GetPciAddress() == "":
		return nil, status.Error(codes.InvalidArgument, "VF PCI address (deviceID) is required")
	}
	if a.pool != nil {
		if err := a.pool.Check(r.GetPciAddress()); err != nil {
			code := codes.Internal
			if errors.Is(err, devicepool.ErrNotInPool) {
				code = codes.FailedPrecondition
			}
			return nil, status.Error(code, err.Error())
		}
	}
	vf, err := a.ids.Resolve(r.GetPciAddress())
	if err != nil {
		code := codes.Internal
		if errors.Is(err, identity.ErrUnknownVF) {
			code = codes.NotFound
		}
		return nil, status.Error(code, err.Error())
	}
	if err := a.Ready(); err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	c := checkpoint.Attachment{
		ID: r.GetId(), ContainerID: r.GetContainerId(), IfName: r.GetIfname(), NetNS: r.GetNetns(),
		Pod:     checkpoint.Pod{Namespace: r.GetPod().GetNamespace(), Name: r.GetPod().GetName(), UID: r.GetPod().GetUid()},
		Network: r.GetNetwork(), VF: vf, MAC: r.GetMac(), IPs: r.GetIps(),
	}
	timeout := a.opts.AddTimeout
	if t := time.Duration(r.GetTimeoutSeconds()) * time.Second; t > 0 {
		timeout = t
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	a.mu.RLock()
	defer a.mu.RUnlock()
	defer a.vfs.lock(vfKey(c.VF.PCIAddress))()
	_, existed := a.ck.Get(c.ID)
	if err := a.ck.Put(c); err != nil {
		return nil, status.Errorf(codes.Internal, "checkpoint: %v", err)
	}
	resp, err := a.att.Attach(ctx, &kaiv1.AttachRequest{Attachment: a.toProto(c)})
	if status.Code(err) == codes.AlreadyExists {
		// The DPU accepted everything but the VF being taken; if the
		// holder is ours, replace it and try again.
		if stale := a.staleHolders(c); len(stale) > 0 {
			if err = a.dropStaleHolders(ctx, c, stale); err == nil {
				resp, err = a.att.Attach(ctx, &kaiv1.AttachRequest{Attachment: a.toProto(c)})
			}
		}
	}
	if err == nil && resp.GetAttachment().GetStatus().GetPhase() != kaiv1.Phase_PHASE_READY {
		st := resp.GetAttachment().GetStatus()
		err = status.Errorf(codes.FailedPrecondition, "DPU reports the attachment %s: %s", st.GetPhase(), st.GetReason())
	}
	if err != nil {
		if !existed {
			a.rollback(c.ID)
		}
		return nil, dpuError(err)
	}
	a.smu.Lock()
	a.status[c.ID] = resp.GetAttachment()
	a.smu.Unlock()
	return &kaiv1.HostAddResponse{Attachment: resp.GetAttachment()}, nil
}

// vfKey is the per-VF lock key of Add and Del.
func vfKey(pci string) string { return "vf/" + pci }

// staleHolders are the other attachments of c's VF in the checkpoint.
func (a *Agent) staleHolders(c checkpoint.Attachment) []checkpoint.Attachment {
	var out []checkpoint.Attachment
	for _, o := range a.ck.List() {
		if o.ID != c.ID && o.VF.PFIndex == c.VF.PFIndex && o.VF.VFIndex == c.VF.VFIndex {
			out = append(out, o)
		}
	}
	return out
}

// dropStaleHolders removes other attachments of the same VF. The device
// plugin gives a VF to one pod at a time, so an older attachment of it is
// one whose DEL never reached kai-host (kai-cni tolerates DEL while
// kai-host is down); without this the DPU would refuse the new pod.
func (a *Agent) dropStaleHolders(ctx context.Context, c checkpoint.Attachment, stale []checkpoint.Attachment) error {
	for _, o := range stale {
		a.log.Info("replacing a stale attachment of the same VF", "stale", o.ID, "new", c.ID, "pci", c.VF.PCIAddress)
		if err := a.ck.Delete(o.ID); err != nil {
			return status.Errorf(codes.Internal, "checkpoint: %v", err)
		}
		a.smu.Lock()
		delete(a.status, o.ID)
		a.smu.Unlock()
		if _, err := a.att.Detach(ctx, &kaiv1.DetachRequest{Id: o.ID}); err != nil {
			return dpuError(err)
		}
	}
	return nil
}

// rollback forgets a failed Add; the DPU side follows at once or at the
// next Sync.
func (a *Agent) rollback(id string) {
	if err := a.ck.Delete(id); err != nil {
		a.log.Error("rollback of a failed add: checkpoint", "id", id, "error", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.att.Detach(ctx, &kaiv1.DetachRequest{Id: id}); err != nil {
		a.log.Warn("rollback of a failed add: DPU detach (the next sync removes it)", "id", id, "error", err)
	}
}

// dpuError passes the DPU's gRPC code through and says where it came from
// (kai-cni words an Unavailable one for the user).
func dpuError(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return status.Error(codes.Internal, err.Error())
	}
	return status.Error(st.Code(), "DPU: "+st.Message())
}

// Del implements kai.v1.Host. It always succeeds once the checkpoint no
// longer has the attachment: if the DPU is unreachable now, the next Sync
// removes it there.
func (h *HostServer) Del(ctx context.Context, r *kaiv1.HostDelRequest) (*kaiv1.HostDelResponse, error) {
	a := h.a
	if r.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "attachment id is required")
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	key := "id/" + r.GetId() // not checkpointed: nothing else to order with
	if c, ok := a.ck.Get(r.GetId()); ok {
		key = vfKey(c.VF.PCIAddress)
	}
	defer a.vfs.lock(key)()
	if err := a.ck.Delete(r.GetId()); err != nil {
		return nil, status.Errorf(codes.Internal, "checkpoint: %v", err)
	}
	a.smu.Lock()
	delete(a.status, r.GetId())
	a.smu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := a.att.Detach(cctx, &kaiv1.DetachRequest{Id: r.GetId()}); err != nil {
		a.log.Warn("detach on the DPU failed; the next sync removes it", "id", r.GetId(), "error", err)
	}
	return &kaiv1.HostDelResponse{}, nil
}

// Check implements kai.v1.Host from the DPU's current view.
func (h *HostServer) Check(ctx context.Context, r *kaiv1.HostCheckRequest) (*kaiv1.HostCheckResponse, error) {
	a := h.a
	if _, ok := a.ck.Get(r.GetId()); !ok {
		return nil, status.Errorf(codes.NotFound, "kai-host has no attachment %s", r.GetId())
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := a.att.List(cctx, &kaiv1.ListRequest{Node: a.node})
	if err != nil {
		return nil, dpuError(err)
	}
	for _, at := range list.GetAttachments() {
		if at.GetId() == r.GetId() {
			return &kaiv1.HostCheckResponse{Attachment: at}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "the DPU has no attachment %s", r.GetId())
}

// Status implements kai.v1.Host.
func (h *HostServer) Status(context.Context, *kaiv1.HostStatusRequest) (*kaiv1.HostStatusResponse, error) {
	a := h.a
	a.smu.Lock()
	defer a.smu.Unlock()
	resp := &kaiv1.HostStatusResponse{Ready: a.connected, DpuBootId: a.bootID}
	if err := a.readyLocked(); err != nil {
		resp.Reason = err.Error()
	}
	return resp, nil
}

// GC implements kai.v1.Host: drop every attachment not in the valid set.
func (h *HostServer) GC(ctx context.Context, r *kaiv1.HostGCRequest) (*kaiv1.HostGCResponse, error) {
	valid := map[string]bool{}
	for _, id := range r.GetValidIds() {
		valid[id] = true
	}
	resp := &kaiv1.HostGCResponse{}
	for _, c := range h.a.ck.List() {
		if valid[c.ID] {
			continue
		}
		if _, err := h.Del(ctx, &kaiv1.HostDelRequest{Id: c.ID}); err != nil {
			return nil, err
		}
		resp.Removed = append(resp.Removed, c.ID)
	}
	return resp, nil
}
