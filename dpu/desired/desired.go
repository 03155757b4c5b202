// Package desired computes what the DPU should program and advertise as a
// pure function of (config, attachments, learned EVPN routes). Nothing here
// touches the kernel, OVS or BGP, so it is tested table-driven.
package desired

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/kai-dpu/kai/dpu/config"
	"github.com/kai-dpu/kai/dpu/evpn"
	"github.com/kai-dpu/kai/dpu/store"
	"github.com/kai-dpu/kai/offload"
)

// Input is everything the DPU's state derives from.
type Input struct {
	Config      *config.Config
	Attachments []store.Attachment
	// Learned are the routes received from the fabric (never our own).
	Learned []evpn.Route
	// Frozen MACs (duplicate detection, RFC 7432 section 15.1) stay where
	// they were frozen: their routes are not processed until the freeze ends.
	Frozen map[MACKey]Frozen
}

// MACKey names a MAC within a network (a MAC-VRF).
type MACKey struct {
	Network string
	MAC     string
}

// Frozen pins a MAC to a VTEP, with the reason shown to operators.
type Frozen struct {
	VTEP   netip.Addr
	Reason string
}

// Output is the desired dataplane, the routes to originate, and per
// attachment the reason it cannot be Ready (empty map when all can).
type Output struct {
	Dataplane offload.State
	Routes    []evpn.Route
	Problems  map[string]string
}

// Compute derives the desired state.
func Compute(in Input) Output {
	cfg := in.Config
	out := Output{
		Dataplane: offload.State{VTEP: cfg.VTEP.Address, VXLANPort: cfg.VTEP.Port},
		Problems:  map[string]string{},
	}
	byNet := map[string][]store.Attachment{}
	for _, a := range in.Attachments {
		if _, ok := cfg.Network(a.Network); !ok {
			out.Problems[a.ID] = fmt.Sprintf("network %q is not configured on this DPU", a.Network)
			continue
		}
		byNet[a.Network] = append(byNet[a.Network], a)
	}
	nets := slices.Clone(cfg.Networks)
	sort.Slice(nets, func(i, j int) bool { return nets[i].VNI < nets[j].VNI })
	for _, n := range nets {
		dn, routes := network(cfg, n, byNet[n.Name], in.Learned, in.Frozen, out.Problems)
		out.Dataplane.Networks = append(out.Dataplane.Networks, dn)
		out.Routes = append(out.Routes, routes...)
	}
	sort.Slice(out.Routes, func(i, j int) bool { return out.Routes[i].Key() < out.Routes[j].Key() })
	return out
}

// imports reports whether the network imports a route with these targets.
func imports(n config.Network, rts []string) bool {
	for _, rt := range rts {
		if slices.Contains(n.RouteTargets.Import, rt) {
			return true
		}
	}
	return false
}

// macClaims is every remote VTEP's highest claim on one MAC. Most MACs
// have one VTEP (its MAC-only and MAC+IP routes), so the first claims are
// stored inline: at 100k learned MACs a map per MAC was most of a pass.
type macClaims struct {
	mac    string
	first  [2]evpn.Candidate
	n      int
	others []evpn.Candidate
}

func (m *macClaims) add(c evpn.Candidate) {
	for i := range m.n {
		p := m.at(i)
		if p.VTEP == c.VTEP {
			if evpn.Better(c, *p) {
				*p = c
			}
			return
		}
	}
	if m.n < len(m.first) {
		m.first[m.n] = c
	} else {
		m.others = append(m.others, c)
	}
	m.n++
}

func (m *macClaims) at(i int) *evpn.Candidate {
	if i < len(m.first) {
		return &m.first[i]
	}
	return &m.others[i-len(m.first)]
}

// appendTo appends the claims to dst.
func (m *macClaims) appendTo(dst []evpn.Candidate) []evpn.Candidate {
	for i := range m.n {
		dst = append(dst, *m.at(i))
	}
	return dst
}

