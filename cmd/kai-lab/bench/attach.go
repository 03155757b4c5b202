package bench

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/cmd/kai-lab/lab"
)

// runAttach measures CNI ADD → kai-cni → kai-host → kai-dpu → flows and
// type-2 seen at another DPU, on the lab (GoBGP reflector, mutual TLS).
// The lab has at most 15 VFs per host, so samples are attach/detach
// cycles on the same VFs: DEL (untimed, until the peer dropped the route),
// then a timed ADD. The CNI runtime is this process (libcni), as a
// container runtime would be, with the thread moved into the host
// namespace; the plugins are the real binaries.
func runAttach(ctx context.Context, o Options, res *Results, log *slog.Logger) error {
	servers, pods, seq, conc := 2, 10, 40, 20
	if !o.Quick {
		servers, pods, seq, conc = 4, 13, 200, 50
	}
	uctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	l, err := lab.Up(uctx, lab.Options{Servers: servers, PodsPerServer: pods, StateDir: filepath.Join(o.StateDir, labDir),
		BinDir: o.BinDir, Prefix: o.Prefix, Fabric: lab.FabricGoBGP})
	if err != nil {
		return fmt.Errorf("lab up: %w", err)
	}
	defer func() {
		if err := l.Down(); err != nil {
			log.Error("lab down", "error", err)
		}
	}()
	w, err := watchPeers(ctx, l.State)
	if err != nil {
		return err
	}
	defer w.stop()
	var mine []lab.Pod
	for _, p := range l.Pods {
		if p.Server == l.Servers[0].Name {
			mine = append(mine, p)
		}
	}
	var seen, returned []time.Duration
	for i := range seq {
		p := mine[i%len(mine)]
		s, r, err := w.cycle(ctx, l.State, o.BinDir, p)
		if err != nil {
			return fmt.Errorf("sequential attach %d (%s): %w", i, p.Name, err)
		}
		seen, returned = append(seen, s), append(returned, r)
	}
	anchor, err := statusAnchor(ctx, l.State, o.BinDir, mine[0])
	if err != nil {
		return err
	}
	what := "CNI STATUS through the same chain"
	res.AttachMS = newLatency(seen, anchor, what)
	res.AttachMS.ReturnedP50, res.AttachMS.ReturnedP99 = percentile(returned, 50), percentile(returned, 99)
	log.Info("attach sequential", "p50", res.AttachMS.P50, "p99", res.AttachMS.P99)

	batch := l.Pods[:min(conc, len(l.Pods))]
	for _, p := range batch {
		if err := w.detach(ctx, l.State, o.BinDir, p); err != nil {
			return err
		}
	}
	seen, returned = nil, nil
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(batch))
	for _, p := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, r, err := w.attach(ctx, l.State, o.BinDir, p)
			if err != nil {
				errs <- fmt.Errorf("concurrent attach %s: %w", p.Name, err)
				return
			}
			mu.Lock()
			seen, returned = append(seen, s), append(returned, r)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	res.AttachConcurrentMS = newLatency(seen, anchor, what)
	res.AttachConcurrentMS.ReturnedP50, res.AttachConcurrentMS.ReturnedP99 = percentile(returned, 50), percentile(returned, 99)
	log.Info("attach concurrent", "n", len(batch), "p50", res.AttachConcurrentMS.P50, "p99", res.AttachConcurrentMS.P99)
	return nil
}

// cni runs a CNI operation for pod with libcni in this process (RunCNI
// enters the pod's host namespace on a thread of its own).
func cni(ctx context.Context, s *lab.State, binDir string, p lab.Pod, op string) error {
	_, err := s.CNI(ctx, p.Name, op, nil)
	return err
}

