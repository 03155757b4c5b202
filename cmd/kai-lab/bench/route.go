package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kai-dpu/kai/cmd/kai-lab/lab"
	"github.com/kai-dpu/kai/dpu/evpn"
)

// monitor timestamps flow additions and changes in table 20 as OVS reports
// them (ovs-ofctl monitor), so a route's arrival in the dataplane is seen
// within a millisecond instead of at the next poll.
type monitor struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	seen map[string][]time.Time // "mac vtep" -> when a flow with it appeared
}

func (t *topo) startMonitor() (*monitor, error) {
	m := &monitor{seen: map[string][]time.Time{}}
	m.cmd = exec.Command("ovs-ofctl", "monitor", "unix:"+filepath.Join(t.ovs.Dir, bridge+".mgmt"), "watch:!initial,table=20")
	// Its control socket goes to OVS_RUNDIR; the default does not exist here.
	m.cmd.Env = append(os.Environ(), "OVS_RUNDIR="+t.ovs.Dir)
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	// ovs-ofctl monitor prints the events on stderr when it is not a tty.
	m.cmd.Stderr = m.cmd.Stdout
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("ovs-ofctl monitor: %w", err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, "event=ADDED") && !strings.Contains(line, "event=MODIFIED") {
				continue
			}
			at := time.Now()
			if mac, vtep := flowTarget(line); mac != "" {
				m.mu.Lock()
				m.seen[mac+" "+vtep] = append(m.seen[mac+" "+vtep], at)
				m.mu.Unlock()
			}
		}
	}()
	// Give the monitor time to subscribe before the first change.
	time.Sleep(300 * time.Millisecond)
	return m, nil
}

func (m *monitor) stop() {
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
}

// first returns when a flow for mac towards vtep appeared at or after t.
func (m *monitor) first(mac, vtep string, t time.Time) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, at := range m.seen[mac+" "+vtep] {
		if !at.Before(t) {
			return at, true
		}
	}
	return time.Time{}, false
}

