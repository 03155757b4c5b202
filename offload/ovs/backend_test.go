package ovs

// Backend tests against a real ovsdb-server/ovs-vswitchd (userspace
// datapath) in a namespace of their own. Need root and openvswitch-switch.

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kai-dpu/kai/cmd/kai-lab/netlab"
	"github.com/kai-dpu/kai/offload"
)

type ovsEnv struct {
	ovs *netlab.OVS
	b   *Backend
}

func newOVSEnv(tb testing.TB, reps int) *ovsEnv {
	tb.Helper()
	if testing.Short() || os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			tb.Fatal("OVS backend tests must run in CI (as root)")
		}
		tb.Skip("needs root and openvswitch-switch; run `sudo make test`")
	}
	if _, err := exec.LookPath("ovs-vswitchd"); err != nil {
		tb.Fatalf("ovs-vswitchd not found: run hack/install-prereqs.sh")
	}
	lab, err := netlab.New(fmt.Sprintf("kot%d", os.Getpid()%100000), tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := lab.Close(); err != nil {
			tb.Errorf("cleanup: %v", err)
		}
	})
	ns, err := lab.AddNS("dpu")
	if err != nil {
		tb.Fatal(err)
	}
	for i := range reps {
		// Both ends in the namespace: the DPU end plays the representor.
		if err := lab.Veth(ns, fmt.Sprintf("pf0vf%d", i), ns, fmt.Sprintf("vf%d", i), 1500); err != nil {
			tb.Fatal(err)
		}
	}
	o, err := lab.StartOVS(ns, "ovs")
	if err != nil {
		tb.Fatal(err)
	}
	e := &ovsEnv{ovs: o}
	e.b = e.newBackend(tb)
	return e
}

// newBackend connects a backend to the env's OVS, as a (re)started kai-dpu does.
func (e *ovsEnv) newBackend(tb testing.TB) *Backend {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := New(ctx, Config{DB: "unix:" + e.ovs.DBSocket(), Bridge: "br-kai", DatapathType: "netdev", OFCtl: "ovs-ofctl", RunDir: e.ovs.RunDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = b.Close() })
	return b
}

func benchState(reps, remotes int, vtep string) offload.State {
	s := offload.State{VTEP: netip.MustParseAddr("198.18.0.11"), VXLANPort: 4789}
	n := offload.Network{Name: "blue", VNI: 10100, Flood: []netip.Addr{netip.MustParseAddr(vtep)}}
	for i := range reps {
		n.Ports = append(n.Ports, offload.Port{Name: fmt.Sprintf("pf0vf%d", i), Owner: fmt.Sprintf("a%d", i),
			MAC: fmt.Sprintf("02:00:00:00:0a:%02x", i), IPs: []netip.Addr{netip.MustParseAddr(fmt.Sprintf("100.64.1.%d", i+1))}})
	}
	for i := range remotes {
		n.Remote = append(n.Remote, offload.RemoteMAC{MAC: fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff), VTEP: netip.MustParseAddr(vtep)})
	}
	s.Networks = []offload.Network{n, {Name: "red", VNI: 10200}}
	return s
}

func (e *ovsEnv) apply(t *testing.T, s offload.State) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := e.b.Apply(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	return res.Changes
}

func (e *ovsEnv) kaiFlows(t *testing.T) int {
	t.Helper()
	out, err := e.ovs.Ofctl("dump-flows", "br-kai", "cookie=0x4b00000000000000/0xff00000000000000")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(out, "cookie=")
}

