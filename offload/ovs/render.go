package ovs

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/kai-dpu/kai/offload"
)

// OpenFlow pipeline. No NORMAL action and no learning anywhere: every
// forwarding decision comes from EVPN state.
//
//	table 0  classify + anti-spoofing: a representor's packets are accepted
//	         only with the attachment's source MAC (and IPs for IP/ARP);
//	         tunnel packets are accepted only for a configured VNI.
//	         reg1 := VNI, reg0 := 1 when the packet came from the tunnel.
//	table 20 L2 forwarding per VNI: local MAC -> representor; remote MAC ->
//	         tunnel (only for packets not from the tunnel: split horizon);
//	         BUM -> flood group (all buckets from local ports, local-only
//	         buckets from the tunnel).
//
// Everything else hits the table-miss drop.
const (
	tableClassify = 0
	tableL2       = 20

	prioAllow      = 200
	prioDropProto  = 150
	prioAllowMAC   = 100
	prioUnicast    = 100
	prioFlood      = 50
	prioTableMiss  = 0
	tunnelGroupBit = 1 << 24
)

// Cookie layout: 0x4B ('K') | 24-bit VNI | 32-bit hash of the flow text.
// The tag and VNI let read-back select Kai's flows and one network's flows
// with a cookie mask; the hash makes "same cookie" mean "same flow", so the
// diff between desired and programmed is a set difference of cookies.
const (
	cookieTag      = uint64(0x4B) << 56
	cookieTagMask  = uint64(0xff) << 56
	cookieVNIMask  = uint64(0xffffff) << 32
	cookieHashMask = uint64(0xffffffff)
)

// CookieVNI extracts the VNI a cookie belongs to (0 for bridge-wide flows).
func CookieVNI(c uint64) uint32 { return uint32((c & cookieVNIMask) >> 32) }

// IsKaiCookie reports whether a cookie was set by Kai.
func IsKaiCookie(c uint64) bool { return c&cookieTagMask == cookieTag }

// Flow is a rendered OpenFlow flow.
type Flow struct {
	Cookie   uint64
	VNI      uint32
	Owner    string
	Table    uint8
	Priority uint16
	Match    string
	Actions  string
}

// spec is the flow without its cookie: what the cookie hashes.
func (f Flow) spec() string { return string(f.appendSpec(nil)) }

func (f Flow) appendSpec(b []byte) []byte {
	b = append(b, "table="...)
	b = strconv.AppendUint(b, uint64(f.Table), 10)
	b = append(b, ",priority="...)
	b = strconv.AppendUint(b, uint64(f.Priority), 10)
	b = append(b, ',')
	if f.Match != "" {
		b = append(b, f.Match...)
		b = append(b, ',')
	}
	b = append(b, "actions="...)
	return append(b, f.Actions...)
}

// AddLine is the flow as an ovs-ofctl bundle line.
func (f Flow) AddLine() string {
	return fmt.Sprintf("flow add cookie=%#x,%s", f.Cookie, f.spec())
}

// Group is a rendered OpenFlow group of type all.
type Group struct {
	ID      uint32
	VNI     uint32
	Buckets []string // action lists, one per bucket, in order
}

// Spec is the group's text after group_id, as ovs-ofctl takes it.
func (g Group) Spec() string {
	var b strings.Builder
	fmt.Fprintf(&b, "group_id=%d,type=all", g.ID)
	for i, bk := range g.Buckets {
		fmt.Fprintf(&b, ",bucket=bucket_id:%d,actions=%s", i, bk)
	}
	return b.String()
}

// Program is the full set of flows and groups for a State.
type Program struct {
	Flows  []Flow
	Groups []Group
}

// Ports maps representor names (and the VXLAN port) to OpenFlow port numbers.
type Ports map[string]int

