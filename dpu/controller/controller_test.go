package controller_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kai-dpu/kai/dpu/config"
	"github.com/kai-dpu/kai/dpu/controller"
	"github.com/kai-dpu/kai/dpu/evpn"
	"github.com/kai-dpu/kai/dpu/store"
	"github.com/kai-dpu/kai/offload"
	"github.com/kai-dpu/kai/sriov"
)

// fakeSpeaker implements controller.Speaker in memory.
type fakeSpeaker struct {
	mu      sync.Mutex
	routes  []evpn.Route
	sets    int
	learned []evpn.Route
	changed chan struct{}
	// unsynced: not every neighbor has sent End-of-RIB yet.
	unsynced bool
}

func newFakeSpeaker() *fakeSpeaker { return &fakeSpeaker{changed: make(chan struct{}, 1)} }

func (f *fakeSpeaker) SetRoutes(_ context.Context, rs []evpn.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes = slices.Clone(rs)
	f.sets++
	return nil
}

func (f *fakeSpeaker) SetNeighbors(context.Context, []evpn.Neighbor) error { return nil }

func (f *fakeSpeaker) Learned() []evpn.Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.learned)
}

func (f *fakeSpeaker) SetLearned(rs []evpn.Route) {
	f.mu.Lock()
	f.learned = slices.Clone(rs)
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func (f *fakeSpeaker) Originated() []evpn.Route { return f.Routes() }
func (f *fakeSpeaker) Synced() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.unsynced
}

func (f *fakeSpeaker) SetSynced(synced bool) {
	f.mu.Lock()
	f.unsynced = !synced
	f.mu.Unlock()
}

func (f *fakeSpeaker) Changed() <-chan struct{} { return f.changed }
func (f *fakeSpeaker) Peers(context.Context) ([]evpn.PeerState, error) {
	return nil, nil
}

func (f *fakeSpeaker) Routes() []evpn.Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.routes)
}

// fakeDataplane implements offload.Dataplane, remembering the last State.
type fakeDataplane struct {
	mu      sync.Mutex
	last    offload.State
	applied int
	fail    error
}

var errApply = errors.New("fake apply failure")

func (f *fakeDataplane) Apply(_ context.Context, s offload.State) (offload.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return offload.Result{}, f.fail
	}
	f.last = s
	f.applied++
	return offload.Result{}, nil
}

func (f *fakeDataplane) Dump(context.Context) (offload.Dump, error) { return offload.Dump{}, nil }
func (f *fakeDataplane) Close() error                               { return nil }

func (f *fakeDataplane) Last() offload.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func (f *fakeDataplane) SetFail(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}

// fakeResolver maps "pf<P>vf<V>" to a representor name.
type fakeResolver map[string]string

func (r fakeResolver) Representor(vf sriov.VF) (string, error) {
	if name, ok := r[fmt.Sprintf("pf%dvf%d", vf.PFIndex, vf.VFIndex)]; ok {
		return name, nil
	}
	return "", fmt.Errorf("fake resolver: VF %s: %w", vf, sriov.ErrNotFound)
}

const testConfig = `
node: node-a
stateDir: /nonexistent
api:
  listen: 127.0.0.1:0
  insecure: true
bgp:
  asn: 65001
  routerID: 198.18.0.11
  listenPort: -1
vtep:
  address: 198.18.0.11
representors: emulated
dataplane:
  ovs:
    datapathType: netdev
networks:
  - name: blue
    vni: 10100
  - name: red
    vni: 10200
`

type env struct {
	ctl *controller.Controller
	spk *fakeSpeaker
	dp  *fakeDataplane
	dir string
	// stop ends Run (also done at cleanup) and returns its error.
	stop func() error
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, testConfig)
}

func newEnvWith(t *testing.T, yaml string) *env {
	t.Helper()
	return newEnvOpts(t, yaml, controller.Options{MaxBackoff: 50 * time.Millisecond, AttachTimeout: 5 * time.Second})
}

