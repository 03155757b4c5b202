package controller_test

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kai-dpu/kai/dpu/controller"
	"github.com/kai-dpu/kai/dpu/evpn"
	"github.com/kai-dpu/kai/dpu/store"
)

// Learned routes are saved off the reconcile path, and always when Run
// ends: a restarted kai-dpu must stand in for the RIB with the routes it
// had when it stopped.
func TestLearnedRoutesSavedWhenRunEnds(t *testing.T) {
	e := newEnvOpts(t, testConfig, controller.Options{SaveRemote: time.Hour})
	ctl, spk, dp, dir, stop := e.ctl, e.spk, e.dp, e.dir, e.stop

	vtep := netip.MustParseAddr("198.18.0.12")
	learned := []evpn.Route{{Type: evpn.MACIP, RD: "198.18.0.12:10100", MAC: "02:00:00:00:0b:01", VTEP: vtep, VNI: 10100, RTs: []string{"65001:10100"}}}
	spk.SetLearned(learned)
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := ctl.WaitApplied(wctx, ctl.Trigger()); err != nil {
		t.Fatal(err)
	}
	if n := len(network(dp.Last(), "blue").Remote); n != 1 {
		t.Fatalf("the learned MAC was not programmed (%d remote MACs)", n)
	}
	if got := reopen(t, dir).Remote(); len(got) != 0 {
		t.Fatalf("learned routes were saved by the reconcile itself (%d); want them saved off its path", len(got))
	}

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := reopen(t, dir).Remote()
	if len(got) != 1 || !got[0].Equal(learned[0]) {
		t.Fatalf("saved learned routes after Run ended: %v, want %v", got, learned)
	}
}

func reopen(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, _, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Until every neighbor's End-of-RIB the learned routes are incomplete (and
// the saved ones may be older than what is programmed after a crash): the
// dataplane is told to keep remote MACs it would otherwise remove.
func TestKeepRemoteUntilSynced(t *testing.T) {
	var passes atomic.Int32
	e := newEnvOpts(t, testConfig, controller.Options{ObservePass: func(time.Duration) { passes.Add(1) }})
	ctl, spk, dp := e.ctl, e.spk, e.dp
	spk.SetSynced(false)
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := ctl.WaitApplied(wctx, ctl.Trigger()); err != nil {
		t.Fatal(err)
	}
	if !dp.Last().KeepRemote {
		t.Fatal("before End-of-RIB the dataplane must keep remote MACs")
	}
	spk.SetSynced(true)
	if err := ctl.WaitApplied(wctx, ctl.Trigger()); err != nil {
		t.Fatal(err)
	}
	if dp.Last().KeepRemote {
		t.Fatal("with complete routes the dataplane must remove stale remote MACs")
	}
	if passes.Load() < 2 {
		t.Fatalf("ObservePass saw %d passes, want at least the 2 waited for", passes.Load())
	}
}