func network(cfg *config.Config, n config.Network, atts []store.Attachment, learned []evpn.Route, frozen map[MACKey]Frozen, problems map[string]string) (offload.Network, []evpn.Route) {
	vtep := cfg.VTEP.Address
	dn := offload.Network{Name: n.Name, VNI: n.VNI}
	exportRTs := slices.Clone(n.RouteTargets.Export)
	slices.Sort(exportRTs)
	routes := []evpn.Route{{Type: evpn.InclusiveMulticast, RD: n.RD, VTEP: vtep, VNI: n.VNI, RTs: exportRTs}}

	// Candidates per MAC: each remote VTEP's highest claim.
	// Sized up front for the worst case (one route per MAC): growing them
	// was a quarter of a pass.
	size := 0
	for _, r := range learned {
		if r.Type == evpn.MACIP && imports(n, r.RTs) {
			size++
		}
	}
	claims := make([]macClaims, 0, size)
	index := make(map[string]int, size)
	flood := map[netip.Addr]bool{}
	for _, r := range learned {
		if !r.VTEP.Is4() || !imports(n, r.RTs) {
			continue // the VXLAN port is IPv4; an IPv6 VTEP is unreachable here
		}
		switch r.Type {
		case evpn.InclusiveMulticast:
			flood[r.VTEP] = true
		case evpn.MACIP:
			i, ok := index[r.MAC]
			if !ok {
				i = len(claims)
				index[r.MAC] = i
				claims = append(claims, macClaims{mac: r.MAC})
			}
			claims[i].add(evpn.Candidate{VTEP: r.VTEP, Seq: r.Seq, Sticky: r.Sticky})
		}
	}
	local := map[string]bool{}
	sort.Slice(atts, func(i, j int) bool { return atts[i].ID < atts[j].ID })
	var buf []evpn.Candidate
	for _, a := range atts {
		local[a.MAC] = true
		cands := []evpn.Candidate{{VTEP: vtep, Seq: a.Seq, Local: true}}
		if i, ok := index[a.MAC]; ok {
			cands = claims[i].appendTo(cands)
		}
		sortCandidates(cands)
		f, isFrozen := frozen[MACKey{n.Name, a.MAC}]
		w := pick(cands, f, vtep)
		port := offload.Port{Name: a.Representor, Owner: a.ID, MAC: a.MAC, IPs: a.IPs}
		if isFrozen {
			problems[a.ID] = f.Reason
		}
		if !w.Local {
			// RFC 7432 section 15: the MAC moved; withdraw ours, follow theirs.
			port.Moved = true
			if !isFrozen {
				problems[a.ID] = fmt.Sprintf("MAC %s moved to VTEP %s: its route (sequence %d, sticky %t) wins over ours (sequence %d) by RFC 7432 section 15",
					a.MAC, w.VTEP, w.Seq, w.Sticky, a.Seq)
			}
			dn.Remote = append(dn.Remote, offload.RemoteMAC{MAC: a.MAC, VTEP: w.VTEP})
		} else {
			routes = append(routes, macRoutes(n, a, vtep, exportRTs)...)
		}
		dn.Ports = append(dn.Ports, port)
	}
	dn.Remote = slices.Grow(dn.Remote, len(claims))
	for i := range claims {
		m := &claims[i]
		if local[m.mac] {
			continue
		}
		buf = m.appendTo(buf[:0])
		sortCandidates(buf)
		if w := pick(buf, frozen[MACKey{n.Name, m.mac}], vtep); w.VTEP != vtep {
			dn.Remote = append(dn.Remote, offload.RemoteMAC{MAC: m.mac, VTEP: w.VTEP})
		}
	}
	// A MAC frozen at a remote VTEP stays there even once it is withdrawn.
	for k, f := range frozen {
		if _, advertised := index[k.MAC]; k.Network == n.Name && !local[k.MAC] && !advertised && f.VTEP != vtep {
			dn.Remote = append(dn.Remote, offload.RemoteMAC{MAC: k.MAC, VTEP: f.VTEP})
		}
	}
	delete(flood, vtep)
	for v := range flood {
		dn.Flood = append(dn.Flood, v)
	}
	sort.Slice(dn.Ports, func(i, j int) bool { return dn.Ports[i].Name < dn.Ports[j].Name })
	slices.SortFunc(dn.Remote, func(a, b offload.RemoteMAC) int { return strings.Compare(a.MAC, b.MAC) })
	sort.Slice(dn.Flood, func(i, j int) bool { return dn.Flood[i].Less(dn.Flood[j]) })
	return dn, routes
}

// macRoutes are the type-2 routes of a local attachment: MAC only, plus
// MAC+IP per address.
func macRoutes(n config.Network, a store.Attachment, vtep netip.Addr, rts []string) []evpn.Route {
	base := evpn.Route{Type: evpn.MACIP, RD: n.RD, MAC: a.MAC, VTEP: vtep, VNI: n.VNI, Seq: a.Seq, RTs: rts}
	out := []evpn.Route{base}
	for _, ip := range a.IPs {
		r := base
		r.IP = ip
		out = append(out, r)
	}
	return out
}

// pick is the RFC 7432 winner, unless the MAC is frozen: then the frozen
// location, whatever newer routes say (ours is the local candidate).
func pick(cands []evpn.Candidate, f Frozen, ours netip.Addr) evpn.Candidate {
	if f.VTEP.IsValid() {
		for _, c := range cands {
			if c.VTEP == f.VTEP {
				return c
			}
		}
		return evpn.Candidate{VTEP: f.VTEP, Local: f.VTEP == ours}
	}
	return cands[evpn.Winner(cands)]
}

// sortCandidates gives Winner a deterministic order (it is already
// order-independent except for exact duplicates).
func sortCandidates(cs []evpn.Candidate) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].VTEP.Less(cs[j].VTEP) })
}

// SeqFor returns the sequence a new local attachment of mac in network must
// originate: one above any remote claim (a MAC move), else 0.
func SeqFor(cfg *config.Config, network, mac string, learned []evpn.Route) uint32 {
	n, ok := cfg.Network(network)
	if !ok {
		return 0
	}
	var others []evpn.Candidate
	for _, r := range learned {
		if r.Type == evpn.MACIP && r.MAC == mac && imports(n, r.RTs) {
			others = append(others, evpn.Candidate{VTEP: r.VTEP, Seq: r.Seq, Sticky: r.Sticky})
		}
	}
	return evpn.NextSeq(others)
}
