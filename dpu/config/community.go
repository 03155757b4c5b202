package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// RD is a type-1 route distinguisher (IPv4:n), the form FRR uses for L2VNIs.
type RD struct {
	IP    netip.Addr
	Local uint16
}

func (r RD) String() string { return fmt.Sprintf("%s:%d", r.IP, r.Local) }

// ParseRD parses "a.b.c.d:n".
func ParseRD(s string) (RD, error) {
	host, num, ok := strings.Cut(s, ":")
	if !ok {
		return RD{}, fmt.Errorf("route distinguisher %q must be IPv4:number", s)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Is4() {
		return RD{}, fmt.Errorf("route distinguisher %q must start with an IPv4 address", s)
	}
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil {
		return RD{}, fmt.Errorf("route distinguisher %q: number must be 0..65535", s)
	}
	return RD{IP: ip, Local: uint16(n)}, nil
}

// RT is a two-octet-AS route target (AS:n), matching FRR's auto RT (AS & 0xFFFF):VNI.
type RT struct {
	AS    uint16
	Local uint32
}

func (r RT) String() string { return fmt.Sprintf("%d:%d", r.AS, r.Local) }

// ParseRT parses "as:n" with a 16-bit AS and 32-bit local part.
func ParseRT(s string) (RT, error) {
	as, num, ok := strings.Cut(s, ":")
	if !ok {
		return RT{}, fmt.Errorf("route target %q must be AS:number", s)
	}
	a, err := strconv.ParseUint(as, 10, 16)
	if err != nil {
		return RT{}, fmt.Errorf("route target %q: AS must be 0..65535", s)
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		return RT{}, fmt.Errorf("route target %q: number must be 0..4294967295", s)
	}
	return RT{AS: uint16(a), Local: uint32(n)}, nil
}
