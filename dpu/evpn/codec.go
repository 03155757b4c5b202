package evpn

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/kai-dpu/kai/dpu/config"
)

// errSkip marks a path Kai does not use (another route type or family).
var errSkip = errors.New("route not used by kai")

// toPath encodes a local route for GoBGP. Every route carries the VXLAN
// encapsulation community (RFC 8365); type-3 carries PMSI ingress
// replication, without which FRR does not flood to us.
func toPath(r Route, withdraw bool) (*api.Path, error) {
	rd, err := config.ParseRD(r.RD)
	if err != nil {
		return nil, err
	}
	bgpRD := bgp.NewRouteDistinguisherIPAddressAS(rd.IP.String(), rd.Local)
	comms := []bgp.ExtendedCommunityInterface{bgp.NewEncapExtended(bgp.TUNNEL_TYPE_VXLAN)}
	for _, s := range r.RTs {
		rt, err := config.ParseRT(s)
		if err != nil {
			return nil, err
		}
		comms = append(comms, bgp.NewTwoOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, rt.AS, rt.Local, true))
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	var nlri *bgp.EVPNNLRI
	switch r.Type {
	case MACIP:
		ip := ""
		if r.IP.IsValid() {
			ip = r.IP.String()
		}
		nlri = bgp.NewEVPNMacIPAdvertisementRoute(bgpRD, bgp.EthernetSegmentIdentifier{}, 0, r.MAC, ip, []uint32{r.VNI})
		// Sequence 0 is sent as "no community" (RFC 7432 section 15.1).
		// A withdraw carries none: GoBGP checks a withdrawn path's
		// sequence against the RIB and refuses the withdraw of a MAC
		// that moved away to a higher sequence, exactly when it must go.
		if (r.Seq > 0 || r.Sticky) && !withdraw {
			comms = append(comms, bgp.NewMacMobilityExtended(r.Seq, r.Sticky))
		}
	case InclusiveMulticast:
		nlri = bgp.NewEVPNMulticastEthernetTagRoute(bgpRD, 0, r.VTEP.String())
		attrs = append(attrs, bgp.NewPathAttributePmsiTunnel(bgp.PMSI_TUNNEL_TYPE_INGRESS_REPL, false, r.VNI, bgp.NewIngressReplTunnelID(r.VTEP.String())))
	default:
		return nil, fmt.Errorf("cannot originate route type %d", r.Type)
	}
	attrs = append(attrs,
		bgp.NewPathAttributeMpReachNLRI(r.VTEP.String(), []bgp.AddrPrefixInterface{nlri}),
		bgp.NewPathAttributeExtendedCommunities(comms))
	return apiutil.NewPath(nlri, withdraw, attrs, time.Now())
}

// fromPath decodes a received path; errSkip for anything but type-2/3.
func fromPath(p *api.Path) (Route, error) {
	nlri, err := apiutil.GetNativeNlri(p)
	if err != nil {
		return Route{}, fmt.Errorf("decode nlri: %w", err)
	}
	evpn, ok := nlri.(*bgp.EVPNNLRI)
	if !ok {
		return Route{}, errSkip
	}
	attrs, err := apiutil.GetNativePathAttributes(p)
	if err != nil {
		return Route{}, fmt.Errorf("decode attributes: %w", err)
	}
	r := Route{Peer: p.GetNeighborIp()}
	var nexthop netip.Addr
	for _, a := range attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeMpReachNLRI:
			nexthop, _ = netip.AddrFromSlice(a.Nexthop)
			nexthop = nexthop.Unmap()
		case *bgp.PathAttributePmsiTunnel:
			r.VNI = a.Label
		case *bgp.PathAttributeExtendedCommunities:
			for _, c := range a.Value {
				switch c := c.(type) {
				case *bgp.TwoOctetAsSpecificExtended:
					if c.SubType == bgp.EC_SUBTYPE_ROUTE_TARGET {
						r.RTs = append(r.RTs, fmt.Sprintf("%d:%d", c.AS, c.LocalAdmin))
					}
				case *bgp.FourOctetAsSpecificExtended:
					if c.SubType == bgp.EC_SUBTYPE_ROUTE_TARGET {
						r.RTs = append(r.RTs, fmt.Sprintf("%d:%d", c.AS, c.LocalAdmin))
					}
				case *bgp.MacMobilityExtended:
					r.Seq, r.Sticky = c.Sequence, c.IsSticky
				}
			}
		}
	}
	slices.Sort(r.RTs)
	switch d := evpn.RouteTypeData.(type) {
	case *bgp.EVPNMacIPAdvertisementRoute:
		r.Type = MACIP
		r.RD = d.RD.String()
		r.MAC = d.MacAddress.String()
		if len(d.IPAddress) > 0 {
			ip, _ := netip.AddrFromSlice(d.IPAddress)
			if !ip.IsUnspecified() {
				r.IP = ip.Unmap()
			}
		}
		if len(d.Labels) > 0 {
			r.VNI = d.Labels[0]
		}
		r.VTEP = nexthop
	case *bgp.EVPNMulticastEthernetTagRoute:
		r.Type = InclusiveMulticast
		r.RD = d.RD.String()
		ip, _ := netip.AddrFromSlice(d.IPAddress)
		r.VTEP = ip.Unmap()
	default:
		return Route{}, errSkip
	}
	if !r.VTEP.IsValid() {
		return Route{}, fmt.Errorf("%s route %s has no VTEP address", r.Type, r.RD)
	}
	return r, nil
}