func TestBackendReconcilesRealOVS(t *testing.T) {
	e := newOVSEnv(t, 2)
	s := benchState(2, 50, "198.18.0.12")
	if n := e.apply(t, s); n == 0 {
		t.Fatal("first Apply changed nothing")
	}
	want := e.kaiFlows(t)
	if n := e.apply(t, s); n != 0 {
		t.Fatalf("second Apply of the same state made %d changes; must be idempotent", n)
	}

	if diff, err := e.b.Verify(context.Background(), s); err != nil || len(diff) != 0 {
		t.Fatalf("Verify right after Apply: %v %v", diff, err)
	}

	// Someone deletes one of our flows and adds one of their own.
	if _, err := e.ovs.Ofctl("del-flows", "br-kai", "table=20,dl_dst=02:00:00:00:00:07"); err != nil {
		t.Fatal(err)
	}
	if diff, err := e.b.Verify(context.Background(), s); err != nil || len(diff) != 1 || !strings.Contains(diff[0], "02:00:00:00:00:07") {
		t.Fatalf("Verify must report exactly the deleted flow, got %q (%v)", diff, err)
	}
	if _, err := e.ovs.Ofctl("add-flow", "br-kai", "cookie=0x1,table=5,priority=1,actions=drop"); err != nil {
		t.Fatal(err)
	}
	// The controller asks Drifted every second; that is what makes the
	// next Apply read OVS back instead of trusting its record.
	if !e.b.Drifted(context.Background()) {
		t.Fatal("Drifted must report a deleted Kai flow")
	}
	if n := e.apply(t, s); n != 1 {
		t.Fatalf("repair made %d changes, want exactly the 1 missing flow", n)
	}
	if got := e.kaiFlows(t); got != want {
		t.Fatalf("%d Kai flows after repair, want %d", got, want)
	}
	if out, _ := e.ovs.Ofctl("dump-flows", "br-kai", "cookie=0x1/-1"); !strings.Contains(out, "table=5") {
		t.Fatal("Apply removed a flow that is not Kai's")
	}

	// A best-path change moves 50 MACs to another VTEP: replaced in place.
	moved := benchState(2, 50, "198.18.0.13")
	if n := e.apply(t, moved); n == 0 {
		t.Fatal("moving remote MACs changed nothing")
	}
	out, err := e.ovs.Ofctl("dump-flows", "br-kai")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "198.18.0.12") || !strings.Contains(out, "198.18.0.13") {
		t.Fatalf("flows still point at the old VTEP:\n%s", out)
	}

	// ovs-vswitchd restarts and forgets every flow; the next Apply restores them.
	e.ovs.StopVswitchd()
	if err := e.ovs.StartVswitchd(); err != nil {
		t.Fatal(err)
	}
	mgmt := filepath.Join(e.ovs.RunDir(), "br-kai.mgmt")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(mgmt); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("br-kai did not come back after the ovs-vswitchd restart")
		}
	}
	if got := e.kaiFlows(t); got != 0 {
		t.Fatalf("expected a restarted ovs-vswitchd to have no flows, found %d", got)
	}
	if !e.b.Drifted(context.Background()) {
		t.Fatal("Drifted must report a restarted ovs-vswitchd")
	}
	if n := e.apply(t, moved); n == 0 {
		t.Fatal("Apply after an ovs-vswitchd restart changed nothing")
	}
	if got := e.kaiFlows(t); got != want {
		t.Fatalf("%d Kai flows after the vswitchd restart, want %d", got, want)
	}
	if e.b.Drifted(context.Background()) {
		t.Fatal("Drifted after a successful Apply")
	}

	// Representor ports follow the state: one removed, only Kai's touched.
	if _, err := e.ovs.Vsctl("add-port", "br-kai", "vf1"); err != nil { // a port Kai does not own
		t.Fatal(err)
	}
	one := benchState(1, 0, "198.18.0.13")
	e.apply(t, one)
	ports, err := e.ovs.Vsctl("list-ports", "br-kai")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ports, "pf0vf1") || !strings.Contains(ports, "pf0vf0") || !strings.Contains(ports, "vf1") {
		t.Fatalf("ports after removing pf0vf1: %q", ports)
	}
}