// Render translates a dataplane State into OpenFlow. It is pure: the same
// State and port numbers always give the same flows and cookies.
func Render(s offload.State, ports Ports, vxlanPort string) (Program, error) {
	vx, ok := ports[vxlanPort]
	if !ok {
		return Program{}, fmt.Errorf("vxlan port %q has no OpenFlow port number yet", vxlanPort)
	}
	var p Program
	n := 2
	for _, net := range s.Networks {
		n += len(net.Remote) + 8*len(net.Ports) + 3
	}
	p.Flows = make([]Flow, 0, n)
	add := func(vni uint32, owner string, table uint8, prio uint16, match, actions string) {
		p.Flows = append(p.Flows, Flow{VNI: vni, Owner: owner, Table: table, Priority: prio, Match: match, Actions: actions})
	}
	add(0, "kai", tableClassify, prioTableMiss, "", "drop")
	add(0, "kai", tableL2, prioTableMiss, "", "drop")
	for _, n := range s.Networks {
		setNet := fmt.Sprintf("set_field:%d->reg1", n.VNI)
		add(n.VNI, "network:"+n.Name, tableClassify, prioAllowMAC,
			fmt.Sprintf("in_port=%d,tun_id=%d", vx, n.VNI),
			fmt.Sprintf("%s,set_field:1->reg0,goto_table:%d", setNet, tableL2))
		var local []string
		for _, port := range n.Ports {
			of, ok := ports[port.Name]
			if !ok {
				return Program{}, fmt.Errorf("representor %q of %s has no OpenFlow port number yet", port.Name, port.Owner)
			}
			local = append(local, fmt.Sprintf("output:%d", of))
			owner := "attachment:" + port.Owner
			accept := fmt.Sprintf("%s,goto_table:%d", setNet, tableL2)
			src := fmt.Sprintf("in_port=%d,dl_src=%s", of, port.MAC)
			add(n.VNI, owner, tableClassify, prioAllowMAC, src, accept)
			if v4, v6 := splitFamilies(port.IPs); len(v4) > 0 || len(v6) > 0 {
				// Anti-spoofing: with known addresses, IP and ARP must use them.
				add(n.VNI, owner, tableClassify, prioDropProto, src+",ip", "drop")
				add(n.VNI, owner, tableClassify, prioDropProto, src+",arp", "drop")
				add(n.VNI, owner, tableClassify, prioDropProto, src+",ipv6", "drop")
				for _, ip := range v4 {
					add(n.VNI, owner, tableClassify, prioAllow, fmt.Sprintf("%s,ip,nw_src=%s", src, ip), accept)
					add(n.VNI, owner, tableClassify, prioAllow, fmt.Sprintf("%s,arp,arp_spa=%s,arp_sha=%s", src, ip, port.MAC), accept)
				}
				// IPv6 neighbour discovery uses link-local sources.
				add(n.VNI, owner, tableClassify, prioAllow, src+",ipv6,ipv6_src=fe80::/10", accept)
				for _, ip := range v6 {
					add(n.VNI, owner, tableClassify, prioAllow, fmt.Sprintf("%s,ipv6,ipv6_src=%s", src, ip), accept)
				}
			}
			if !port.Moved {
				add(n.VNI, owner, tableL2, prioUnicast, fmt.Sprintf("reg1=%d,dl_dst=%s", n.VNI, port.MAC), fmt.Sprintf("output:%d", of))
			}
		}
		tunnel := func(vtep netip.Addr) string {
			return fmt.Sprintf("set_field:%d->tun_id,set_field:%s->tun_dst,output:%d", n.VNI, vtep, vx)
		}
		// Remote MACs are most of the flows (100k and more): their text is
		// built from per-VTEP strings shared by every flow, not formatted
		// one by one.
		type via struct{ owner, actions string }
		vias := map[netip.Addr]via{}
		remoteMatch := fmt.Sprintf("reg1=%d,reg0=0,dl_dst=", n.VNI)
		for _, r := range n.Remote {
			v, ok := vias[r.VTEP]
			if !ok {
				v = via{owner: "remote:" + r.VTEP.String(), actions: tunnel(r.VTEP)}
				vias[r.VTEP] = v
			}
			add(n.VNI, v.owner, tableL2, prioUnicast, remoteMatch+r.MAC, v.actions)
		}
		all := append([]string(nil), local...)
		for _, v := range n.Flood {
			all = append(all, tunnel(v))
		}
		p.Groups = append(p.Groups,
			Group{ID: n.VNI, VNI: n.VNI, Buckets: all},
			Group{ID: n.VNI | tunnelGroupBit, VNI: n.VNI, Buckets: local})
		const bum = "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00"
		add(n.VNI, "network:"+n.Name, tableL2, prioFlood, fmt.Sprintf("reg1=%d,reg0=0,%s", n.VNI, bum), fmt.Sprintf("group:%d", n.VNI))
		add(n.VNI, "network:"+n.Name, tableL2, prioFlood, fmt.Sprintf("reg1=%d,reg0=1,%s", n.VNI, bum), fmt.Sprintf("group:%d", n.VNI|tunnelGroupBit))
	}
	assignCookies(p.Flows)
	// By cookie, then by the flow's text for the rare colliding cookies:
	// a total order, so an unstable sort is deterministic (a stable one
	// was a seventh of a reconcile at 10k flows).
	p.Flows = sortFlows(p.Flows)
	sort.Slice(p.Groups, func(i, j int) bool { return p.Groups[i].ID < p.Groups[j].ID })
	return p, nil
}

// sortFlows orders flows by cookie, then by their text for the rare
// colliding cookies: a total order, so the result is deterministic. It
// sorts small pointer-free keys and places each flow once: swapping the
// flows themselves (four strings each) was most of a one-route reconcile.
func sortFlows(fs []Flow) []Flow {
	type key struct {
		cookie uint64
		i      int
	}
	keys := make([]key, len(fs))
	for i, f := range fs {
		keys[i] = key{f.Cookie, i}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.cookie != b.cookie {
			return cmp.Compare(a.cookie, b.cookie)
		}
		x, y := &fs[a.i], &fs[b.i]
		return cmp.Or(cmp.Compare(x.Table, y.Table), cmp.Compare(x.Priority, y.Priority),
			strings.Compare(x.Match, y.Match), strings.Compare(x.Actions, y.Actions))
	})
	out := make([]Flow, len(fs))
	for i, k := range keys {
		out[i] = fs[k.i]
	}
	return out
}

// assignCookies hashes each flow's text. The cookie depends on that flow
// alone, never on which other flows exist, so "same cookie" keeps meaning
// "same flow" across states. Two flows whose texts collide share a cookie;
// Diff handles that by comparing how many flows carry each cookie.
func assignCookies(fs []Flow) {
	var buf []byte
	for i := range fs {
		buf = fs[i].appendSpec(buf[:0])
		fs[i].Cookie = cookieTag | uint64(fs[i].VNI&0xffffff)<<32 | uint64(fnv32a(buf))
	}
}

// fnv32a is FNV-1a over b (hash/fnv's, without allocating a hasher per flow).
func fnv32a(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

func splitFamilies(ips []netip.Addr) (v4, v6 []netip.Addr) {
	for _, ip := range ips {
		if ip.Is4() {
			v4 = append(v4, ip)
		} else {
			v6 = append(v6, ip)
		}
	}
	return v4, v6
}
