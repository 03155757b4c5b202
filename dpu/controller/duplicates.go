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
	last   map[desired.MACKey]lastWinner
	gen    uint64 // of the last observe, to drop MACs it did not see
	moves  map[desired.MACKey][]time.Time
	frozen map[desired.MACKey]frozenMAC
}

type lastWinner struct {
	vtep netip.Addr
	gen  uint64
}

type frozenMAC struct {
	desired.Frozen
	until time.Time // config guarantees FreezeSeconds > 0
}

func newDupDetector() *dupDetector {
	return &dupDetector{last: map[desired.MACKey]lastWinner{}, moves: map[desired.MACKey][]time.Time{}, frozen: map[desired.MACKey]frozenMAC{}}
}

// current returns the frozen MACs, dropping freezes that expired.
func (d *dupDetector) current(now time.Time) map[desired.MACKey]desired.Frozen {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[desired.MACKey]desired.Frozen, len(d.frozen))
	for k, f := range d.frozen {
		if now.After(f.until) {
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
		if now.After(f.until) {
			return true
		}
	}
	return false
}

// observe records where each MAC won in out and returns the MACs frozen now.
func (d *dupDetector) observe(p config.MACMobility, out desired.Output, vtep netip.Addr, now time.Time) []desired.MACKey {
	window := time.Duration(p.DuplicateSeconds) * time.Second
	d.mu.Lock()
	defer d.mu.Unlock()
	// Updated in place, generation-marked: a per-pass map of every
	// winner cost as much as the rest of a reconcile at 100k MACs.
	d.gen++
	var frozen []desired.MACKey
	visit := func(k desired.MACKey, at netip.Addr) {
		prev, seen := d.last[k]
		d.last[k] = lastWinner{vtep: at, gen: d.gen}
		if !seen || prev.vtep == at {
			return
		}
		kept := d.moves[k][:0]
		for _, t := range d.moves[k] {
			if now.Sub(t) < window {
				kept = append(kept, t)
			}
		}
		d.moves[k] = append(kept, now)
		if _, already := d.frozen[k]; already || len(d.moves[k]) < int(p.DuplicateMoves) {
			return
		}
		d.frozen[k] = frozenMAC{Frozen: desired.Frozen{VTEP: at, Reason: fmt.Sprintf(
			"duplicate MAC %s in network %s: it moved %d times within %s; frozen at VTEP %s (RFC 7432 section 15.1)",
			k.MAC, k.Network, len(d.moves[k]), window, at)},
			until: now.Add(time.Duration(p.FreezeSeconds) * time.Second)}
		frozen = append(frozen, k)
	}
	for _, n := range out.Dataplane.Networks {
		for _, port := range n.Ports {
			if !port.Moved {
				visit(desired.MACKey{Network: n.Name, MAC: port.MAC}, vtep)
			}
		}
		for _, r := range n.Remote {
			visit(desired.MACKey{Network: n.Name, MAC: r.MAC}, r.VTEP)
		}
	}
	for k, w := range d.last {
		if w.gen != d.gen {
			delete(d.last, k) // gone everywhere: a later appearance is not a move
		}
	}
	return frozen
}
