package ovs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kai-dpu/kai/offload/ovs/vswitchd"
)

// OVSDB rows Kai creates carry these external_ids, so read-back finds
// exactly Kai's rows and never touches anyone else's.
const (
	extOwner      = "kai-owner"
	extOwnerValue = "kai"
	extAttachment = "kai-attachment"
	vxlanPortName = "kai-vxlan"
	vxlanOFPort   = 1
)

// ovsdbClient keeps the bridge, the VXLAN port and the representor ports
// in OVSDB equal to the desired set, in one transaction per change.
type ovsdbClient struct {
	c      client.Client
	bridge string
	dpType string
	hwOff  bool
}

func dialOVSDB(ctx context.Context, endpoint, bridge, dpType string, hwOffload bool) (*ovsdbClient, error) {
	dbModel, err := vswitchd.FullDatabaseModel()
	if err != nil {
		return nil, fmt.Errorf("ovsdb model: %w", err)
	}
	c, err := client.NewOVSDBClient(dbModel, client.WithEndpoint(endpoint), client.WithReconnect(time.Second, nil))
	if err != nil {
		return nil, fmt.Errorf("ovsdb client: %w", err)
	}
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("connect to ovsdb at %s: %w", endpoint, err)
	}
	if _, err := c.MonitorAll(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("monitor ovsdb: %w", err)
	}
	return &ovsdbClient{c: c, bridge: bridge, dpType: dpType, hwOff: hwOffload}, nil
}

func (o *ovsdbClient) close() { o.c.Close() }

func (o *ovsdbClient) transact(ctx context.Context, ops []ovsdb.Operation) error {
	if len(ops) == 0 {
		return nil
	}
	res, err := o.c.Transact(ctx, ops...)
	if err != nil {
		return fmt.Errorf("ovsdb transact: %w", err)
	}
	if _, err := ovsdb.CheckOperationResults(res, ops); err != nil {
		return fmt.Errorf("ovsdb transact: %w", err)
	}
	return nil
}

func (o *ovsdbClient) root(ctx context.Context) (*vswitchd.OpenvSwitch, error) {
	var rows []vswitchd.OpenvSwitch
	if err := o.c.List(ctx, &rows); err != nil {
		return nil, fmt.Errorf("list Open_vSwitch: %w", err)
	}
	if len(rows) != 1 {
		return nil, fmt.Errorf("expected one Open_vSwitch row, found %d (is ovs-vswitchd's database initialised?)", len(rows))
	}
	return &rows[0], nil
}

