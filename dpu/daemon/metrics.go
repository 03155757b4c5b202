package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kai-dpu/kai/dpu/config"
	"github.com/kai-dpu/kai/dpu/controller"
	"github.com/kai-dpu/kai/dpu/evpn"
	"github.com/kai-dpu/kai/dpu/store"
)

// collector reads the controller's state at scrape time, so metrics never
// drift from the state they describe.
type collector struct {
	ctl     *controller.Controller
	speaker *evpn.Speaker
	atts    *prometheus.Desc
	routes  *prometheus.Desc
	peers   *prometheus.Desc
	healthy *prometheus.Desc
	frozen  *prometheus.Desc
}

func newCollector(ctl *controller.Controller, sp *evpn.Speaker) *collector {
	return &collector{
		ctl: ctl, speaker: sp,
		atts:    prometheus.NewDesc("kai_dpu_attachments", "Attachments by phase.", []string{"phase"}, nil),
		routes:  prometheus.NewDesc("kai_dpu_evpn_routes", "EVPN routes by origin.", []string{"origin"}, nil),
		peers:   prometheus.NewDesc("kai_dpu_bgp_peer_up", "1 when the BGP session is established.", []string{"neighbor"}, nil),
		healthy: prometheus.NewDesc("kai_dpu_reconcile_ok", "1 when the last reconcile succeeded.", nil, nil),
		frozen:  prometheus.NewDesc("kai_dpu_duplicate_macs_frozen", "MACs frozen by duplicate detection (RFC 7432 section 15.1).", nil, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.atts
	ch <- c.routes
	ch <- c.peers
	ch <- c.healthy
	ch <- c.frozen
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	count := map[store.Phase]int{store.Pending: 0, store.Ready: 0, store.Error: 0}
	for _, a := range c.ctl.List("") {
		count[a.Status.Phase]++
	}
	for p, n := range count {
		ch <- prometheus.MustNewConstMetric(c.atts, prometheus.GaugeValue, float64(n), string(p))
	}
	ch <- prometheus.MustNewConstMetric(c.routes, prometheus.GaugeValue, float64(len(c.speaker.Originated())), "local")
	ch <- prometheus.MustNewConstMetric(c.routes, prometheus.GaugeValue, float64(len(c.speaker.Learned())), "learned")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if ps, err := c.speaker.Peers(ctx); err == nil {
		for _, p := range ps {
			up := 0.0
			if p.State == "ESTABLISHED" {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, up, p.Address)
		}
	}
	ok := 0.0
	if c.ctl.Ready() == nil {
		ok = 1
	}
	ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, ok)
	ch <- prometheus.MustNewConstMetric(c.frozen, prometheus.GaugeValue, float64(len(c.ctl.FrozenMACs())))
}

// newPassHistogram times reconcile passes: 1 ms (an attach with few
// routes) to about 16 s (a full table at scale).
func newPassHistogram() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kai_dpu_reconcile_duration_seconds",
		Help:    "Duration of reconcile passes (desired state, BGP routes and dataplane).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	})
}

func serveMetrics(cfg config.Metrics, ctl *controller.Controller, sp *evpn.Speaker, passes prometheus.Histogram, errc chan<- error) (*http.Server, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), newCollector(ctl, sp), passes)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ctl.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics listen on %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("metrics: %w", err)
		}
	}()
	return srv, nil
}