func (m *monitor) wait(ctx context.Context, mac, vtep string, t time.Time, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		if at, ok := m.first(mac, vtep, t); ok {
			return at, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return time.Time{}, fmt.Errorf("no flow for %s via %s within %s", mac, vtep, timeout)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// routeToFlow advertises one new route at a time and times its flow.
func (t *topo) routeToFlow(ctx context.Context, inj *injector, rs routeSet, samples int) (*Latency, error) {
	m, err := t.startMonitor()
	if err != nil {
		return nil, err
	}
	defer m.stop()
	var lat []time.Duration
	for i := range samples {
		r := macRoute(0x00f00000+i, remoteVTEPs)
		t0 := time.Now()
		if err := inj.sp.Advertise(ctx, []evpn.Route{r}); err != nil {
			return nil, err
		}
		at, err := m.wait(ctx, r.MAC, r.VTEP.String(), t0, 10*time.Second)
		if err != nil {
			return nil, err
		}
		lat = append(lat, at.Sub(t0))
		time.Sleep(20 * time.Millisecond)
	}
	// Back to the route set (withdraws the samples).
	if _, err := inj.load(ctx, rs); err != nil {
		return nil, err
	}
	anchor, err := t.singleFlowAnchor()
	if err != nil {
		return nil, err
	}
	return newLatency(lat, anchor, "one-flow ovs-ofctl bundle"), nil
}

// singleFlowAnchor is the median time of adding one flow with one
// ovs-ofctl bundle: the least any route → flow path through ovs-ofctl costs.
func (t *topo) singleFlowAnchor() (time.Duration, error) {
	add := filepath.Join(t.dir, "one-add.bundle")
	del := filepath.Join(t.dir, "one-del.bundle")
	// Not a Kai cookie, and a MAC nobody uses: invisible to kai-dpu.
	const match = "table=20,priority=1,dl_dst=02:ff:ff:ff:ff:ff"
	if err := os.WriteFile(add, []byte("flow add cookie=0x1,"+match+",actions=drop\n"), 0o644); err != nil {
		return 0, err
	}
	if err := os.WriteFile(del, []byte("flow delete_strict "+match+"\n"), 0o644); err != nil {
		return 0, err
	}
	var ds []time.Duration
	for range 20 {
		start := time.Now()
		if _, err := t.ofctl("bundle", add); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(start))
		if _, err := t.ofctl("bundle", del); err != nil {
			return 0, err
		}
	}
	slices.Sort(ds)
	return ds[len(ds)/2], nil
}

// churn replaces routes in place (same key, next hop moved to another
// VTEP) at rate per second for d and measures how long each takes to reach
// its flow, and kai-dpu's CPU.
func (t *topo) churn(ctx context.Context, inj *injector, rs routeSet, rate int, d time.Duration) (*Churn, error) {
	m, err := t.startMonitor()
	if err != nil {
		return nil, err
	}
	defer m.stop()
	var macs []evpn.Route
	for _, r := range rs.routes {
		if r.MAC != "" && r.MAC != rpodMAC {
			macs = append(macs, r)
		}
	}
	type update struct {
		mac, vtep string
		at        time.Time
	}
	var sent []update
	const tick = 10 * time.Millisecond
	per := rate * int(tick) / int(time.Second)
	cpu0, err := cpuTime(t.kai.Pid())
	if err != nil {
		return nil, err
	}
	self0, _ := cpuTime(os.Getpid())
	start := time.Now()
	next := start
	for n := 0; time.Since(start) < d && ctx.Err() == nil; {
		batch := make([]evpn.Route, 0, per)
		for range per {
			r := macs[n%len(macs)]
			gen := n/len(macs) + 1
			r.VTEP = vtepAddr((n%len(macs) + gen) % remoteVTEPs)
			batch = append(batch, r)
			n++
		}
		at := time.Now()
		if err := inj.sp.Advertise(ctx, batch); err != nil {
			return nil, err
		}
		for _, r := range batch {
			sent = append(sent, update{r.MAC, r.VTEP.String(), at})
		}
		next = next.Add(tick)
		time.Sleep(time.Until(next))
	}
	elapsed := time.Since(start)
	// Let the last updates land before reading CPU and lags.
	time.Sleep(2 * time.Second)
	cpu1, err := cpuTime(t.kai.Pid())
	if err != nil {
		return nil, err
	}
	self1, _ := cpuTime(os.Getpid())
	var lags []time.Duration
	for _, u := range sent {
		if at, ok := m.first(u.mac, u.vtep, u.at); ok {
			lags = append(lags, at.Sub(u.at))
		}
	}
	c := &Churn{RatePerS: rate, Seconds: round(elapsed.Seconds(), 1), Routes: len(rs.routes), Updates: len(sent), Observed: len(lags),
		LagP50MS: percentile(lags, 50), LagP99MS: percentile(lags, 99),
		CPUPercent:       round1(100 * float64(cpu1-cpu0) / float64(elapsed+2*time.Second)),
		AnchorCPUPercent: round1(100 * float64(self1-self0) / float64(elapsed+2*time.Second))}
	if _, err := inj.load(ctx, rs); err != nil {
		return nil, err
	}
	return c, nil
}

// restart restarts kai-dpu while a ping runs between the local pod and the
// remote pod, and measures until kai-dpu is fully reconciled again.
func (t *topo) restart(ctx context.Context, inj *injector, rs routeSet) (*Restart, error) {
	if _, err := t.nl.In(t.kpod, "ping", "-c", "3", "-i", "0.2", "-W", "1", rpodIP); err != nil {
		return nil, fmt.Errorf("no running flow to measure loss on: %w", err)
	}
	ping, err := lab.StartPinger(t.kpod, rpodIP, 10*time.Millisecond)
	if err != nil {
		return nil, err
	}
	pingStart := time.Now()
	stopped := false
	defer func() {
		if !stopped {
			_, _, _ = ping.Stop()
		}
	}()
	time.Sleep(time.Second)
	t0 := time.Now()
	t.kai.Stop(10 * time.Second)
	if err := t.startKai(ctx, false); err != nil {
		return nil, err
	}
	up, err := inj.waitEstablished(ctx, dpuAddr, 60*time.Second)
	if err != nil {
		return nil, err
	}
	for {
		if learned, ready := t.scrape(); learned == len(rs.routes) && ready {
			break
		}
		if time.Since(t0) > 120*time.Second || ctx.Err() != nil {
			return nil, fmt.Errorf("kai-dpu did not relearn %d routes after its restart", len(rs.routes))
		}
		// A scrape sorts every learned route: poll gently.
		time.Sleep(250 * time.Millisecond)
	}
	if _, err := t.waitFlows(ctx, t0, rs.macs+1, 60*time.Second); err != nil {
		return nil, err
	}
	took := time.Since(t0)
	time.Sleep(time.Second)
	stopped = true
	sent, missing, err := ping.Stop()
	if err != nil {
		return nil, err
	}
	r := &Restart{Routes: len(rs.routes), ReconcileS: round3(took), EstablishedS: round3(up.Sub(t0)), LostPackets: len(missing), SentPackets: sent}
	for _, seq := range missing {
		// Requests go out every 10 ms from the start of ping.
		r.LostAtS = append(r.LostAtS, round3(pingStart.Add(time.Duration(seq-1)*10*time.Millisecond).Sub(t0)))
	}
	return r, nil
}

// scrape reads kai-dpu's learned route count and readiness from its
// metrics endpoint.
func (t *topo) scrape() (learned int, ready bool) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + metricsAt + "/readyz")
	if err != nil {
		return -1, false
	}
	_ = resp.Body.Close()
	ready = resp.StatusCode == http.StatusOK
	resp, err = c.Get("http://" + metricsAt + "/metrics")
	if err != nil {
		return -1, ready
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, `kai_dpu_evpn_routes{origin="learned"} `); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), ready
		}
	}
	return -1, ready
}
