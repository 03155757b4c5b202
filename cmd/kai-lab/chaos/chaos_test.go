package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kai-dpu/kai/cmd/kai-lab/lab"
	"github.com/kai-dpu/kai/cmd/kai-lab/labtest"
)

// TestSameSeedSameEvents needs no privileges: the event sequence is a
// function of the seed and the lab record only.
func TestSameSeedSameEvents(t *testing.T) {
	st := &lab.State{
		RRs: []string{lab.RRAddr, lab.RR2Addr}, VFs: 4,
		Servers: []lab.Server{{Name: "server1"}, {Name: "server2"}, {Name: "server3"}},
		Legacy:  []lab.Legacy{{Name: "legacy1"}},
		Pods: []lab.Pod{
			{Name: "pod1-1", Server: "server1"}, {Name: "pod2-1", Server: "server2"},
			{Name: "lpod1-1", Server: "legacy1", Legacy: true},
		},
	}
	seq := func(seed uint64) []string {
		r := &runner{lab: &lab.Lab{State: st}, rng: rand.New(rand.NewPCG(seed, seed^0x4b41492d6c6162))}
		var out []string
		for range 300 {
			out = append(out, r.next().String())
		}
		return out
	}
	a, b, c := seq(42), seq(42), seq(43)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("the same seed gave different event sequences")
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Fatal("different seeds gave the same event sequence")
	}
	seen := map[string]bool{}
	r := &runner{lab: &lab.Lab{State: st}, rng: rand.New(rand.NewPCG(42, 1))}
	for range 300 {
		ev := r.next()
		seen[ev.kind] = true
		if p, ok := st.Pod(ev.pod); ev.kind == "move" && (!ok || ev.to == p.Server || ev.to == "") {
			t.Fatalf("move of an unknown pod or to its own server: %s", ev)
		}
		for _, g := range ev.gaps {
			if g < 0 || g > 50*time.Millisecond {
				t.Fatalf("flap gap %s outside 0-50 ms", g)
			}
		}
	}
	for _, k := range kinds {
		if !seen[k.name] {
			t.Errorf("300 events never drew %s", k.name)
		}
	}
}

// TestChaos is the fixed-seed run of `make test`: three Kai servers and one
// legacy FRR VTEP behind two route reflectors, 50 events. Needs root, OVS
// and FRR (hack/install-prereqs.sh).
func TestChaos(t *testing.T) {
	labtest.RequirePrivileged(t, "vtysh", "ss")
	dir := labtest.TraversableTempDir(t, "kai-chaos-")
	bin := filepath.Join(dir, "bin")
	labtest.BuildBinaries(t, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	sum, err := Run(ctx, Options{
		Seed: 20261124, Events: 50, Out: testWriter{t}, Log: slog.New(slog.DiscardHandler),
		Lab: lab.Options{Servers: 3, PodsPerServer: 2, LegacyServers: 1, StateDir: filepath.Join(dir, "lab"), BinDir: bin,
			Prefix: fmt.Sprintf("kch%d", os.Getpid()%100000)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + sum.Format())
	if len(sum.Mismatches) > 0 {
		t.Fatalf("%d mismatches", len(sum.Mismatches))
	}
	for _, k := range []string{"reset-session", "move", "restart-dpu", "restart-vswitchd", "flap-during-install"} {
		if sum.Kinds[k] == 0 {
			t.Errorf("the fixed seed no longer draws %s: pick another", k)
		}
	}
	if sum.ResetPings == 0 {
		t.Error("no pings ran across session resets")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
