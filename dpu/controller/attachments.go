package controller

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/kai-dpu/kai/dpu/config"
	"github.com/kai-dpu/kai/dpu/desired"
	"github.com/kai-dpu/kai/dpu/evpn"
	"github.com/kai-dpu/kai/dpu/store"
	"github.com/kai-dpu/kai/sriov"
)

// prepare validates a requested attachment against config and the VF, and
// fills in what the DPU derives (representor, generation, sequence).
// It changes nothing.
func (c *Controller) prepare(req store.Attachment) (store.Attachment, error) {
	a := req
	a.Status = store.Status{}
	if err := validateSpec(&a); err != nil {
		return store.Attachment{}, err
	}
	cfg := c.cfg.Load()
	if _, ok := cfg.Network(a.Network); !ok {
		return store.Attachment{}, errorf(NotFound, "network %q is not configured on this DPU", a.Network)
	}
	rep, err := c.reps.Representor(a.VF)
	switch {
	case errors.Is(err, sriov.ErrNotFound):
		return store.Attachment{}, wrap(NotFound, err, "attachment %s", a.ID)
	case err != nil:
		return store.Attachment{}, wrap(InvalidArgument, err, "attachment %s", a.ID)
	}
	a.Representor = rep
	old, exists := c.store.Get(a.ID)
	if exists && old.Node != a.Node {
		return store.Attachment{}, errorf(AlreadyExists, "attachment id %s belongs to node %s, not %s", a.ID, old.Node, a.Node)
	}
	switch {
	case exists && old.SameSpec(a) && old.Representor == rep:
		return old, nil
	case exists:
		a.Generation = old.Generation + 1
		a.Status = old.Status
	default:
		a.Generation = 1
	}
	if exists && old.MAC == a.MAC && old.Network == a.Network {
		a.Seq = old.Seq
	} else {
		a.Seq = desired.SeqFor(cfg, a.Network, a.MAC, c.bgp.Learned())
	}
	return a, nil
}

// Attach stores the attachment (idempotent on its id) and returns once the
// dataplane is programmed and its routes are originated.
func (c *Controller) Attach(ctx context.Context, req store.Attachment) (store.Attachment, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	c.mu.Lock()
	a, err := c.prepare(req)
	if err == nil {
		err = conflicts(a, c.store.List(""), nil)
	}
	if err == nil {
		if old, ok := c.store.Get(a.ID); !ok || old.Generation != a.Generation {
			err = c.store.Put(a)
			if err == nil {
				c.publish(Event{Type: Upsert, Attachment: a})
			}
		}
	}
	c.mu.Unlock()
	if err != nil {
		return store.Attachment{}, err
	}
	if err := c.WaitApplied(ctx, c.Trigger()); err != nil {
		return store.Attachment{}, err
	}
	got, ok := c.store.Get(a.ID)
	if !ok {
		return store.Attachment{}, errorf(NotFound, "attachment %s was removed while attaching", a.ID)
	}
	return got, nil
}

// Detach removes an attachment; an unknown id is success. It returns once
// its routes are withdrawn and its flows removed.
func (c *Controller) Detach(ctx context.Context, id string) error {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	if id == "" {
		return errorf(InvalidArgument, "attachment id is required")
	}
	c.mu.Lock()
	a, ok := c.store.Get(id)
	var err error
	if ok {
		err = c.store.Delete(id)
		if err == nil {
			c.publish(Event{Type: Delete, Attachment: a})
		}
	}
	c.mu.Unlock()
	if err != nil || !ok {
		return err
	}
	return c.WaitApplied(ctx, c.Trigger())
}

