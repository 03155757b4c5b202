package controller

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/kai-dpu/kai/dpu/config"
	"github.com/kai-dpu/kai/dpu/desired"
)

// dupDetector implements RFC 7432 section 15.1 duplicate MAC detection: a
// MAC whose winning location changes MaxMoves times within Window is
// frozen where it is, for FreezeSeconds, so two hosts claiming one MAC
// cannot make the fabric flap. The decision itself stays in desired
// (Input.Frozen); this only keeps the history between reconciles.
type dupDetector struct {
	mu     sync.Mutex
	last   map[desired.MACKey]netip.Addr
	moves  map[desired.MACKey][]time.Time
	frozen map[desired.MACKey]frozenMAC
}

type frozenMAC struct {
	desired.Frozen
	until time.Time // zero: until restart
}

func newDupDetector() *dupDetector {
	return &dupDetector{last: map[desired.MACKey]netip.Addr{}, moves: map[desired.MACKey][]time.Time{}, frozen: map[desired.MACKey]frozenMAC{}}
}

// current returns the frozen MACs, dropping freezes that expired.
func (d *dupDetector) current(now time.Time) map[desired.MACKey]desired.Frozen {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[desired.MACKey]desired.Frozen, len(d.frozen))
	for k, f := range d.frozen {
		if !f.until.IsZero() && now.After(f.until) {
			delete(d.frozen, k)
			delete(d.moves, k)
			continue
		}
		out[k] = f.Frozen
	}
	return out
}

// expired reports whether a freeze has ended and not yet been dropped, so
// the controller recomputes and lets the MAC follow its routes again.
func (d *dupDetector) expired(now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range d.frozen {
		if !f.until.IsZero() && now.After(f.until) {
			return true
		}
	}
	return false
}

// observe records where each MAC won in out and returns the MACs frozen now.
func (d *dupDetector) observe(p config.MACMobility, out desired.Output, vtep netip.Addr, now time.Time) []desired.MACKey {
	winners := map[desired.MACKey]netip.Addr{}
	for _, n := range out.Dataplane.Networks {
		for _, port := range n.Ports {
			if !port.Moved {
				winners[desired.MACKey{Network: n.Name, MAC: port.MAC}] = vtep
			}
		}
		for _, r := range n.Remote {
			winners[desired.MACKey{Network: n.Name, MAC: r.MAC}] = r.VTEP
		}
	}
	window := time.Duration(p.DuplicateSeconds) * time.Second
	d.mu.Lock()
	defer d.mu.Unlock()
	var frozen []desired.MACKey
	for k, at := range winners {
		prev, seen := d.last[k]
		d.last[k] = at
		if !seen || prev == at {
			continue
		}
		kept := d.moves[k][:0]
		for _, t := range d.moves[k] {
			if now.Sub(t) < window {
				kept = append(kept, t)
			}
		}
		d.moves[k] = append(kept, now)
		if _, already := d.frozen[k]; already || p.DuplicateMoves == 0 || len(d.moves[k]) < int(p.DuplicateMoves) {
			continue
		}
		f := frozenMAC{Frozen: desired.Frozen{VTEP: at, Reason: fmt.Sprintf(
			"duplicate MAC %s in network %s: it moved %d times within %s; frozen at VTEP %s (RFC 7432 section 15.1)",
			k.MAC, k.Network, len(d.moves[k]), window, at)}}
		if p.FreezeSeconds > 0 {
			f.until = now.Add(time.Duration(p.FreezeSeconds) * time.Second)
		}
		d.frozen[k] = f
		frozen = append(frozen, k)
	}
	for k := range d.last {
		if _, ok := winners[k]; !ok {
			delete(d.last, k) // gone everywhere: a later appearance is not a move
		}
	}
	return frozen
}
