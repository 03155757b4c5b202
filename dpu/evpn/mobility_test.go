package evpn

import (
	"net/netip"
	"testing"
)

func TestWinner(t *testing.T) {
	a, b, c := netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("198.18.0.12"), netip.MustParseAddr("198.18.0.13")
	for _, tc := range []struct {
		name  string
		cands []Candidate
		want  int
	}{
		{"none", nil, -1},
		{"single", []Candidate{{VTEP: b}}, 0},
		{"higher sequence wins", []Candidate{{VTEP: a, Seq: 1}, {VTEP: b, Seq: 2}}, 1},
		{"tie goes to lowest VTEP", []Candidate{{VTEP: c, Seq: 3}, {VTEP: a, Seq: 3}, {VTEP: b, Seq: 3}}, 1},
		{"missing community counts as 0", []Candidate{{VTEP: b, Seq: 0}, {VTEP: c, Seq: 1}}, 1},
		{"sticky beats higher sequence", []Candidate{{VTEP: a, Seq: 9}, {VTEP: c, Seq: 0, Sticky: true}}, 1},
		{"wrap-around: 0 is after 2^32-1", []Candidate{{VTEP: a, Seq: 0xffffffff}, {VTEP: b, Seq: 0}}, 1},
		{"local loses to a later remote (#10468 lower seq after withdraw is handled by recompute)", []Candidate{{VTEP: a, Seq: 1, Local: true}, {VTEP: b, Seq: 2}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Winner(tc.cands); got != tc.want {
				t.Fatalf("Winner = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestNextSeq(t *testing.T) {
	a, b := netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("198.18.0.12")
	for _, tc := range []struct {
		name   string
		others []Candidate
		want   uint32
	}{
		{"first advertisement has no community", nil, 0},
		{"move from a VTEP without community", []Candidate{{VTEP: a}}, 1},
		{"one above the highest", []Candidate{{VTEP: a, Seq: 4}, {VTEP: b, Seq: 7}}, 8},
		{"wraps", []Candidate{{VTEP: a, Seq: 0xffffffff}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NextSeq(tc.others); got != tc.want {
				t.Fatalf("NextSeq = %d, want %d", got, tc.want)
			}
		})
	}
}
