// Package evpn is Kai's BGP-EVPN speaker: it originates the DPU's type-2 and
// type-3 routes, learns the fabric's, and decides one winner per MAC.
// It is the only package that imports GoBGP, so a move to GoBGP v4 stays here.
package evpn

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// RouteType is the EVPN route type (RFC 7432 section 7).
type RouteType uint8

// Route types Kai originates and learns.
const (
	MACIP              RouteType = 2
	InclusiveMulticast RouteType = 3
)

func (t RouteType) String() string {
	switch t {
	case MACIP:
		return "mac-ip"
	case InclusiveMulticast:
		return "inclusive-multicast"
	default:
		return fmt.Sprintf("type-%d", uint8(t))
	}
}

// Route is one EVPN route, local or learned, in Kai's own terms.
type Route struct {
	Type RouteType
	RD   string
	// MAC is lower-case colon form; empty for type-3.
	MAC string
	// IP is invalid for MAC-only type-2 and for type-3.
	IP   netip.Addr
	VTEP netip.Addr
	// VNI is the L2 VNI (type-2 label 1, PMSI label for type-3).
	VNI uint32
	// Seq is the MAC mobility sequence; 0 when the community is absent.
	Seq    uint32
	Sticky bool
	RTs    []string
	// Peer is the neighbor a learned route came from; empty for local routes.
	Peer string
}

// Key identifies a route in BGP terms: replacing a route with the same key
// is an in-place update, never a withdraw followed by an advertisement.
func (r Route) Key() string {
	switch r.Type {
	case MACIP:
		ip := ""
		if r.IP.IsValid() {
			ip = r.IP.String()
		}
		return fmt.Sprintf("2|%s|%s|%s", r.RD, r.MAC, ip)
	default:
		return fmt.Sprintf("%d|%s|%s", r.Type, r.RD, r.VTEP)
	}
}

// Equal reports whether two routes carry the same information.
func (r Route) Equal(o Route) bool {
	return r.Type == o.Type && r.RD == o.RD && r.MAC == o.MAC && r.IP == o.IP &&
		r.VTEP == o.VTEP && r.VNI == o.VNI && r.Seq == o.Seq && r.Sticky == o.Sticky &&
		slices.Equal(r.RTs, o.RTs)
}

func (r Route) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s rd=%s", r.Type, r.RD)
	if r.MAC != "" {
		fmt.Fprintf(&b, " mac=%s", r.MAC)
	}
	if r.IP.IsValid() {
		fmt.Fprintf(&b, " ip=%s", r.IP)
	}
	fmt.Fprintf(&b, " vtep=%s vni=%d seq=%d", r.VTEP, r.VNI, r.Seq)
	if r.Sticky {
		b.WriteString(" sticky")
	}
	return b.String()
}

// NormalizeMAC returns the canonical lower-case form of a MAC address.
func NormalizeMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return "", fmt.Errorf("invalid MAC %q: %w", s, err)
	}
	if len(hw) != 6 {
		return "", fmt.Errorf("invalid MAC %q: not a 48-bit Ethernet address", s)
	}
	return hw.String(), nil
}
