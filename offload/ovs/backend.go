// Package ovs is the Open vSwitch dataplane backend: OVSDB (libovsdb) for
// the bridge and ports, OpenFlow bundles (ovs-ofctl) for flows and groups.
// On a DPU the bridge uses datapath_type=system with other_config:hw-offload,
// so OVS pushes the datapath flows into the eSwitch as TC flower rules.
package ovs

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kai-dpu/kai/offload"
)

// Config configures the backend.
type Config struct {
	// DB is the OVSDB endpoint ("unix:/path" or "tcp:host:port").
	DB           string
	Bridge       string
	DatapathType string
	HWOffload    bool
	// OFCtl is the ovs-ofctl binary.
	OFCtl string
	// RunDir is where ovs-vswitchd puts <bridge>.mgmt.
	RunDir string
}

// Backend implements offload.Dataplane on OVS.
type Backend struct {
	log *slog.Logger
	db  *ovsdbClient
	of  ofctl

	mu sync.Mutex
	// last is the state of the last successful Apply; Dump renders it
	// again to name each flow's owner (rare, so no per-pass map for it).
	last offload.State
	// programmed is what the last successful Apply left in OVS, so the
	// next Apply can diff against it instead of dumping and parsing every
	// flow (at 100k flows that dump was most of a reconcile). It is
	// trusted until Drifted finds OVS holding a different number of Kai
	// flows, a bundle fails, the bridge is remade, or it is fullReadBack
	// old; then Apply reads everything back again.
	programmed *programState
}

type programState struct {
	flows  []dumpedFlow
	groups []dumpedGroup
	at     time.Time // of the last full read-back; zero: read back again
}

// distrust makes the next Apply read everything back, keeping the record's
// flow count for Drifted. Callers hold b.mu.
func (b *Backend) distrust() {
	if b.programmed != nil {
		p := *b.programmed
		p.at = time.Time{}
		b.programmed = &p
	}
}

// fullReadBack bounds how long Apply trusts its own record of OVS.
const fullReadBack = 10 * time.Second

var _ offload.Dataplane = (*Backend)(nil)

// New connects to OVSDB. It does not change anything until Apply.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Backend, error) {
	db, err := dialOVSDB(ctx, cfg.DB, cfg.Bridge, cfg.DatapathType, cfg.HWOffload)
	if err != nil {
		return nil, err
	}
	return &Backend{
		log: log, db: db, of: ofctl{bin: cfg.OFCtl, bridge: cfg.Bridge, target: "unix:" + filepath.Join(cfg.RunDir, cfg.Bridge+".mgmt")},
	}, nil
}

// Close disconnects; flows, groups and ports stay programmed.
func (b *Backend) Close() error {
	b.db.close()
	return nil
}