func statusAnchor(ctx context.Context, s *lab.State, binDir string, p lab.Pod) (time.Duration, error) {
	var ds []time.Duration
	for range 20 {
		start := time.Now()
		if err := cni(ctx, s, binDir, p, "status"); err != nil {
			return 0, fmt.Errorf("CNI STATUS: %w", err)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds[len(ds)/2], nil
}

// peerWatch polls every DPU's learned routes and remembers when each
// remote MAC appeared and disappeared.
type peerWatch struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
	mu     sync.Mutex
	// by server: mac -> present, and when it last changed
	present map[string]map[string]bool
	changed map[string]map[string]time.Time
}

func watchPeers(ctx context.Context, s *lab.State) (*peerWatch, error) {
	wctx, cancel := context.WithCancel(ctx)
	w := &peerWatch{cancel: cancel, present: map[string]map[string]bool{}, changed: map[string]map[string]time.Time{}}
	for i := range s.Servers {
		srv := &s.Servers[i]
		conn, err := lab.Dial(srv)
		if err != nil {
			cancel()
			return nil, err
		}
		w.present[srv.Name], w.changed[srv.Name] = map[string]bool{}, map[string]time.Time{}
		insp := kaiv1.NewInspectClient(conn)
		w.done.Add(1)
		go func() {
			defer w.done.Done()
			defer func() { _ = conn.Close() }()
			for wctx.Err() == nil {
				rs, err := insp.ListRoutes(wctx, &kaiv1.ListRoutesRequest{})
				now := time.Now()
				if err == nil {
					cur := map[string]bool{}
					for _, r := range rs.GetRoutes() {
						if !r.GetLocal() && r.GetMac() != "" {
							cur[r.GetMac()] = true
						}
					}
					w.mu.Lock()
					old := w.present[srv.Name]
					for m := range cur {
						if !old[m] {
							w.changed[srv.Name][m] = now
						}
					}
					for m := range old {
						if !cur[m] {
							w.changed[srv.Name][m] = now
						}
					}
					w.present[srv.Name] = cur
					w.mu.Unlock()
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	return w, nil
}

func (w *peerWatch) stop() {
	w.cancel()
	w.done.Wait()
}

// waitPeer waits until the peer of p's server shows p's MAC as want,
// changed after t, and returns when.
func (w *peerWatch) waitPeer(ctx context.Context, s *lab.State, p lab.Pod, want bool, t time.Time) (time.Time, error) {
	peer := s.Servers[0].Name
	if p.Server == peer {
		peer = s.Servers[1].Name
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		w.mu.Lock()
		ok, at := w.present[peer][p.MAC] == want, w.changed[peer][p.MAC]
		w.mu.Unlock()
		if ok && (!want || !at.Before(t)) {
			return at, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return time.Time{}, fmt.Errorf("%s never saw %s's MAC %s (want present %t)", peer, p.Name, p.MAC, want)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func (w *peerWatch) detach(ctx context.Context, s *lab.State, binDir string, p lab.Pod) error {
	if err := cni(ctx, s, binDir, p, "del"); err != nil {
		return fmt.Errorf("CNI DEL %s: %w", p.Name, err)
	}
	_, err := w.waitPeer(ctx, s, p, false, time.Time{})
	return err
}

// attach times CNI ADD until it returned and until the peer saw the MAC.
func (w *peerWatch) attach(ctx context.Context, s *lab.State, binDir string, p lab.Pod) (seen, returned time.Duration, err error) {
	t0 := time.Now()
	if err := cni(ctx, s, binDir, p, "add"); err != nil {
		return 0, 0, fmt.Errorf("CNI ADD: %w", err)
	}
	returned = time.Since(t0)
	at, err := w.waitPeer(ctx, s, p, true, t0)
	if err != nil {
		return 0, 0, err
	}
	return max(at.Sub(t0), returned), returned, nil
}

func (w *peerWatch) cycle(ctx context.Context, s *lab.State, binDir string, p lab.Pod) (time.Duration, time.Duration, error) {
	if err := w.detach(ctx, s, binDir, p); err != nil {
		return 0, 0, err
	}
	return w.attach(ctx, s, binDir, p)
}
