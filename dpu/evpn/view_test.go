package evpn

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// Learned's shared view, patched by merging edits, must always equal a
// fresh sort of the learned routes, and a view handed out earlier must
// never change under its holder.
func TestLearnedViewFollowsEdits(t *testing.T) {
	s := &Speaker{learned: map[string]Route{}}
	rnd := rand.New(rand.NewPCG(1, 2))
	route := func(i int) Route {
		return Route{Type: MACIP, RD: fmt.Sprintf("198.18.1.%d:10100", i%7+1), MAC: fmt.Sprintf("02:01:00:00:%02x:%02x", i>>8&0xff, i&0xff),
			VTEP: netip.AddrFrom4([4]byte{198, 18, 1, byte(i%7 + 1)}), VNI: 10100, Seq: uint32(rnd.IntN(3)), RTs: []string{"65000:10100"}}
	}
	var held []Route
	var heldCopy []Route
	for step := range 5000 {
		n := 1
		if rnd.IntN(50) == 0 {
			n = maxViewEdits + 10 // a burst: the view is dropped and rebuilt
		}
		for range n {
			r := route(rnd.IntN(600))
			k := r.Key()
			if _, had := s.learned[k]; had && rnd.IntN(3) == 0 {
				delete(s.learned, k)
				s.editView(k, nil)
				continue
			}
			s.learned[k] = r
			s.editView(k, &r)
		}
		if rnd.IntN(3) == 0 {
			got := s.Learned()
			if want := sortedRoutes(s.learned); !slices.EqualFunc(got, want, Route.Equal) {
				t.Fatalf("step %d: view has %d routes, a fresh sort %d; they differ", step, len(got), len(want))
			}
			if held != nil && !slices.EqualFunc(held, heldCopy, Route.Equal) {
				t.Fatalf("step %d: a view handed out earlier changed", step)
			}
			held, heldCopy = got, slices.Clone(got)
		}
	}
}