// Apply reconciles OVS with s: OVSDB rows first (ports must exist before
// flows can name their numbers), then one OpenFlow bundle with exactly the
// difference between the rendered program and what is read back.
func (b *Backend) Apply(ctx context.Context, s offload.State) (offload.Result, error) {
	start := time.Now()
	changes, err := b.db.ensureBridge(ctx, s.VTEP, s.VXLANPort)
	if err != nil {
		return offload.Result{}, err
	}
	if changes > 0 {
		// The bridge or its tunnel port was (re)made: whatever the record
		// says was programmed may be gone with it.
		b.mu.Lock()
		b.distrust()
		b.mu.Unlock()
	}
	want := map[string]string{}
	for _, n := range s.Networks {
		for _, p := range n.Ports {
			want[p.Name] = p.Owner
		}
	}
	c, err := b.db.syncRepresentors(ctx, want)
	if err != nil {
		return offload.Result{}, err
	}
	changes += c
	dbDone := time.Now()
	prog, err := b.render(ctx, s)
	if err != nil {
		return offload.Result{}, err
	}
	rendered := time.Now()
	rb, err := b.readBack(ctx)
	if err != nil {
		return offload.Result{}, err
	}
	var keep func(dumpedFlow) bool
	if s.KeepRemote {
		keep = isRemoteMACFlow
	}
	lines, kept := diff(prog, rb.flows, rb.groups, keep)
	diffed := time.Now()
	if err := b.of.bundle(ctx, lines); err != nil {
		b.mu.Lock()
		b.distrust()
		b.mu.Unlock()
		return offload.Result{}, fmt.Errorf("apply %d openflow changes: %w", len(lines), err)
	}
	next := &programState{at: rb.at, flows: make([]dumpedFlow, len(prog.Flows), len(prog.Flows)+len(kept)), groups: make([]dumpedGroup, len(prog.Groups))}
	for i, f := range prog.Flows {
		next.flows[i] = dumpedFlow{Cookie: f.Cookie}
		if s.KeepRemote {
			// While keeping, a remote MAC that leaves the program must be
			// recognised as one by the next pass, as after a full dump.
			next.flows[i] = dumpedFlow{Cookie: f.Cookie, Table: f.Table, Priority: f.Priority, Match: f.Match, Actions: f.Actions}
		}
	}
	// Kept flows stay in the record whole: the next pass must recognise
	// them again, and delete them once KeepRemote is off.
	next.flows = append(next.flows, kept...)
	for i, g := range prog.Groups {
		next.groups[i] = dumpedGroup{ID: g.ID, Type: "all", Buckets: normalizedBuckets(g)}
	}
	b.mu.Lock()
	b.last, b.programmed = s, next
	b.mu.Unlock()
	if len(lines) > 0 {
		b.log.Debug("openflow bundle applied", "changes", len(lines), "lines", lines[:min(len(lines), 20)])
	}
	if len(kept) > 0 {
		b.log.Debug("keeping remote MACs the routes so far lack, until they are complete", "flows", len(kept))
	}
	// Where an apply's time goes (OVSDB, port numbers + render, read-back
	// + diff, bundle), for profiling attach and route latency.
	b.log.Debug("apply", "ovsdb", dbDone.Sub(start), "render", rendered.Sub(dbDone),
		"readBack", diffed.Sub(rendered), "bundle", time.Since(diffed))
	return offload.Result{Changes: changes + len(lines)}, nil
}

// readBack returns what OVS holds: the record of the last Apply while it
// is recent and Drifted has not found OVS to disagree with it, else a full
// dump of flows and groups. Not checking OVS here saves an ovs-ofctl exec
// (about 10 ms) on every pass, so on every attach and every route; changes
// behind Kai's back are found by Drifted, which the controller asks every
// second, and by the full read-back at least every fullReadBack.
func (b *Backend) readBack(ctx context.Context) (*programState, error) {
	b.mu.Lock()
	rb := b.programmed
	b.mu.Unlock()
	if rb != nil && !rb.at.IsZero() && time.Since(rb.at) < fullReadBack {
		return rb, nil
	}
	return b.dump(ctx)
}

// dump reads every Kai flow and group back from OVS.
func (b *Backend) dump(ctx context.Context) (*programState, error) {
	now := time.Now()
	flows, err := b.of.dumpFlows(ctx)
	if err != nil {
		return nil, fmt.Errorf("read back flows: %w", err)
	}
	groups, err := b.of.dumpGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("read back groups: %w", err)
	}
	return &programState{flows: flows, groups: groups, at: now}, nil
}

// render renders s with the OpenFlow port numbers OVSDB gives its ports.
func (b *Backend) render(ctx context.Context, s offload.State) (Program, error) {
	names := []string{vxlanPortName}
	for _, n := range s.Networks {
		for _, p := range n.Ports {
			names = append(names, p.Name)
		}
	}
	ports, err := b.db.ofports(ctx, names)
	if err != nil {
		return Program{}, err
	}
	return Render(s, ports, vxlanPortName)
}

