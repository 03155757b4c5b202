package evpn

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// Three embedded GoBGP servers on loopback: a route reflector and two
// speakers. No kernel state is touched.
func startPair(t *testing.T) (rr, a, b *Speaker) {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	rrAddr, aAddr, bAddr := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")
	const port = 10179
	rr = NewSpeaker(SpeakerConfig{ASN: 65000, RouterID: rrAddr, ListenPort: port, VTEP: rrAddr, RouteReflector: true, Passive: true, GracefulRestartSeconds: 30}, log)
	if err := rr.Start(ctx, nil, []Neighbor{{Address: aAddr, ASN: 65000}, {Address: bAddr, ASN: 65000}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rr.Stop(ctx) })
	mk := func(addr netip.Addr) *Speaker {
		s := NewSpeaker(SpeakerConfig{ASN: 65000, RouterID: addr, ListenPort: -1, VTEP: addr, GracefulRestartSeconds: 30}, log)
		if err := s.Start(ctx, nil, []Neighbor{{Address: rrAddr, ASN: 65000, Port: port, LocalAddress: addr}}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Stop(ctx) })
		return s
	}
	return rr, mk(aAddr), mk(bAddr)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSpeakerAdvertiseLearnWithdraw(t *testing.T) {
	_, a, b := startPair(t)
	ctx := context.Background()
	vtepA := netip.MustParseAddr("127.0.0.2")
	mac := Route{Type: MACIP, RD: "127.0.0.2:100", MAC: "02:00:00:00:0a:01", IP: netip.MustParseAddr("100.64.1.1"), VTEP: vtepA, VNI: 100, RTs: []string{"65000:100"}}
	imet := Route{Type: InclusiveMulticast, RD: "127.0.0.2:100", VTEP: vtepA, VNI: 100, RTs: []string{"65000:100"}}
	if err := a.SetRoutes(ctx, []Route{mac, imet}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to learn a's routes", func() bool { return len(b.Learned()) == 2 })
	got := b.Learned()
	if !slices.ContainsFunc(got, mac.Equal) || !slices.ContainsFunc(got, imet.Equal) {
		t.Fatalf("b learned %v, want %v and %v", got, mac, imet)
	}
	if len(a.Learned()) != 0 {
		t.Fatalf("a must not learn its own routes back: %v", a.Learned())
	}
	waitFor(t, "End-of-RIB from the reflector", b.Synced)
	waitFor(t, "End-of-RIB at a", a.Synced)

	// a's own routes change nothing a learned: a must not wake its
	// controller for them (that was a wasted full pass per attach).
	drain(a)
	extra := Route{Type: MACIP, RD: "127.0.0.2:100", MAC: "02:00:00:00:0a:02", VTEP: vtepA, VNI: 100, RTs: []string{"65000:100"}}
	if err := a.SetRoutes(ctx, []Route{mac, imet, extra}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to learn a's new route", func() bool { return len(b.Learned()) == 3 })
	select {
	case <-a.Changed():
		t.Fatal("a signalled a change for its own route")
	case <-time.After(300 * time.Millisecond):
	}
	select {
	case <-b.Changed():
	default:
		t.Fatal("b learned a route and did not signal a change")
	}
	if err := a.SetRoutes(ctx, []Route{mac, imet}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to drop a's extra route", func() bool { return len(b.Learned()) == 2 })

	// A MAC move bump is an in-place replace of the same key.
	moved := mac
	moved.Seq = 1
	if err := a.SetRoutes(ctx, []Route{moved, imet}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "sequence 1 at b", func() bool {
		return slices.ContainsFunc(b.Learned(), moved.Equal)
	})

	if err := a.SetRoutes(ctx, []Route{imet}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "withdraw at b", func() bool { return len(b.Learned()) == 1 })
	if len(a.Originated()) != 1 {
		t.Fatalf("a originates %v, want only the type-3", a.Originated())
	}
}

// drain empties s's change signal, after any pending event has arrived.
func drain(s *Speaker) {
	for {
		select {
		case <-s.Changed():
		case <-time.After(300 * time.Millisecond):
			return
		}
	}
}