// BenchmarkApply measures a reconcile against real OVS with ovs-ofctl
// bundles. The anchor, measured in the same run, is one bare ovs-ofctl
// exec (dump-flows of the bridge): the fixed cost a native OpenFlow
// library would save. Figures are reported as multiples of it.
func BenchmarkApply(b *testing.B) {
	e := newOVSEnv(b, 2)
	anchor := func() time.Duration {
		const n = 20
		start := time.Now()
		for range n {
			if _, err := e.ovs.Ofctl("dump-flows", "br-kai", "cookie=0x1/-1"); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start) / n
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		remotes int
		toggle  bool
	}{
		{"noop-1k-macs", 1000, false},
		{"move-1k-macs", 1000, true},
		{"move-10k-macs", 10000, true},
		{"move-1-of-10k-macs", 10000, true}, // one route changes: the route -> flow case
	} {
		b.Run(tc.name, func(b *testing.B) {
			a, c := benchState(2, tc.remotes, "198.18.0.12"), benchState(2, tc.remotes, "198.18.0.13")
			if strings.HasPrefix(tc.name, "move-1-of") {
				c = benchState(2, tc.remotes, "198.18.0.12")
				c.Networks[0].Remote[0].VTEP = netip.MustParseAddr("198.18.0.13")
			}
			if _, err := e.b.Apply(ctx, a); err != nil {
				b.Fatal(err)
			}
			base := anchor()
			b.ResetTimer()
			for i := range b.N {
				s := a
				if tc.toggle && i%2 == 0 {
					s = c
				}
				if _, err := e.b.Apply(ctx, s); err != nil {
					b.Fatal(err)
				}
			}
			per := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(per)/float64(base), "x-ofctl-exec")
			b.ReportMetric(float64(base.Microseconds()), "anchor-us")
		})
	}
}

// After a crash the routes saved before it can be older than what is
// programmed. While they stand in (KeepRemote), a restarted backend adds
// and replaces remote MACs but removes none; once the routes are complete
// it removes the ones the fabric no longer has.
func TestKeepRemoteAfterRestart(t *testing.T) {
	e := newOVSEnv(t, 1)
	before := benchState(1, 50, "198.18.0.12")
	e.apply(t, before)
	all := e.kaiFlows(t)

	// The restarted kai-dpu knows only 40 of the 50 MACs so far, and one
	// of them has moved to another VTEP.
	restarted := e.newBackend(t)
	partial := benchState(1, 40, "198.18.0.12")
	partial.Networks[0].Remote[0].VTEP = netip.MustParseAddr("198.18.0.13")
	partial.KeepRemote = true
	ctx := context.Background()
	if _, err := restarted.Apply(ctx, partial); err != nil {
		t.Fatal(err)
	}
	if got := e.kaiFlows(t); got != all {
		t.Fatalf("%d Kai flows while keeping remote MACs, want all %d", got, all)
	}
	out, err := e.ovs.Ofctl("dump-flows", "br-kai", "table=20,dl_dst=02:00:00:00:00:00")
	if err != nil || !strings.Contains(out, "198.18.0.13") {
		t.Fatalf("the moved MAC was not replaced while keeping: %v\n%s", err, out)
	}
	if res, err := restarted.Apply(ctx, partial); err != nil || res.Changes != 0 {
		t.Fatalf("second Apply while keeping: %d changes, %v; want none", res.Changes, err)
	}
	if restarted.Drifted(ctx) {
		t.Fatal("kept flows count as drift")
	}
	// A MAC of the routes so far that leaves them while keeping (a live
	// withdraw) is kept too, also when the pass diffs against its record.
	shrunk := partial
	shrunk.Networks = slices.Clone(partial.Networks)
	shrunk.Networks[0].Remote = partial.Networks[0].Remote[:39]
	if res, err := restarted.Apply(ctx, shrunk); err != nil || res.Changes != 0 {
		t.Fatalf("Apply while keeping, one MAC fewer: %d changes, %v; want none", res.Changes, err)
	}
	if got := e.kaiFlows(t); got != all {
		t.Fatalf("%d Kai flows after a MAC left while keeping, want all %d", got, all)
	}

	partial.KeepRemote = false
	if res, err := restarted.Apply(ctx, partial); err != nil || res.Changes != 10 {
		t.Fatalf("Apply with complete routes: %d changes, %v; want the 10 stale MACs removed", res.Changes, err)
	}
	if got := e.kaiFlows(t); got != all-10 {
		t.Fatalf("%d Kai flows after the routes were complete, want %d", got, all-10)
	}
	if out, _ := e.ovs.Ofctl("dump-flows", "br-kai", "table=20,dl_dst=02:00:00:00:00:31"); strings.Contains(out, "dl_dst") {
		t.Fatalf("a MAC the fabric no longer has is still programmed:\n%s", out)
	}
}