// newEnvOpts runs a controller with opts on a fresh state dir until the
// test ends or env.stop is called.
func newEnvOpts(t *testing.T, yaml string, opts controller.Options) *env {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	dir := t.TempDir()
	st, existed, err := store.Open(dir)
	if err != nil || existed {
		t.Fatalf("store.Open: existed=%v err=%v", existed, err)
	}
	e := &env{spk: newFakeSpeaker(), dp: &fakeDataplane{}, dir: dir}
	reps := fakeResolver{"pf0vf0": "pf0vf0", "pf0vf1": "pf0vf1", "pf0vf2": "pf0vf2", "pf0vf3": "pf0vf3", "pf1vf0": "pf1vf0"}
	e.ctl = controller.New(cfg, st, e.spk, e.dp, reps, opts, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.ctl.Run(ctx) }()
	var once sync.Once
	var runErr error
	e.stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	// Registered after TempDir, so it runs before the directory is removed.
	t.Cleanup(func() { _ = e.stop() })
	return e
}

func att(id, node, network string, vfIndex uint32, mac string, ips ...string) store.Attachment {
	a := store.Attachment{
		ID: id, Node: node, Network: network,
		Pod: store.Pod{Namespace: "default", Name: "pod-" + id, UID: "uid-" + id},
		VF:  sriov.VF{PFIndex: 0, VFIndex: vfIndex, PCIAddress: fmt.Sprintf("0000:03:00.%d", vfIndex%8)},
		MAC: mac,
	}
	for _, ip := range ips {
		a.IPs = append(a.IPs, netip.MustParseAddr(ip))
	}
	return a
}

func (e *env) attach(t *testing.T, a store.Attachment) store.Attachment {
	t.Helper()
	got, err := e.ctl.Attach(context.Background(), a)
	if err != nil {
		t.Fatalf("Attach %s: %v", a.ID, err)
	}
	return got
}

// settle waits for a reconcile that starts now to succeed.
func (e *env) settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.ctl.WaitApplied(ctx, e.ctl.Trigger()); err != nil {
		t.Fatalf("reconcile did not succeed: %v", err)
	}
}

func (e *env) stateFile(t *testing.T) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(filepath.Join(e.dir, "state.json"))
	if err != nil {
		t.Fatalf("state file: %v", err)
	}
	return fi
}

func network(s offload.State, name string) offload.Network {
	for _, n := range s.Networks {
		if n.Name == name {
			return n
		}
	}
	return offload.Network{}
}