// Sync makes node's attachments exactly as (state of the world). An epoch
// older than the last accepted one is rejected; so is any invalid entry,
// and then nothing changes.
func (c *Controller) Sync(ctx context.Context, node string, epoch uint64, as []store.Attachment) ([]store.Attachment, []string, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	if node == "" {
		return nil, nil, errorf(InvalidArgument, "node is required")
	}
	c.mu.Lock()
	if last := c.store.Epoch(node); epoch < last {
		c.mu.Unlock()
		return nil, nil, errorf(FailedPrecondition, "sync epoch %d of node %s is older than the accepted epoch %d", epoch, node, last)
	}
	prepared := make([]store.Attachment, 0, len(as))
	ids := map[string]bool{}
	var err error
	for _, req := range as {
		if req.Node != node {
			err = errorf(InvalidArgument, "attachment %s belongs to node %q, not %q", req.ID, req.Node, node)
			break
		}
		if ids[req.ID] {
			err = errorf(InvalidArgument, "attachment %s listed twice", req.ID)
			break
		}
		ids[req.ID] = true
		var a store.Attachment
		if a, err = c.prepare(req); err != nil {
			break
		}
		prepared = append(prepared, a)
	}
	if err == nil {
		// Conflicts among the new set and with other nodes' attachments;
		// this node's current attachments are being replaced.
		others := slices.DeleteFunc(c.store.List(""), func(o store.Attachment) bool { return o.Node == node })
		for i, a := range prepared {
			if err = conflicts(a, append(others, prepared[:i]...), nil); err != nil {
				break
			}
		}
	}
	var removed []store.Attachment
	if err == nil {
		removed, err = c.store.ReplaceNode(node, epoch, prepared)
	}
	c.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	var removedIDs []string
	for _, r := range removed {
		removedIDs = append(removedIDs, r.ID)
		c.publish(Event{Type: Delete, Attachment: r})
	}
	if err := c.WaitApplied(ctx, c.Trigger()); err != nil {
		return nil, nil, err
	}
	return c.store.List(node), removedIDs, nil
}

// Get returns one attachment.
func (c *Controller) Get(id string) (store.Attachment, bool) { return c.store.Get(id) }

// List returns attachments of node (all when empty).
func (c *Controller) List(node string) []store.Attachment { return c.store.List(node) }

// Reload applies a new config as a diff. Fields that need a restart are
// rejected and the running config is kept.
func (c *Controller) Reload(ctx context.Context, next *config.Config) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.cfg.Load()
	var errs []error
	same := func(field string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			errs = append(errs, fmt.Errorf("%s: changing it needs a restart (running %v, file %v)", field, a, b))
		}
	}
	same("node", cur.Node, next.Node)
	same("api", cur.API, next.API)
	same("bgp.asn", cur.BGP.ASN, next.BGP.ASN)
	same("bgp.routerID", cur.BGP.RouterID, next.BGP.RouterID)
	same("bgp.listenPort", cur.BGP.ListenPort, next.BGP.ListenPort)
	same("vtep", cur.VTEP, next.VTEP)
	same("dataplane", cur.Dataplane, next.Dataplane)
	same("stateDir", cur.StateDir, next.StateDir)
	same("representors", cur.Representors, next.Representors)
	same("metrics", cur.Metrics, next.Metrics)
	same("bgp.gracefulRestartSeconds", cur.BGP.GracefulRestartSeconds, next.BGP.GracefulRestartSeconds)
	same("bgp.initialSyncSeconds", cur.BGP.InitialSyncSeconds, next.BGP.InitialSyncSeconds)
	if len(errs) > 0 {
		return fmt.Errorf("config reload rejected: %w", errors.Join(errs...))
	}
	if err := c.bgp.SetNeighbors(ctx, Neighbors(next)); err != nil {
		return fmt.Errorf("config reload: %w", err)
	}
	c.cfg.Store(next)
	c.Trigger()
	return nil
}

// Neighbors converts configured neighbors for the speaker.
func Neighbors(cfg *config.Config) []evpn.Neighbor {
	out := make([]evpn.Neighbor, 0, len(cfg.BGP.Neighbors))
	for _, n := range cfg.BGP.Neighbors {
		out = append(out, evpn.Neighbor{Address: n.Address, ASN: n.ASN, Port: n.Port, LocalAddress: cfg.VTEP.Address})
	}
	return out
}
