package evpn

import (
	"net/netip"
	"testing"
)

func TestCodecRoundTrip(t *testing.T) {
	vtep := netip.MustParseAddr("198.18.0.11")
	for _, r := range []Route{
		{Type: MACIP, RD: "198.18.0.11:10100", MAC: "02:00:00:00:0a:01", VTEP: vtep, VNI: 10100, RTs: []string{"65101:10100"}},
		{Type: MACIP, RD: "198.18.0.11:10100", MAC: "02:00:00:00:0a:01", IP: netip.MustParseAddr("100.64.1.1"), VTEP: vtep, VNI: 10100, Seq: 3, RTs: []string{"65000:10100", "65101:10100"}},
		{Type: MACIP, RD: "198.18.0.11:1", MAC: "02:00:00:00:0a:02", VTEP: vtep, VNI: 1, Seq: 7, Sticky: true, RTs: []string{"1:1"}},
		{Type: InclusiveMulticast, RD: "198.18.0.11:10200", VTEP: vtep, VNI: 10200, RTs: []string{"65101:10200"}},
	} {
		t.Run(r.String(), func(t *testing.T) {
			p, err := toPath(r, false)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fromPath(p)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(r) {
				t.Fatalf("round trip changed the route:\n got  %v %v\n want %v %v", got, got.RTs, r, r.RTs)
			}
			if got.Key() != r.Key() {
				t.Fatalf("key %q, want %q", got.Key(), r.Key())
			}
		})
	}
}

func TestToPathCarriesInteropAttributes(t *testing.T) {
	vtep := netip.MustParseAddr("198.18.0.11")
	p, err := toPath(Route{Type: InclusiveMulticast, RD: "198.18.0.11:1", VTEP: vtep, VNI: 10100, RTs: []string{"65101:10100"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	var pmsi, encap bool
	for _, a := range p.Pattrs {
		switch a.TypeUrl {
		case "type.googleapis.com/apipb.PmsiTunnelAttribute":
			pmsi = true
		case "type.googleapis.com/apipb.ExtendedCommunitiesAttribute":
			encap = true
		}
	}
	if !pmsi || !encap {
		t.Fatalf("type-3 must carry PMSI (got %v) and extended communities (got %v): %v", pmsi, encap, p.Pattrs)
	}
}

func TestToPathRejectsBadRD(t *testing.T) {
	if _, err := toPath(Route{Type: MACIP, RD: "nope", MAC: "02:00:00:00:00:01"}, false); err == nil {
		t.Fatal("expected an error for a malformed RD")
	}
}
