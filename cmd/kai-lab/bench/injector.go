package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"time"

	"github.com/kai-dpu/kai/dpu/evpn"
)

// injector is the benchmark's BGP speaker: a GoBGP instance (through
// Kai's evpn package) that originates the "fabric's" routes on behalf of
// K remote VTEPs, with third-party next hops.
type injector struct {
	sp *evpn.Speaker
}

func newInjector(ctx context.Context, log *slog.Logger) (*injector, error) {
	id := netip.MustParseAddr(injAddr)
	sp := evpn.NewSpeaker(evpn.SpeakerConfig{ASN: asn, RouterID: id, VTEP: id, GracefulRestartSeconds: 120, Passive: true}, log)
	if err := sp.Start(ctx, nil, nil); err != nil {
		return nil, fmt.Errorf("injector: %w", err)
	}
	return &injector{sp: sp}, nil
}

func (in *injector) close() { _ = in.sp.Stop(context.Background()) }

// peer makes addr the injector's only neighbor.
func (in *injector) peer(ctx context.Context, addr string) error {
	var ns []evpn.Neighbor
	if addr != "" {
		ns = append(ns, evpn.Neighbor{Address: netip.MustParseAddr(addr), ASN: asn})
	}
	return in.sp.SetNeighbors(ctx, ns)
}

// waitEstablished polls the session with addr until it is up and returns
// when that was first seen.
func (in *injector) waitEstablished(ctx context.Context, addr string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		ps, err := in.sp.Peers(ctx)
		if err == nil {
			for _, p := range ps {
				if p.Address == addr && p.State == "ESTABLISHED" {
					return time.Now(), nil
				}
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return time.Time{}, fmt.Errorf("session with %s not established within %s", addr, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// routeSet is N type-2 routes (one per MAC; every other one MAC+IP) spread
// over K remote VTEPs, their type-3 routes, and the remote pod of the
// restart scenario.
type routeSet struct {
	routes []evpn.Route
	macs   int
}

func vtepAddr(k int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 1, byte(k + 1)}) }

func rd(v netip.Addr) string { return fmt.Sprintf("%s:%d", v, vni&0xffff) }

var rt = []string{fmt.Sprintf("%d:%d", asn, vni)}

func benchMAC(i int) string {
	return fmt.Sprintf("02:b0:%02x:%02x:%02x:%02x", i>>24&0xff, i>>16&0xff, i>>8&0xff, i&0xff)
}

func macRoute(i, k int) evpn.Route {
	v := vtepAddr(i % k)
	r := evpn.Route{Type: evpn.MACIP, RD: rd(v), MAC: benchMAC(i), VTEP: v, VNI: vni, RTs: rt}
	if i%2 == 1 {
		r.IP = netip.AddrFrom4([4]byte{100, 96 + byte(i>>16&0x1f), byte(i >> 8), byte(i)})
	}
	return r
}

func newRouteSet(n, k int) routeSet {
	rs := routeSet{macs: n + 1}
	for j := range k {
		v := vtepAddr(j)
		rs.routes = append(rs.routes, evpn.Route{Type: evpn.InclusiveMulticast, RD: rd(v), VTEP: v, VNI: vni, RTs: rt})
	}
	rv := netip.MustParseAddr(rvtepAddr)
	rs.routes = append(rs.routes,
		evpn.Route{Type: evpn.InclusiveMulticast, RD: rd(rv), VTEP: rv, VNI: vni, RTs: rt},
		evpn.Route{Type: evpn.MACIP, RD: rd(rv), MAC: rpodMAC, VTEP: rv, VNI: vni, RTs: rt})
	for i := range n {
		rs.routes = append(rs.routes, macRoute(i, k))
	}
	return rs
}

// load makes the injector originate exactly rs and returns the heap the
// injector's GoBGP needed per route (after a GC), the RSS anchor.
func (in *injector) load(ctx context.Context, rs routeSet) (float64, error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	prev := len(in.sp.Originated())
	if err := in.sp.SetRoutes(ctx, rs.routes); err != nil {
		return 0, fmt.Errorf("injector: %w", err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	added := len(rs.routes) - prev
	if added <= 0 {
		return 0, nil
	}
	return float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / float64(added), nil
}