// Drifted reports, cheaply, whether the programmed flows no longer match the
// last Apply (ovs-vswitchd restarted and lost them, or someone deleted
// some), so the caller can reconcile at once instead of at its next
// periodic pass. An unreachable ovs-vswitchd counts as drifted.
func (b *Backend) Drifted(ctx context.Context) bool {
	n, err := b.of.countFlows(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	applied := 0
	if b.programmed != nil {
		applied = len(b.programmed.flows)
	}
	if err != nil || n != applied {
		b.distrust()
		return true
	}
	return false
}

// Diff returns the bundle lines that turn the read-back state into prog:
// groups first (flows may point at them), then flow adds (an add with the
// same match replaces a flow in place), then deletes of stale cookies and
// finally stale groups.
func Diff(prog Program, flows []dumpedFlow, groups []dumpedGroup) []string {
	lines, _ := diff(prog, flows, groups, nil)
	return lines
}

// isRemoteMACFlow recognises a read-back remote-MAC entry: L2 table,
// unicast priority, and a tunnel destination (local MACs output to a port).
func isRemoteMACFlow(f dumpedFlow) bool {
	return f.Table == tableL2 && f.Priority == prioUnicast && strings.Contains(f.Actions, "tun_dst")
}

type l2Key struct {
	vni uint32
	mac string
}

// dlDst returns the dl_dst value of a match, "" if it has none.
func dlDst(match string) string {
	_, rest, ok := strings.Cut(match, "dl_dst=")
	if !ok {
		return ""
	}
	mac, _, _ := strings.Cut(rest, ",")
	return mac
}

// diff is Diff, except that stale flows for which keep is true are left
// programmed and returned instead of deleted.
func diff(prog Program, flows []dumpedFlow, groups []dumpedGroup, keep func(dumpedFlow) bool) ([]string, []dumpedFlow) {
	var lines []string
	haveGroup := map[uint32]dumpedGroup{}
	for _, g := range groups {
		haveGroup[g.ID] = g
	}
	wantGroup := map[uint32]bool{}
	for _, g := range prog.Groups {
		wantGroup[g.ID] = true
		old, ok := haveGroup[g.ID]
		switch {
		case !ok:
			lines = append(lines, "group add "+g.Spec())
		case old.Type != "all" || !slices.Equal(old.Buckets, normalizedBuckets(g)):
			lines = append(lines, "group modify "+g.Spec())
		}
	}
	// Flows are compared as two lists sorted by cookie, merged in one
	// walk: at 100k flows per pass, building maps of both sides was most
	// of a one-route reconcile.
	want := byCookie(prog.Flows, func(f Flow) uint64 { return f.Cookie })
	have := byCookie(flows, func(f dumpedFlow) uint64 { return f.Cookie })
	// A kept candidate whose MAC the program also forwards (it moved) is
	// replaced by that add, so it is not kept.
	var forwarded map[l2Key]bool
	if keep != nil {
		forwarded = map[l2Key]bool{}
		for _, f := range want {
			if f.Table == tableL2 && f.Priority == prioUnicast {
				forwarded[l2Key{f.VNI, dlDst(f.Match)}] = true
			}
		}
	}
	var stale []uint64
	var kept []dumpedFlow
	for i, j := 0, 0; i < len(want) || j < len(have); {
		switch {
		case j == len(have) || i < len(want) && want[i].Cookie < have[j].Cookie:
			c := want[i].Cookie
			for ; i < len(want) && want[i].Cookie == c; i++ {
				lines = append(lines, want[i].AddLine())
			}
		case i == len(want) || have[j].Cookie < want[i].Cookie:
			c, deleted := have[j].Cookie, false
			for ; j < len(have) && have[j].Cookie == c; j++ {
				f := have[j]
				if keep != nil && keep(f) && !forwarded[l2Key{CookieVNI(c), dlDst(f.Match)}] {
					kept = append(kept, f)
				} else if !deleted {
					stale, deleted = append(stale, c), true
				}
			}
		default:
			c, wi, hj := want[i].Cookie, i, j
			for ; i < len(want) && want[i].Cookie == c; i++ {
			}
			for ; j < len(have) && have[j].Cookie == c; j++ {
			}
			if i-wi == j-hj {
				continue
			}
			// Programmed a different number of times than wanted (a
			// hash collision that changed, or a duplicate): replace the
			// cookie's flows; the bundle makes it atomic.
			lines = append(lines, fmt.Sprintf("flow delete cookie=%#x/-1", c))
			for _, f := range want[wi:i] {
				lines = append(lines, f.AddLine())
			}
		}
	}
	for _, c := range stale {
		lines = append(lines, fmt.Sprintf("flow delete cookie=%#x/-1", c))
	}
	var staleGroups []uint32
	for id := range haveGroup {
		if !wantGroup[id] && isKaiGroup(id) {
			staleGroups = append(staleGroups, id)
		}
	}
	sort.Slice(staleGroups, func(i, j int) bool { return staleGroups[i] < staleGroups[j] })
	for _, id := range staleGroups {
		lines = append(lines, fmt.Sprintf("group delete group_id=%d", id))
	}
	return lines, kept
}

// byCookie returns fs sorted by cookie: fs itself when it already is (a
// rendered program, the record of the last apply), else a sorted copy (a
// dump); the order among equal cookies is kept.
func byCookie[T any](fs []T, cookie func(T) uint64) []T {
	less := func(a, b T) int { return cmp.Compare(cookie(a), cookie(b)) }
	if slices.IsSortedFunc(fs, less) {
		return fs
	}
	fs = slices.Clone(fs)
	slices.SortStableFunc(fs, less)
	return fs
}

// isKaiGroup: Kai numbers groups VNI and VNI|1<<24; it leaves others alone.
func isKaiGroup(id uint32) bool { return id&^(tunnelGroupBit|0xffffff) == 0 }

func normalizedBuckets(g Group) []string {
	out := make([]string, len(g.Buckets))
	for i, b := range g.Buckets {
		out[i] = normalizeActions(b)
	}
	return out
}

// Dump reads back Kai's flows and groups for inspection.
func (b *Backend) Dump(ctx context.Context) (offload.Dump, error) {
	rb, err := b.dump(ctx)
	if err != nil {
		return offload.Dump{}, err
	}
	b.mu.Lock()
	last := b.last
	b.mu.Unlock()
	nets := map[uint32]string{}
	for _, n := range last.Networks {
		nets[n.VNI] = n.Name
	}
	owners := map[uint64]string{}
	if len(last.Networks) > 0 {
		prog, err := b.render(ctx, last)
		if err != nil {
			return offload.Dump{}, fmt.Errorf("name the flows' owners: %w", err)
		}
		for _, f := range prog.Flows {
			owners[f.Cookie] = f.Owner
		}
	}
	var d offload.Dump
	for _, f := range rb.flows {
		vni := CookieVNI(f.Cookie)
		owner, ok := owners[f.Cookie]
		if !ok {
			owner = "stale"
		}
		d.Flows = append(d.Flows, offload.Flow{
			Network: nets[vni], VNI: vni, Cookie: f.Cookie, Owner: owner, Table: f.Table,
			Priority: f.Priority, Match: f.Match, Actions: f.Actions, Packets: f.Packets,
		})
	}
	sort.Slice(d.Flows, func(i, j int) bool {
		a, c := d.Flows[i], d.Flows[j]
		if a.Table != c.Table {
			return a.Table < c.Table
		}
		if a.Priority != c.Priority {
			return a.Priority > c.Priority
		}
		return a.Cookie < c.Cookie
	})
	for _, g := range rb.groups {
		if !isKaiGroup(g.ID) {
			continue
		}
		d.Groups = append(d.Groups, offload.Group{Network: nets[g.ID&0xffffff], ID: g.ID, Type: g.Type, Buckets: g.Buckets})
	}
	return d, nil
}