func type2(rs []evpn.Route) []evpn.Route {
	var out []evpn.Route
	for _, r := range rs {
		if r.Type == evpn.MACIP {
			out = append(out, r)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAttachHappyPathAndIdempotence(t *testing.T) {
	e := newEnv(t)
	req := att("node-a/pod1/eth0", "node-a", "blue", 0, "02:00:00:00:0A:01", "100.64.1.1")
	got := e.attach(t, req)

	if got.Status.Phase != store.Ready || got.Status.ObservedGeneration != 1 {
		t.Errorf("status %+v, want Ready observing generation 1", got.Status)
	}
	if got.Generation != 1 || got.Representor != "pf0vf0" || got.MAC != "02:00:00:00:0a:01" {
		t.Errorf("generation %d representor %q mac %q", got.Generation, got.Representor, got.MAC)
	}
	blue := network(e.dp.Last(), "blue")
	wantPort := offload.Port{Name: "pf0vf0", Owner: req.ID, MAC: "02:00:00:00:0a:01", IPs: req.IPs}
	if len(blue.Ports) != 1 || !reflect.DeepEqual(blue.Ports[0], wantPort) {
		t.Errorf("dataplane ports of blue = %+v, want [%+v]", blue.Ports, wantPort)
	}
	if blue.VNI != 10100 {
		t.Errorf("blue VNI %d", blue.VNI)
	}
	if red := network(e.dp.Last(), "red"); len(red.Ports) != 0 {
		t.Errorf("red has ports %+v", red.Ports)
	}
	t2 := type2(e.spk.Routes())
	if len(t2) != 2 {
		t.Fatalf("type-2 routes %v, want MAC-only and MAC+IP", t2)
	}
	for _, r := range t2 {
		if r.MAC != "02:00:00:00:0a:01" || r.VNI != 10100 || r.VTEP != netip.MustParseAddr("198.18.0.11") || r.RD != "198.18.0.11:10100" {
			t.Errorf("unexpected type-2 route %v", r)
		}
	}
	ip := netip.MustParseAddr("100.64.1.1")
	macOnlyFirst := !t2[0].IP.IsValid() && t2[1].IP == ip
	macOnlySecond := !t2[1].IP.IsValid() && t2[0].IP == ip
	if !macOnlyFirst && !macOnlySecond {
		t.Errorf("type-2 routes %v: want one MAC-only and one with 100.64.1.1", t2)
	}
	if l := e.ctl.List(""); len(l) != 1 || l[0].ID != req.ID {
		t.Errorf("List = %+v", l)
	}

	// Same spec again: nothing is written, generation stays.
	before := e.stateFile(t)
	again := e.attach(t, req)
	if again.Generation != 1 || again.Status.Phase != store.Ready {
		t.Errorf("repeat Attach: generation %d status %+v", again.Generation, again.Status)
	}
	if after := e.stateFile(t); !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("repeat Attach rewrote the state file")
	}
	if l := e.ctl.List(""); len(l) != 1 || !reflect.DeepEqual(l[0], again) {
		t.Errorf("List after repeat = %+v, want [%+v]", l, again)
	}

	// Changed IPs: a new generation, observed once programmed.
	req.IPs = []netip.Addr{netip.MustParseAddr("100.64.1.1"), netip.MustParseAddr("100.64.1.9")}
	changed := e.attach(t, req)
	if changed.Generation != 2 || changed.Status.Phase != store.Ready || changed.Status.ObservedGeneration != 2 {
		t.Errorf("changed IPs: generation %d status %+v, want 2/Ready/2", changed.Generation, changed.Status)
	}
	if ports := network(e.dp.Last(), "blue").Ports; len(ports) != 1 || !slices.Equal(ports[0].IPs, req.IPs) {
		t.Errorf("dataplane did not follow the new IPs: %+v", ports)
	}
	if n := len(type2(e.spk.Routes())); n != 3 {
		t.Errorf("%d type-2 routes after adding an IP, want 3", n)
	}
}

func TestAttachBadInput(t *testing.T) {
	e := newEnv(t)
	e.attach(t, att("existing", "node-a", "blue", 0, "02:00:00:00:0a:01", "100.64.1.1"))

	withVF := func(a store.Attachment, f func(*sriov.VF)) store.Attachment { f(&a.VF); return a }
	for _, c := range []struct {
		name string
		req  store.Attachment
		want controller.Kind
	}{
		{"malformed MAC", att("new", "node-a", "blue", 1, "zz"), controller.InvalidArgument},
		{"multicast MAC", att("new", "node-a", "blue", 1, "01:00:5e:00:00:01"), controller.InvalidArgument},
		{"broadcast MAC", att("new", "node-a", "blue", 1, "ff:ff:ff:ff:ff:ff"), controller.InvalidArgument},
		{"zero MAC", att("new", "node-a", "blue", 1, "00:00:00:00:00:00"), controller.InvalidArgument},
		{"empty MAC", att("new", "node-a", "blue", 1, ""), controller.InvalidArgument},
		{"empty id", att("", "node-a", "blue", 1, "02:00:00:00:0a:02"), controller.InvalidArgument},
		{"bad id chars", att("a b", "node-a", "blue", 1, "02:00:00:00:0a:02"), controller.InvalidArgument},
		{"id starting with a dash", att("-a", "node-a", "blue", 1, "02:00:00:00:0a:02"), controller.InvalidArgument},
		{"id too long", att(strings.Repeat("a", 254), "node-a", "blue", 1, "02:00:00:00:0a:02"), controller.InvalidArgument},
		{"empty node", att("new", "", "blue", 1, "02:00:00:00:0a:02"), controller.InvalidArgument},
		{"existing id with a malformed MAC", att("existing", "node-a", "blue", 0, "zz"), controller.InvalidArgument},
		{"existing id moved to an unknown network", att("existing", "node-a", "green", 0, "02:00:00:00:0a:01"), controller.NotFound},
		{"existing id moved to a VF without representor", att("existing", "node-a", "blue", 7, "02:00:00:00:0a:01"), controller.NotFound},
		{"empty network", att("new", "node-a", "", 1, "02:00:00:00:0a:02"), controller.InvalidArgument},
		{"bad VF PCI", withVF(att("new", "node-a", "blue", 1, "02:00:00:00:0a:02"), func(v *sriov.VF) { v.PCIAddress = "03:00.3" }), controller.InvalidArgument},
		{"bad PF PCI", withVF(att("new", "node-a", "blue", 1, "02:00:00:00:0a:02"), func(v *sriov.VF) { v.PFPCIAddress = "0000:03:00.9" }), controller.InvalidArgument},
		{"unknown network", att("new", "node-a", "green", 1, "02:00:00:00:0a:02"), controller.NotFound},
		{"VF without representor", att("new", "node-a", "blue", 7, "02:00:00:00:0a:02"), controller.NotFound},
		{"same VF under another id", att("new", "node-a", "blue", 0, "02:00:00:00:0a:02"), controller.AlreadyExists},
		{"same VF under another id, other network", att("new", "node-a", "red", 0, "02:00:00:00:0a:02"), controller.AlreadyExists},
		{"same MAC in the same network", att("new", "node-a", "blue", 1, "02:00:00:00:0A:01"), controller.FailedPrecondition},
	} {
		t.Run(c.name, func(t *testing.T) {
			list, dp, routes, file := e.ctl.List(""), e.dp.Last(), e.spk.Routes(), e.stateFile(t)
			got, err := e.ctl.Attach(context.Background(), c.req)
			if err == nil {
				t.Fatalf("Attach succeeded: %+v", got)
			}
			if k := controller.KindOf(err); k != c.want {
				t.Errorf("KindOf(%v) = %d, want %d", err, k, c.want)
			}
			if !reflect.DeepEqual(got, store.Attachment{}) {
				t.Errorf("error returned with an attachment: %+v", got)
			}
			e.settle(t) // let any (wrongly) triggered reconcile finish
			if after := e.ctl.List(""); !reflect.DeepEqual(after, list) {
				t.Errorf("store changed:\n before %+v\n after  %+v", list, after)
			}
			if after := e.dp.Last(); !reflect.DeepEqual(after, dp) {
				t.Errorf("dataplane changed:\n before %+v\n after  %+v", dp, after)
			}
			if after := e.spk.Routes(); !reflect.DeepEqual(after, routes) {
				t.Errorf("routes changed:\n before %v\n after  %v", routes, after)
			}
			if after := e.stateFile(t); !os.SameFile(file, after) {
				t.Errorf("state file rewritten")
			}
		})
	}

	// The same MAC in a different network is not a conflict.
	if _, err := e.ctl.Attach(context.Background(), att("red-one", "node-a", "red", 1, "02:00:00:00:0a:01")); err != nil {
		t.Errorf("same MAC in another network: %v", err)
	}
}

func TestDetach(t *testing.T) {
	e := newEnv(t)
	if err := e.ctl.Detach(context.Background(), "never-attached"); err != nil {
		t.Errorf("Detach of unknown id: %v", err)
	}
	if err := e.ctl.Detach(context.Background(), ""); controller.KindOf(err) != controller.InvalidArgument {
		t.Errorf("Detach(\"\") = %v, want InvalidArgument", err)
	}
	e.attach(t, att("a1", "node-a", "blue", 0, "02:00:00:00:0a:01", "100.64.1.1"))
	e.attach(t, att("a2", "node-a", "blue", 1, "02:00:00:00:0a:02"))
	if err := e.ctl.Detach(context.Background(), "a1"); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	if l := e.ctl.List(""); len(l) != 1 || l[0].ID != "a2" {
		t.Errorf("List after Detach = %+v", l)
	}
	if ports := network(e.dp.Last(), "blue").Ports; len(ports) != 1 || ports[0].Owner != "a2" {
		t.Errorf("dataplane ports after Detach = %+v", ports)
	}
	for _, r := range type2(e.spk.Routes()) {
		if r.MAC == "02:00:00:00:0a:01" {
			t.Errorf("route of the detached attachment still originated: %v", r)
		}
	}
	if n := len(type2(e.spk.Routes())); n != 1 {
		t.Errorf("%d type-2 routes, want a2's one", n)
	}
	if err := e.ctl.Detach(context.Background(), "a1"); err != nil {
		t.Errorf("second Detach: %v", err)
	}
	if err := e.ctl.Detach(context.Background(), "a2"); err != nil {
		t.Fatal(err)
	}
	if ports := network(e.dp.Last(), "blue").Ports; len(ports) != 0 {
		t.Errorf("ports left: %+v", ports)
	}
	if rs := type2(e.spk.Routes()); len(rs) != 0 {
		t.Errorf("type-2 routes left: %v", rs)
	}
}

func ids(as []store.Attachment) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}

func TestSync(t *testing.T) {
	e := newEnv(t)
	a1 := att("a1", "node-a", "blue", 0, "02:00:00:00:0a:01")
	a2 := att("a2", "node-a", "blue", 1, "02:00:00:00:0a:02")
	b1 := store.Attachment{ID: "b1", Node: "node-b", Network: "red", VF: sriov.VF{PFIndex: 1, VFIndex: 0}, MAC: "02:00:00:00:0b:01"}
	e.attach(t, a1)
	e.attach(t, a2)
	b1stored := e.attach(t, b1)

	a3 := att("a3", "node-a", "red", 2, "02:00:00:00:0a:03", "100.64.2.3")
	list, removed, err := e.ctl.Sync(context.Background(), "node-a", 5, []store.Attachment{a1, a3})
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if !slices.Equal(ids(list), []string{"a1", "a3"}) {
		t.Errorf("Sync returned %v, want [a1 a3]", ids(list))
	}
	if !slices.Equal(removed, []string{"a2"}) {
		t.Errorf("removed %v, want [a2]", removed)
	}
	for _, a := range list {
		if a.Status.Phase != store.Ready {
			t.Errorf("%s: %+v after Sync", a.ID, a.Status)
		}
	}
	if got := ids(e.ctl.List("")); !slices.Equal(got, []string{"a1", "a3", "b1"}) {
		t.Errorf("store = %v", got)
	}
	if got, ok := find(e.ctl.List(""), "b1"); !ok || !reflect.DeepEqual(got, b1stored) {
		t.Errorf("other node's attachment changed: %+v, want %+v", got, b1stored)
	}
	if got, ok := find(e.ctl.List(""), "a1"); !ok || got.Generation != 1 {
		t.Errorf("unchanged a1 got a new generation: %+v", got)
	}
	if ports := network(e.dp.Last(), "blue").Ports; len(ports) != 1 || ports[0].Owner != "a1" {
		t.Errorf("blue ports after Sync = %+v", ports)
	}
	if ports := network(e.dp.Last(), "red").Ports; len(ports) != 2 {
		t.Errorf("red ports after Sync = %+v, want a3 and b1", ports)
	}

	snapshot := func() (any, any, any) { return e.ctl.List(""), e.dp.Last(), e.spk.Routes() }
	l0, d0, r0 := snapshot()
	f0 := e.stateFile(t)
	for _, c := range []struct {
		name  string
		node  string
		epoch uint64
		set   []store.Attachment
		want  controller.Kind
	}{
		{"older epoch", "node-a", 4, []store.Attachment{a1}, controller.FailedPrecondition},
		{"invalid entry", "node-a", 6, []store.Attachment{a1, att("bad", "node-a", "blue", 3, "zz")}, controller.InvalidArgument},
		{"entry without representor", "node-a", 6, []store.Attachment{att("x", "node-a", "blue", 7, "02:00:00:00:0a:07")}, controller.NotFound},
		{"entry of another node", "node-a", 6, []store.Attachment{a1, b1}, controller.InvalidArgument},
		{"duplicate id", "node-a", 6, []store.Attachment{a1, a1}, controller.InvalidArgument},
		{"conflict within the set", "node-a", 6, []store.Attachment{a1, att("a4", "node-a", "blue", 3, "02:00:00:00:0a:01")}, controller.FailedPrecondition},
		{"conflict with another node", "node-a", 6, []store.Attachment{att("a5", "node-a", "blue", 0, "02:00:00:00:0a:05"), withPF(att("a6", "node-a", "red", 0, "02:00:00:00:0a:06"), 1)}, controller.AlreadyExists},
		{"empty node", "", 6, nil, controller.InvalidArgument},
	} {
		t.Run(c.name, func(t *testing.T) {
			list, removed, err := e.ctl.Sync(context.Background(), c.node, c.epoch, c.set)
			if err == nil {
				t.Fatalf("Sync succeeded: %v removed %v", ids(list), removed)
			}
			if k := controller.KindOf(err); k != c.want {
				t.Errorf("KindOf(%v) = %d, want %d", err, k, c.want)
			}
			e.settle(t)
			l, d, r := snapshot()
			if !reflect.DeepEqual(l, l0) || !reflect.DeepEqual(d, d0) || !reflect.DeepEqual(r, r0) {
				t.Errorf("state changed by a rejected Sync")
			}
			if !os.SameFile(f0, e.stateFile(t)) {
				t.Errorf("state file rewritten by a rejected Sync (epoch may have been recorded)")
			}
		})
	}

	// The epoch of the rejected syncs was not recorded: 5 is still accepted.
	if _, _, err := e.ctl.Sync(context.Background(), "node-a", 5, []store.Attachment{a1, a3}); err != nil {
		t.Errorf("same epoch again: %v", err)
	}
	// An empty set at a newer epoch removes all of the node's attachments.
	list, removed, err = e.ctl.Sync(context.Background(), "node-a", 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 || !slices.Equal(removed, []string{"a1", "a3"}) {
		t.Errorf("empty Sync: list %v removed %v", ids(list), removed)
	}
	if got := ids(e.ctl.List("")); !slices.Equal(got, []string{"b1"}) {
		t.Errorf("store after empty Sync = %v", got)
	}
}

func withPF(a store.Attachment, pf uint32) store.Attachment {
	a.VF.PFIndex = pf
	return a
}

func find(as []store.Attachment, id string) (store.Attachment, bool) {
	for _, a := range as {
		if a.ID == id {
			return a, true
		}
	}
	return store.Attachment{}, false
}

func TestDataplaneFailureRetries(t *testing.T) {
	e := newEnv(t)
	e.settle(t)
	e.dp.SetFail(errApply)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req := att("a1", "node-a", "blue", 0, "02:00:00:00:0a:01")
	_, err := e.ctl.Attach(ctx, req)
	if k := controller.KindOf(err); k != controller.Unavailable {
		t.Fatalf("Attach with a failing dataplane: %v (kind %d), want Unavailable", err, k)
	}
	if !strings.Contains(err.Error(), errApply.Error()) {
		t.Errorf("error %q does not carry the dataplane's reason", err)
	}
	a, ok := find(e.ctl.List(""), "a1")
	if !ok {
		t.Fatalf("attachment not stored while the dataplane is down")
	}
	if a.Status.Phase != store.Pending || !strings.Contains(a.Status.Reason, errApply.Error()) {
		t.Errorf("status while failing = %+v, want Pending with the reason", a.Status)
	}
	if ports := network(e.dp.Last(), "blue").Ports; len(ports) != 0 {
		t.Errorf("failed Apply recorded ports: %+v", ports)
	}

	// Recovery: the reconcile loop retries on its own (backoff <= 50ms).
	e.dp.SetFail(nil)
	waitFor(t, "attachment to turn Ready after recovery", func() bool {
		a, _ := find(e.ctl.List(""), "a1")
		return a.Status.Phase == store.Ready && a.Status.ObservedGeneration == 1
	})
	if ports := network(e.dp.Last(), "blue").Ports; len(ports) != 1 || ports[0].Owner != "a1" {
		t.Errorf("dataplane after recovery: %+v", ports)
	}
	if _, lastErr := e.ctl.Last(); lastErr != nil {
		t.Errorf("Last error after recovery: %v", lastErr)
	}
	// A retried Attach converges immediately.
	got := e.attach(t, req)
	if got.Status.Phase != store.Ready || got.Generation != 1 {
		t.Errorf("retried Attach: %+v", got)
	}
}

func TestWatch(t *testing.T) {
	e := newEnv(t)
	ch, stop := e.ctl.Subscribe("node-a")
	defer stop()

	e.attach(t, store.Attachment{ID: "b1", Node: "node-b", Network: "red", VF: sriov.VF{PFIndex: 1, VFIndex: 0}, MAC: "02:00:00:00:0b:01"})
	e.attach(t, att("a1", "node-a", "blue", 0, "02:00:00:00:0a:01"))

	timeout := time.After(5 * time.Second)
	var sawReady bool
	for !sawReady {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("subscription closed")
			}
			if ev.Attachment.Node != "node-a" {
				t.Errorf("event for node %q on a node-a subscription: %+v", ev.Attachment.Node, ev)
			}
			if ev.Type == controller.Upsert && ev.Attachment.ID == "a1" && ev.Attachment.Status.Phase == store.Ready {
				sawReady = true
			}
		case <-timeout:
			t.Fatal("no Upsert event with phase Ready")
		}
	}

	if err := e.ctl.Detach(context.Background(), "a1"); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-ch:
		if ev.Type != controller.Delete || ev.Attachment.ID != "a1" {
			t.Errorf("after Detach got %+v, want Delete of a1", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no Delete event")
	}

	stop()
	if _, ok := <-ch; ok {
		t.Errorf("channel still open after unsubscribe")
	}
}

func TestLearnedRoutesReachDataplane(t *testing.T) {
	e := newEnv(t)
	e.attach(t, att("a1", "node-a", "blue", 0, "02:00:00:00:0a:01"))
	rt := []string{"65001:10100"}
	e.spk.SetLearned([]evpn.Route{
		{Type: evpn.InclusiveMulticast, RD: "198.18.0.12:10100", VTEP: netip.MustParseAddr("198.18.0.12"), VNI: 10100, RTs: rt, Peer: "198.18.0.1"},
		{Type: evpn.MACIP, RD: "198.18.0.12:10100", MAC: "02:00:00:00:0b:01", VTEP: netip.MustParseAddr("198.18.0.12"), VNI: 10100, RTs: rt, Peer: "198.18.0.1"},
	})
	waitFor(t, "remote MAC in the dataplane", func() bool {
		blue := network(e.dp.Last(), "blue")
		return len(blue.Remote) == 1 && len(blue.Flood) == 1
	})
	blue := network(e.dp.Last(), "blue")
	if blue.Remote[0] != (offload.RemoteMAC{MAC: "02:00:00:00:0b:01", VTEP: netip.MustParseAddr("198.18.0.12")}) {
		t.Errorf("remote = %+v", blue.Remote)
	}
	if blue.Flood[0] != netip.MustParseAddr("198.18.0.12") {
		t.Errorf("flood = %v", blue.Flood)
	}
	if red := network(e.dp.Last(), "red"); len(red.Remote) != 0 || len(red.Flood) != 0 {
		t.Errorf("red imported blue's routes: %+v", red)
	}
}

// An attachment id is owned by its node: neither Attach nor Sync from
// another node may take it over.
func TestAttachmentIDBelongsToItsNode(t *testing.T) {
	e := newEnv(t)
	b1 := store.Attachment{ID: "b1", Node: "node-b", Network: "red", VF: sriov.VF{PFIndex: 1, VFIndex: 0}, MAC: "02:00:00:00:0b:01"}
	stored := e.attach(t, b1)
	steal := att("b1", "node-a", "blue", 3, "02:00:00:00:0a:09")
	if _, err := e.ctl.Attach(context.Background(), steal); controller.KindOf(err) != controller.AlreadyExists {
		t.Fatalf("Attach of node-b's id from node-a: %v, want AlreadyExists", err)
	}
	if _, _, err := e.ctl.Sync(context.Background(), "node-a", 1, []store.Attachment{steal}); controller.KindOf(err) != controller.AlreadyExists {
		t.Fatalf("Sync of node-b's id from node-a: %v, want AlreadyExists", err)
	}
	if got, ok := find(e.ctl.List(""), "b1"); !ok || !reflect.DeepEqual(got, stored) {
		t.Fatalf("node-b's attachment changed: %+v, want %+v", got, stored)
	}
}

// Reload applies networks as a diff and refuses fields that need a restart.
func TestReload(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.attach(t, att("r1", "node-a", "red", 0, "02:00:00:00:0a:01"))
	e.attach(t, att("b1", "node-a", "blue", 1, "02:00:00:00:0a:02"))
	parse := func(y string) *config.Config {
		t.Helper()
		c, err := config.Parse([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	withGreen := strings.Replace(testConfig, "  - name: red\n    vni: 10200\n", "  - name: red\n    vni: 10200\n  - name: green\n    vni: 10300\n", 1)
	if err := e.ctl.Reload(ctx, parse(withGreen)); err != nil {
		t.Fatalf("adding a network: %v", err)
	}
	waitFor(t, "green in the dataplane, blue and red untouched", func() bool {
		st := e.dp.Last()
		return len(st.Networks) == 3 && len(network(st, "blue").Ports) == 1 && len(network(st, "red").Ports) == 1
	})

	noRed := strings.Replace(withGreen, "  - name: red\n    vni: 10200\n", "", 1)
	if err := e.ctl.Reload(ctx, parse(noRed)); err != nil {
		t.Fatalf("removing a network: %v", err)
	}
	waitFor(t, "red's flows and routes gone", func() bool {
		for _, n := range e.dp.Last().Networks {
			if n.Name == "red" {
				return false
			}
		}
		for _, r := range e.spk.Routes() {
			if r.VNI == 10200 {
				return false
			}
		}
		return true
	})
	if a, _ := find(e.ctl.List(""), "r1"); a.Status.Phase != store.Error || !strings.Contains(a.Status.Reason, "not configured") {
		t.Errorf("attachment of the removed network: %+v, want Error naming the missing network", a.Status)
	}
	if a, _ := find(e.ctl.List(""), "b1"); a.Status.Phase != store.Ready {
		t.Errorf("blue's attachment disturbed by the reload: %+v", a.Status)
	}

	before := e.ctl.Config()
	bad := strings.Replace(noRed, "asn: 65001", "asn: 65002", 1)
	err := e.ctl.Reload(ctx, parse(bad))
	if err == nil || !strings.Contains(err.Error(), "bgp.asn: changing it needs a restart") {
		t.Fatalf("changing the ASN on reload: %v, want a rejection naming bgp.asn", err)
	}
	if e.ctl.Config() != before {
		t.Fatal("a rejected reload replaced the running config")
	}
}

// RFC 7432 section 15.1: a MAC that keeps moving is frozen where it is, and
// thaws after the freeze time.
func TestDuplicateMACIsFrozen(t *testing.T) {
	e := newEnvWith(t, testConfig+"macMobility: {duplicateMoves: 3, duplicateSeconds: 60, freezeSeconds: 2}\n")
	const mac = "02:00:00:00:0d:01"
	a, b := netip.MustParseAddr("198.18.0.12"), netip.MustParseAddr("198.18.0.13")
	at := func(vtep netip.Addr, seq uint32) {
		e.spk.SetLearned([]evpn.Route{{Type: evpn.MACIP, RD: vtep.String() + ":1", MAC: mac, VTEP: vtep, VNI: 10100, Seq: seq, RTs: []string{"65001:10100"}}})
	}
	where := func() netip.Addr {
		for _, r := range network(e.dp.Last(), "blue").Remote {
			if r.MAC == mac {
				return r.VTEP
			}
		}
		return netip.Addr{}
	}
	follow := func(vtep netip.Addr, seq uint32) {
		t.Helper()
		at(vtep, seq)
		waitFor(t, fmt.Sprintf("the dataplane to follow %s to %s", mac, vtep), func() bool { return where() == vtep })
	}
	follow(a, 0)
	follow(b, 1) // move 1
	follow(a, 2) // move 2
	follow(b, 3) // move 3: frozen at b
	waitFor(t, "the MAC to be frozen", func() bool { return len(e.ctl.FrozenMACs()) == 1 })
	for k, f := range e.ctl.FrozenMACs() {
		if k.MAC != mac || f.VTEP != b || !strings.Contains(f.Reason, "moved 3 times") {
			t.Fatalf("frozen %v: %+v", k, f)
		}
	}
	// A fourth move (higher sequence at a) is not followed while frozen...
	at(a, 4)
	time.Sleep(300 * time.Millisecond)
	if got := where(); got != b {
		t.Fatalf("a frozen MAC moved to %s", got)
	}
	// ...and is followed once the freeze expires.
	waitFor(t, "the freeze to expire and the MAC to follow the winner", func() bool { return where() == a && len(e.ctl.FrozenMACs()) == 0 })
}