func (o *ovsdbClient) getBridge(ctx context.Context) (*vswitchd.Bridge, error) {
	br := &vswitchd.Bridge{Name: o.bridge}
	if err := o.c.Get(ctx, br); err != nil {
		if errors.Is(err, client.ErrNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("get bridge %s: %w", o.bridge, err)
	}
	return br, nil
}

// ensureBridge creates or corrects the bridge, the hw-offload switch and the
// flow-based VXLAN port. Rows already right are left alone.
func (o *ovsdbClient) ensureBridge(ctx context.Context, vtep netip.Addr, udpPort uint16) (int, error) {
	changes := 0
	root, err := o.root(ctx)
	if err != nil {
		return 0, err
	}
	if o.hwOff && root.OtherConfig["hw-offload"] != "true" {
		oc := maps.Clone(root.OtherConfig)
		if oc == nil {
			oc = map[string]string{}
		}
		oc["hw-offload"] = "true"
		root.OtherConfig = oc
		ops, err := o.c.Where(root).Update(root, &root.OtherConfig)
		if err != nil {
			return 0, fmt.Errorf("enable hw-offload: %w", err)
		}
		if err := o.transact(ctx, ops); err != nil {
			return 0, fmt.Errorf("enable hw-offload (takes effect after ovs-vswitchd restarts): %w", err)
		}
		changes++
	}
	secure := vswitchd.BridgeFailModeSecure
	protocols := []vswitchd.BridgeProtocols{vswitchd.BridgeProtocolsOpenflow10, vswitchd.BridgeProtocolsOpenflow13, vswitchd.BridgeProtocolsOpenflow15}
	br, err := o.getBridge(ctx)
	if err != nil {
		return 0, err
	}
	vxIface, vxPort := o.vxlanRows(vtep, udpPort)
	if br == nil {
		br = &vswitchd.Bridge{
			UUID: "newbr", Name: o.bridge, FailMode: &secure, DatapathType: o.dpType, Protocols: protocols,
			ExternalIDs: map[string]string{extOwner: extOwnerValue},
			// Fixed datapath id and no in-band control: the bridge only does what we program.
			OtherConfig: map[string]string{"disable-in-band": "true"},
			Ports:       []string{vxPort.UUID},
		}
		var ops []ovsdb.Operation
		for _, m := range []model.Model{vxIface, vxPort, br} {
			op, err := o.c.Create(m)
			if err != nil {
				return 0, fmt.Errorf("create %T: %w", m, err)
			}
			ops = append(ops, op...)
		}
		mut, err := o.c.Where(root).Mutate(root, model.Mutation{Field: &root.Bridges, Mutator: ovsdb.MutateOperationInsert, Value: []string{br.UUID}})
		if err != nil {
			return 0, fmt.Errorf("attach bridge: %w", err)
		}
		if err := o.transact(ctx, append(ops, mut...)); err != nil {
			return 0, fmt.Errorf("create bridge %s: %w", o.bridge, err)
		}
		return changes + 1, nil
	}
	if br.FailMode == nil || *br.FailMode != secure || br.DatapathType != o.dpType || !slices.Equal(br.Protocols, protocols) {
		br.FailMode, br.DatapathType, br.Protocols = &secure, o.dpType, protocols
		ops, err := o.c.Where(br).Update(br, &br.FailMode, &br.DatapathType, &br.Protocols)
		if err != nil {
			return 0, fmt.Errorf("update bridge: %w", err)
		}
		if err := o.transact(ctx, ops); err != nil {
			return 0, fmt.Errorf("update bridge %s: %w", o.bridge, err)
		}
		changes++
	}
	cur := &vswitchd.Interface{Name: vxlanPortName}
	err = o.c.Get(ctx, cur)
	switch {
	case errors.Is(err, client.ErrNotFound):
		c, err := o.addPorts(ctx, br, []model.Model{vxIface, vxPort})
		return changes + c, err
	case err != nil:
		return 0, fmt.Errorf("get vxlan interface: %w", err)
	case cur.Type != "vxlan" || !maps.Equal(cur.Options, vxIface.Options):
		cur.Type, cur.Options = "vxlan", vxIface.Options
		ops, err := o.c.Where(cur).Update(cur, &cur.Type, &cur.Options)
		if err != nil {
			return 0, fmt.Errorf("update vxlan interface: %w", err)
		}
		if err := o.transact(ctx, ops); err != nil {
			return 0, fmt.Errorf("update vxlan interface: %w", err)
		}
		changes++
	}
	return changes, nil
}

func (o *ovsdbClient) vxlanRows(vtep netip.Addr, udpPort uint16) (*vswitchd.Interface, *vswitchd.Port) {
	ofp := vxlanOFPort
	iface := &vswitchd.Interface{
		UUID: "newvxif", Name: vxlanPortName, Type: "vxlan", OfportRequest: &ofp,
		Options: map[string]string{
			"key": "flow", "remote_ip": "flow", "local_ip": vtep.String(), "dst_port": strconv.Itoa(int(udpPort)),
		},
		ExternalIDs: map[string]string{extOwner: extOwnerValue},
	}
	port := &vswitchd.Port{UUID: "newvxport", Name: vxlanPortName, Interfaces: []string{iface.UUID},
		ExternalIDs: map[string]string{extOwner: extOwnerValue}}
	return iface, port
}

// addPorts creates rows and references their ports from the bridge in the
// same transaction (unreferenced rows would be garbage-collected).
func (o *ovsdbClient) addPorts(ctx context.Context, br *vswitchd.Bridge, rows []model.Model) (int, error) {
	var ops []ovsdb.Operation
	var portUUIDs []string
	for _, m := range rows {
		op, err := o.c.Create(m)
		if err != nil {
			return 0, fmt.Errorf("create %T: %w", m, err)
		}
		ops = append(ops, op...)
		if p, ok := m.(*vswitchd.Port); ok {
			portUUIDs = append(portUUIDs, p.UUID)
		}
	}
	mut, err := o.c.Where(br).Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationInsert, Value: portUUIDs})
	if err != nil {
		return 0, fmt.Errorf("attach ports: %w", err)
	}
	if err := o.transact(ctx, append(ops, mut...)); err != nil {
		return 0, fmt.Errorf("add ports to %s: %w", o.bridge, err)
	}
	return len(portUUIDs), nil
}

