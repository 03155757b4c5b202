package apiserver

import (
	"context"
	"slices"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/dpu/evpn"
	"github.com/kai-dpu/kai/offload"
)

// PeerLister reports BGP sessions.
type PeerLister interface {
	Peers(ctx context.Context) ([]evpn.PeerState, error)
	Learned() []evpn.Route
	Originated() []evpn.Route
}

// GetInfo implements kai.v1.Inspect.
func (s *Server) GetInfo(ctx context.Context, _ *kaiv1.GetInfoRequest) (*kaiv1.Info, error) {
	cfg := s.ctl.Config()
	info := &kaiv1.Info{
		Node: cfg.Node, BootId: s.ctl.BootID(), RouterId: cfg.BGP.RouterID.String(),
		Asn: cfg.BGP.ASN, Vtep: cfg.VTEP.Address.String(), Version: s.version,
	}
	ps, err := s.peers.Peers(ctx)
	if err != nil {
		return nil, grpcError(err)
	}
	for _, p := range ps {
		info.Peers = append(info.Peers, &kaiv1.Peer{Address: p.Address, Asn: p.ASN, State: p.State, Received: p.Received, Accepted: p.Accepted})
	}
	return info, nil
}

// ListNetworks implements kai.v1.Inspect.
func (s *Server) ListNetworks(ctx context.Context, _ *kaiv1.ListNetworksRequest) (*kaiv1.ListNetworksResponse, error) {
	if err := operatorOnly(ctx); err != nil {
		return nil, grpcError(err)
	}
	cfg := s.ctl.Config()
	last, _ := s.ctl.Last()
	byVNI := map[uint32]offload.Network{}
	for _, n := range last.Dataplane.Networks {
		byVNI[n.VNI] = n
	}
	resp := &kaiv1.ListNetworksResponse{}
	for _, n := range cfg.Networks {
		dn := byVNI[n.VNI]
		pn := &kaiv1.Network{
			Name: n.Name, Vni: n.VNI, RouteDistinguisher: n.RD,
			ImportRouteTargets: n.RouteTargets.Import, ExportRouteTargets: n.RouteTargets.Export,
			LocalAttachments: uint32(len(dn.Ports)), RemoteMacs: uint32(len(dn.Remote)),
		}
		for _, v := range dn.Flood {
			pn.FloodVteps = append(pn.FloodVteps, v.String())
		}
		resp.Networks = append(resp.Networks, pn)
	}
	return resp, nil
}

// ListRoutes implements kai.v1.Inspect: originated and learned routes, with
// the RFC 7432 winner per MAC marked as the dataplane follows it.
func (s *Server) ListRoutes(ctx context.Context, r *kaiv1.ListRoutesRequest) (*kaiv1.ListRoutesResponse, error) {
	if err := operatorOnly(ctx); err != nil {
		return nil, grpcError(err)
	}
	cfg := s.ctl.Config()
	last, _ := s.ctl.Last()
	type key struct {
		vni  uint32
		mac  string
		vtep string
	}
	winners := map[key]bool{}
	for _, n := range last.Dataplane.Networks {
		for _, p := range n.Ports {
			if !p.Moved {
				winners[key{n.VNI, p.MAC, cfg.VTEP.Address.String()}] = true
			}
		}
		for _, m := range n.Remote {
			winners[key{n.VNI, m.MAC, m.VTEP.String()}] = true
		}
	}
	netOf := func(rt evpn.Route) string {
		for _, n := range cfg.Networks {
			for _, x := range rt.RTs {
				if slices.Contains(n.RouteTargets.Import, x) || slices.Contains(n.RouteTargets.Export, x) {
					return n.Name
				}
			}
		}
		return ""
	}
	resp := &kaiv1.ListRoutesResponse{}
	add := func(rt evpn.Route, local bool) {
		name := netOf(rt)
		if r.GetNetwork() != "" && name != r.GetNetwork() {
			return
		}
		pr := &kaiv1.Route{
			Network: name, Type: rt.Type.String(), RouteDistinguisher: rt.RD, Mac: rt.MAC,
			Vtep: rt.VTEP.String(), Vni: rt.VNI, Sequence: rt.Seq, Sticky: rt.Sticky, Local: local,
			RouteTargets: rt.RTs, Source: rt.Peer,
		}
		if rt.IP.IsValid() {
			pr.Ip = rt.IP.String()
		}
		if rt.Type == evpn.MACIP {
			pr.Winner = winners[key{rt.VNI, rt.MAC, rt.VTEP.String()}]
		}
		if local {
			pr.Source = "local"
		}
		resp.Routes = append(resp.Routes, pr)
	}
	for _, rt := range s.peers.Originated() {
		add(rt, true)
	}
	for _, rt := range s.peers.Learned() {
		add(rt, false)
	}
	return resp, nil
}

// ListFlows implements kai.v1.Inspect: what is programmed, read back.
func (s *Server) ListFlows(ctx context.Context, r *kaiv1.ListFlowsRequest) (*kaiv1.ListFlowsResponse, error) {
	if err := operatorOnly(ctx); err != nil {
		return nil, grpcError(err)
	}
	d, err := s.dp.Dump(ctx)
	if err != nil {
		return nil, grpcError(err)
	}
	resp := &kaiv1.ListFlowsResponse{}
	for _, f := range d.Flows {
		if r.GetNetwork() != "" && f.Network != r.GetNetwork() {
			continue
		}
		resp.Flows = append(resp.Flows, &kaiv1.Flow{
			Network: f.Network, Cookie: f.Cookie, Owner: f.Owner, Table: uint32(f.Table),
			Priority: uint32(f.Priority), Match: f.Match, Actions: f.Actions, Packets: f.Packets,
		})
	}
	for _, g := range d.Groups {
		if r.GetNetwork() != "" && g.Network != r.GetNetwork() {
			continue
		}
		resp.Groups = append(resp.Groups, &kaiv1.Group{Network: g.Network, Id: g.ID, Type: g.Type, Buckets: g.Buckets})
	}
	return resp, nil
}
