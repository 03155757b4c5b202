package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/cmd/kai-lab/lab"
	"github.com/kai-dpu/kai/cmd/kai-lab/netlab"
	"github.com/kai-dpu/kai/offload"
	"github.com/kai-dpu/kai/offload/ovs"
)

const remoteVTEPs = 10

// runBGPScenarios: convergence (with memory) at 10k, then single route and
// churn while kai-dpu holds 10k routes, then (full) convergence at 100k
// and the restart holding the largest set.
func runBGPScenarios(ctx context.Context, nl *netlab.Lab, o Options, res *Results, log *slog.Logger) error {
	t, err := buildTopo(nl, o.BinDir, o.StateDir)
	if err != nil {
		return fmt.Errorf("topology: %w", err)
	}
	inj, err := newInjector(ctx, log.With("component", "injector"))
	if err != nil {
		return err
	}
	defer inj.close()
	sizes := []int{10000}
	if !o.Quick {
		sizes = append(sizes, 100000)
	}
	var last routeSet
	var lastCold float64
	for round, n := range sizes {
		rs := newRouteSet(n, remoteVTEPs)
		last = rs
		heap, err := inj.load(ctx, rs)
		if err != nil {
			return err
		}
		res.RSSAnchorBytesPerRoute = round1(heap)
		c := &Convergence{Routes: n, RemoteVTEP: remoteVTEPs}
		if o.has(ScenarioConvergence) {
			if c.OVSFloorS, err = t.ovsFloor(rs); err != nil {
				return fmt.Errorf("ovs floor: %w", err)
			}
			log.Info("ovs floor", "routes", n, "seconds", c.OVSFloorS)
			timeout := 60 * time.Second
			if n > 10000 {
				timeout = 150 * time.Second
			}
			if c.FRRS, c.FRRTimedOut, err = t.frrConverge(ctx, inj, rs, round, timeout); err != nil {
				return fmt.Errorf("frr: %w", err)
			}
			log.Info("frr converged", "routes", n, "seconds", c.FRRS, "timedOut", c.FRRTimedOut)
		}
		rss0, rssN, kaiS, rxS, err := t.kaiConverge(ctx, inj, rs)
		if err != nil {
			return fmt.Errorf("kai convergence at %d routes: %w", n, err)
		}
		lastCold = kaiS
		log.Info("kai converged", "routes", n, "seconds", kaiS, "rss", rssN)
		if round == 0 {
			res.RSS = append(res.RSS, RSS{Routes: 0, Bytes: rss0})
		}
		res.RSS = append(res.RSS, RSS{Routes: n, Bytes: rssN})
		res.RSSBytesPerRoute = round1(float64(rssN-rss0) / float64(n))
		if o.has(ScenarioConvergence) {
			c.KaiS, c.KaiBGPReceivedS = kaiS, rxS
			c.KaiPerFRR, c.KaiPerFloor = ratio(c.KaiS, c.FRRS), ratio(c.KaiS, c.OVSFloorS)
			if n == 10000 {
				res.Convergence10k = c
			} else {
				res.Convergence100k = c
			}
		}
		if round == 0 {
			if o.has(ScenarioRoute) {
				samples := 200
				if o.Quick {
					samples = 50
				}
				if res.RouteToFlowMS, err = t.routeToFlow(ctx, inj, rs, samples); err != nil {
					return fmt.Errorf("route to flow: %w", err)
				}
				log.Info("route to flow", "p50", res.RouteToFlowMS.P50, "p99", res.RouteToFlowMS.P99)
			}
			if o.has(ScenarioChurn) {
				d := 60 * time.Second
				if o.Quick {
					d = 10 * time.Second
				}
				if res.Churn, err = t.churn(ctx, inj, rs, 1000, d); err != nil {
					return fmt.Errorf("churn: %w", err)
				}
				log.Info("churn", "lagP99", res.Churn.LagP99MS, "cpu", res.Churn.CPUPercent)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if o.has(ScenarioRestart) {
		if res.Restart, err = t.restart(ctx, inj, last); err != nil {
			return fmt.Errorf("restart: %w", err)
		}
		res.Restart.AnchorS = lastCold
		log.Info("restart", "reconcile", res.Restart.ReconcileS, "lost", res.Restart.LostPackets)
	}
	return nil
}

func round1(v float64) float64 { return round(v, 1) }

// ovsFloor adds the flows and groups Kai renders for rs to an empty bridge
// of the same ovs-vswitchd in one bundle: the cost of the flows themselves.
func (t *topo) ovsFloor(rs routeSet) (float64, error) {
	n := offload.Network{Name: "blue", VNI: vni}
	for _, r := range rs.routes {
		if r.MAC != "" {
			n.Remote = append(n.Remote, offload.RemoteMAC{MAC: r.MAC, VTEP: r.VTEP})
		} else {
			n.Flood = append(n.Flood, r.VTEP)
		}
	}
	prog, err := ovs.Render(offload.State{VTEP: netip.MustParseAddr(dpuAddr), VXLANPort: 4789, Networks: []offload.Network{n}},
		ovs.Ports{"vxlan0": 1}, "vxlan0")
	if err != nil {
		return 0, err
	}
	file := filepath.Join(t.dir, "floor.bundle")
	if err := os.WriteFile(file, []byte(strings.Join(ovs.Diff(prog, nil, nil), "\n")+"\n"), 0o644); err != nil {
		return 0, err
	}
	const br = "br-floor"
	if _, err := t.ovs.Vsctl("add-br", br, "--", "set", "bridge", br, "datapath_type=netdev", "fail_mode=secure"); err != nil {
		return 0, err
	}
	defer func() { _, _ = t.ovs.Vsctl("--if-exists", "del-br", br) }()
	mgmt := filepath.Join(t.ovs.Dir, br+".mgmt")
	if err := netlab.WaitFile(mgmt, 10*time.Second); err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := t.ovs.Ofctl("bundle", br, file); err != nil {
		return 0, err
	}
	took := time.Since(start)
	out, err := t.ovs.Ofctl("dump-aggregate", br, "table=20,reg0=0")
	if err != nil {
		return 0, err
	}
	if n, err := flowCount(out); err != nil || n != rs.macs+1 {
		return 0, fmt.Errorf("floor bridge holds the wrong number of flows (want %d): %s", rs.macs+1, out)
	}
	return round(took.Seconds(), 3), nil
}

// frrConverge measures FRR from session up until its kernel FDB holds
// every MAC.
func (t *topo) frrConverge(ctx context.Context, inj *injector, rs routeSet, round int, timeout time.Duration) (float64, bool, error) {
	f, err := t.startFRR(round)
	if f != nil {
		defer f.stop()
	}
	if err != nil {
		return 0, false, err
	}
	defer func() { _ = inj.peer(ctx, "") }()
	if err := inj.peer(ctx, frrAddr); err != nil {
		return 0, false, err
	}
	t0, err := inj.waitEstablished(ctx, frrAddr, 60*time.Second)
	if err != nil {
		return 0, false, err
	}
	interval := 100 * time.Millisecond
	if rs.macs > 20000 {
		interval = 500 * time.Millisecond
	}
	for {
		n, err := f.fdbMACs(ctx)
		if err != nil {
			return 0, false, err
		}
		if n >= rs.macs {
			return round3(time.Since(t0)), false, nil
		}
		if time.Since(t0) > timeout {
			return round3(time.Since(t0)), true, nil
		}
		time.Sleep(interval)
	}
}

func round3(d time.Duration) float64 { return round(d.Seconds(), 3) }

// kaiConverge starts kai-dpu from scratch, attaches the local pod, then
// lets the injector peer and measures from Established until every
// remote MAC has its flow. It returns RSS before peering and after.
func (t *topo) kaiConverge(ctx context.Context, inj *injector, rs routeSet) (rss0, rssN int64, kaiS, rxS float64, err error) {
	if err := inj.peer(ctx, ""); err != nil {
		return 0, 0, 0, 0, err
	}
	if t.kai != nil {
		t.kai.Stop(10 * time.Second)
	}
	if err := t.startKai(ctx, true); err != nil {
		return 0, 0, 0, 0, err
	}
	if err := t.attachPod(ctx); err != nil {
		return 0, 0, 0, 0, err
	}
	time.Sleep(time.Second)
	rss0, err = rss(t.kai.Pid())
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if err := inj.peer(ctx, dpuAddr); err != nil {
		return 0, 0, 0, 0, err
	}
	t0, err := inj.waitEstablished(ctx, dpuAddr, 30*time.Second)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	rx := t.watchReceived(ctx, len(rs.routes))
	took, err := t.waitFlows(ctx, t0, rs.macs+1, 300*time.Second)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if err := t.verifyFlows(rs); err != nil {
		return 0, 0, 0, 0, err
	}
	var got time.Time
	select {
	case got = <-rx:
	case <-time.After(10 * time.Second):
	}
	time.Sleep(2 * time.Second)
	rssN, err = rss(t.kai.Pid())
	if !got.IsZero() {
		rxS = round3(got.Sub(t0))
	}
	return rss0, rssN, round3(took), rxS, err
}

// watchReceived reports when kai-dpu's BGP neighbor has delivered n routes
// (GoBGP's received count, through kai-dpu's API).
func (t *topo) watchReceived(ctx context.Context, n int) <-chan time.Time {
	ch := make(chan time.Time, 1)
	go func() {
		conn, err := lab.Dial(&t.srv)
		if err != nil {
			return
		}
		defer func() { _ = conn.Close() }()
		insp := kaiv1.NewInspectClient(conn)
		// GetInfo lists GoBGP's peers through its management loop, which
		// also processes the updates: poll gently at scale.
		interval := 10 * time.Millisecond
		if n > 20000 {
			interval = 100 * time.Millisecond
		}
		for deadline := time.Now().Add(300 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(interval) {
			info, err := insp.GetInfo(ctx, &kaiv1.GetInfoRequest{})
			if err != nil {
				continue
			}
			for _, p := range info.GetPeers() {
				if p.GetReceived() >= uint64(n) {
					ch <- time.Now()
					return
				}
			}
		}
	}()
	return ch
}

// waitFlows polls the remote-MAC flow count until it is want.
func (t *topo) waitFlows(ctx context.Context, t0 time.Time, want int, timeout time.Duration) (time.Duration, error) {
	// Each poll is an ovs-ofctl exec and an aggregate over every flow:
	// at 100k flows, poll less so the measurement does not slow it.
	interval := 5 * time.Millisecond
	if want > 20000 {
		interval = 100 * time.Millisecond
	}
	for {
		n, err := t.remoteFlows()
		if err == nil && n == want {
			return time.Since(t0), nil
		}
		if time.Since(t0) > timeout || ctx.Err() != nil || t.kai.Exited() {
			return 0, fmt.Errorf("%d of %d remote flows after %s (last read: %w):\n%s", n, want, timeout, err, t.kai.Tail(1500))
		}
		time.Sleep(interval)
	}
}

// verifyFlows reads every flow back and checks each MAC points at its VTEP.
func (t *topo) verifyFlows(rs routeSet) error {
	out, err := t.ofctl("dump-flows", "cookie=0x4b00000000000000/0xff00000000000000,table=20,reg0=0")
	if err != nil {
		return err
	}
	got := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		mac, vtep := flowTarget(line)
		if mac != "" {
			got[mac] = vtep
		}
	}
	for _, r := range rs.routes {
		if r.MAC != "" && got[r.MAC] != r.VTEP.String() {
			return fmt.Errorf("flow for %s points at %q, want %s", r.MAC, got[r.MAC], r.VTEP)
		}
	}
	return nil
}

// flowTarget extracts the destination MAC and tunnel destination of a
// dumped or monitored remote-MAC flow.
func flowTarget(line string) (mac, vtep string) {
	_, rest, ok := strings.Cut(line, "dl_dst=")
	if !ok {
		return "", ""
	}
	mac, _, _ = strings.Cut(rest, " ")
	mac, _, _ = strings.Cut(mac, ",")
	if strings.Contains(mac, "/") {
		return "", ""
	}
	if before, _, ok := strings.Cut(rest, "->tun_dst"); ok {
		vtep = before[strings.LastIndexAny(before, ":,")+1:]
	} else if before, _, ok := strings.Cut(rest, "->NXM_NX_TUN_IPV4_DST[]"); ok {
		// OpenFlow 1.0 (ovs-ofctl monitor) prints set_field as a load.
		hex := before[strings.LastIndex(before, ":")+1:]
		if v, err := strconv.ParseUint(hex, 0, 32); err == nil {
			vtep = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
		}
	}
	return mac, vtep
}