// syncRepresentors makes the bridge's Kai-owned representor ports exactly
// want (name -> attachment id) in one transaction.
func (o *ovsdbClient) syncRepresentors(ctx context.Context, want map[string]string) (int, error) {
	br, err := o.getBridge(ctx)
	if err != nil {
		return 0, err
	}
	if br == nil {
		return 0, fmt.Errorf("bridge %s does not exist", o.bridge)
	}
	inBridge := map[string]bool{}
	for _, u := range br.Ports {
		inBridge[u] = true
	}
	var ports []vswitchd.Port
	if err := o.c.List(ctx, &ports); err != nil {
		return 0, fmt.Errorf("list ports: %w", err)
	}
	have := map[string]vswitchd.Port{}
	for _, p := range ports {
		if inBridge[p.UUID] {
			have[p.Name] = p
		}
	}
	var ops []ovsdb.Operation
	var remove []string
	changes := 0
	for name, p := range have {
		if name == vxlanPortName || p.ExternalIDs[extOwner] != extOwnerValue {
			continue
		}
		owner, ok := want[name]
		if !ok {
			remove = append(remove, p.UUID)
			continue
		}
		if p.ExternalIDs[extAttachment] != owner {
			p.ExternalIDs = map[string]string{extOwner: extOwnerValue, extAttachment: owner}
			op, err := o.c.Where(&p).Update(&p, &p.ExternalIDs)
			if err != nil {
				return 0, fmt.Errorf("update port %s: %w", name, err)
			}
			ops = append(ops, op...)
			changes++
		}
	}
	var add []string
	for name, owner := range want {
		if _, ok := have[name]; ok {
			if have[name].ExternalIDs[extOwner] != extOwnerValue {
				return 0, fmt.Errorf("port %s on %s exists and is not Kai's; remove it or pick another representor", name, o.bridge)
			}
			continue
		}
		ifUUID, portUUID := "if"+strconv.Itoa(len(add)), "port"+strconv.Itoa(len(add))
		ext := map[string]string{extOwner: extOwnerValue, extAttachment: owner}
		for _, m := range []model.Model{
			&vswitchd.Interface{UUID: ifUUID, Name: name, ExternalIDs: ext},
			&vswitchd.Port{UUID: portUUID, Name: name, Interfaces: []string{ifUUID}, ExternalIDs: ext},
		} {
			op, err := o.c.Create(m)
			if err != nil {
				return 0, fmt.Errorf("create %T for %s: %w", m, name, err)
			}
			ops = append(ops, op...)
		}
		add = append(add, portUUID)
	}
	if len(add) > 0 {
		mut, err := o.c.Where(br).Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationInsert, Value: add})
		if err != nil {
			return 0, fmt.Errorf("attach representors: %w", err)
		}
		ops = append(ops, mut...)
	}
	if len(remove) > 0 {
		mut, err := o.c.Where(br).Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationDelete, Value: remove})
		if err != nil {
			return 0, fmt.Errorf("detach representors: %w", err)
		}
		ops = append(ops, mut...)
	}
	if err := o.transact(ctx, ops); err != nil {
		return 0, fmt.Errorf("sync representors on %s: %w", o.bridge, err)
	}
	return changes + len(add) + len(remove), nil
}

// ofports waits until every named interface has an OpenFlow port number
// (ovs-vswitchd assigns it after the transaction) or reports its error.
// It reads the monitor's in-memory cache, so polling is cheap: it starts
// at 1 ms, because a new port usually has its number within a few ms and
// that wait is part of every attach.
func (o *ovsdbClient) ofports(ctx context.Context, names []string) (Ports, error) {
	deadline := time.Now().Add(10 * time.Second)
	poll := time.Millisecond
	for {
		out := Ports{}
		var missing []string
		var errs []error
		for _, n := range names {
			iface := &vswitchd.Interface{Name: n}
			if err := o.c.Get(ctx, iface); err != nil {
				missing = append(missing, n)
				continue
			}
			if iface.Ofport != nil && *iface.Ofport > 0 {
				out[n] = *iface.Ofport
				continue
			}
			if iface.Error != nil && *iface.Error != "" {
				errs = append(errs, fmt.Errorf("interface %s: %s", n, *iface.Error))
			}
			missing = append(missing, n)
		}
		if len(missing) == 0 {
			return out, nil
		}
		if time.Now().After(deadline) || len(errs) > 0 {
			return nil, fmt.Errorf("interfaces without an OpenFlow port: %v: %w", missing, errors.Join(errs...))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
		poll = min(2*poll, 50*time.Millisecond)
	}
}
