package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/host/agent"
)

// collector reads the agent at scrape time.
type collector struct {
	ag        *agent.Agent
	atts      *prometheus.Desc
	connected *prometheus.Desc
	syncs     *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.atts
	ch <- c.connected
	ch <- c.syncs
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.ag.Snapshot()
	for _, ph := range []kaiv1.Phase{kaiv1.Phase_PHASE_PENDING, kaiv1.Phase_PHASE_READY, kaiv1.Phase_PHASE_ERROR} {
		name := strings.ToLower(strings.TrimPrefix(ph.String(), "PHASE_"))
		ch <- prometheus.MustNewConstMetric(c.atts, prometheus.GaugeValue, float64(s.Phases[ph]), name)
	}
	up := 0.0
	if s.Connected {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(c.syncs, prometheus.CounterValue, float64(s.Syncs))
}

// rpcMetrics times the kai.v1.Host calls kai-cni makes.
type rpcMetrics struct{ hist *prometheus.HistogramVec }

func newRPCMetrics() *rpcMetrics {
	return &rpcMetrics{hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kai_host_rpc_duration_seconds",
		Help:    "Duration of kai.v1.Host calls from kai-cni, by method and gRPC code.",
		Buckets: []float64{.005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"method", "code"})}
}

func (m *rpcMetrics) interceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	m.hist.WithLabelValues(path.Base(info.FullMethod), status.Code(err).String()).Observe(time.Since(start).Seconds())
	return resp, err
}

func serveMetrics(addr string, ag *agent.Agent, rpc *rpcMetrics, errc chan<- error) (*http.Server, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(rpc.hist, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &collector{
		ag:        ag,
		atts:      prometheus.NewDesc("kai_host_attachments", "Attachments in the checkpoint by DPU phase.", []string{"phase"}, nil),
		connected: prometheus.NewDesc("kai_host_dpu_connected", "1 while a synced session with the DPU is up.", nil, nil),
		syncs:     prometheus.NewDesc("kai_host_dpu_syncs_total", "Full-state syncs sent to the DPU.", nil, nil),
	})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ag.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("metrics: %w", err)
		}
	}()
	return srv, nil
}
