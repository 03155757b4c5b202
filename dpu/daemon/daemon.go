// Package daemon wires kai-dpu together: config, store, dataplane backend,
// EVPN speaker, controller, gRPC API and metrics. It owns the process
// lifecycle, and on exit it leaves the dataplane and BGP state as they are
// so traffic keeps flowing across a restart.
package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/kai-dpu/kai/dpu/apiserver"
	"github.com/kai-dpu/kai/dpu/config"
	"github.com/kai-dpu/kai/dpu/controller"
	"github.com/kai-dpu/kai/dpu/evpn"
	"github.com/kai-dpu/kai/dpu/store"
	"github.com/kai-dpu/kai/offload/ovs"
	"github.com/kai-dpu/kai/sriov"
)

// Options for Run.
type Options struct {
	ConfigPath string
	// Reload is signalled on SIGHUP; the file is also polled for changes.
	Reload  <-chan struct{}
	Version string
	Log     *slog.Logger
	// WithdrawOnExit stops BGP with a Cease on exit, so peers withdraw our
	// routes at once (for decommissioning; a restart should not do this).
	WithdrawOnExit bool
}

// Run runs kai-dpu until ctx ends.
func Run(ctx context.Context, o Options) error {
	log := o.Log
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return err
	}
	st, existed, err := store.Open(cfg.StateDir)
	if err != nil {
		return err
	}
	reps, err := sriov.New(cfg.Representors)
	if err != nil {
		return fmt.Errorf("representors: %w", err)
	}
	oc := cfg.Dataplane.OVS
	dp, err := ovs.New(ctx, ovs.Config{DB: oc.DB, Bridge: oc.Bridge, DatapathType: oc.DatapathType, HWOffload: oc.HWOffload, OFCtl: oc.OFCtl, RunDir: oc.RunDir}, log.With("component", "ovs"))
	if err != nil {
		return err
	}
	defer func() { _ = dp.Close() }() // disconnects only; flows stay
	speaker := evpn.NewSpeaker(evpn.SpeakerConfig{
		ASN: cfg.BGP.ASN, RouterID: cfg.BGP.RouterID, ListenPort: cfg.BGP.ListenPort, VTEP: cfg.VTEP.Address,
		GracefulRestartSeconds: cfg.BGP.GracefulRestartSeconds,
		// With saved state we restart with forwarding preserved: peers
		// keep our routes until our End-of-RIB (RFC 4724).
		Restarting: existed,
	}, log.With("component", "evpn"))
	passes := newPassHistogram()
	ctl := controller.New(cfg, st, speaker, dp, reps, controller.Options{ObservePass: func(d time.Duration) { passes.Observe(d.Seconds()) }},
		log.With("component", "controller"))
	if err := speaker.Start(ctx, ctl.Routes(), controller.Neighbors(cfg)); err != nil {
		return err
	}
	defer func() {
		if o.WithdrawOnExit {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := speaker.Stop(sctx); err != nil {
				log.Warn("stopping bgp", "error", err)
			}
			return
		}
		speaker.Close()
	}()
	log.Info("kai-dpu starting", "node", cfg.Node, "vtep", cfg.VTEP.Address, "restart", existed,
		"attachments", len(st.List("")), "networks", len(cfg.Networks))

	api := apiserver.New(ctl, dp, speaker, o.Version)
	api.Health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	creds, err := serverTLS(cfg.API)
	if err != nil {
		return err
	}
	errc := make(chan error, 4)
	var servers []*grpc.Server
	serve := func(addr string, opts ...grpc.ServerOption) error {
		lis, err := listen(addr)
		if err != nil {
			return err
		}
		g := grpc.NewServer(append(opts,
			grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
			grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		)...)
		api.Register(g)
		servers = append(servers, g)
		go func() {
			if err := g.Serve(lis); err != nil {
				errc <- fmt.Errorf("grpc serve on %s: %w", addr, err)
			}
		}()
		return nil
	}
	if err := serve(cfg.API.Listen, creds...); err != nil {
		return err
	}
	if cfg.API.Socket != "" {
		if err := serve(cfg.API.Socket); err != nil {
			return err
		}
	}
	ctlCtx, stopCtl := context.WithCancel(ctx)
	defer stopCtl()
	ctlDone := make(chan struct{})
	go func() {
		defer close(ctlDone)
		errc <- ctl.Run(ctlCtx)
	}()
	var metricsSrv *http.Server
	if cfg.Metrics.Listen != "" {
		metricsSrv, err = serveMetrics(cfg.Metrics, ctl, speaker, passes, errc)
		if err != nil {
			return err
		}
	}
	go markReady(ctx, ctl, api)
	go watchConfig(ctx, o, ctl, log)

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	log.Info("kai-dpu stopping; dataplane and routes are left in place")
	for _, g := range servers {
		stopped := make(chan struct{})
		go func() { g.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(3 * time.Second):
			g.Stop() // Watch streams would otherwise hold it open
		}
	}
	if metricsSrv != nil {
		_ = metricsSrv.Close()
	}
	// The controller saves the last learned routes as it stops; the next
	// start relies on them.
	stopCtl()
	select {
	case <-ctlDone:
	case <-time.After(10 * time.Second):
		log.Warn("controller did not stop within 10s; learned routes may not be saved")
	}
	return err
}

func listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		path = strings.TrimPrefix(path, "//")
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		return l, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return l, nil
}

// markReady flips gRPC health to SERVING after the first successful reconcile.
func markReady(ctx context.Context, ctl *controller.Controller, api *apiserver.Server) {
	if err := ctl.WaitApplied(ctx, 1); err != nil {
		return
	}
	api.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
}

// watchConfig reloads on SIGHUP or when the file's content changes. An
// invalid file is logged and the running config kept.
func watchConfig(ctx context.Context, o Options, ctl *controller.Controller, log *slog.Logger) {
	last, _ := os.ReadFile(o.ConfigPath)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		forced := false
		select {
		case <-ctx.Done():
			return
		case <-o.Reload:
			forced = true
		case <-tick.C:
		}
		data, err := os.ReadFile(o.ConfigPath)
		if err != nil {
			log.Error("config reload: cannot read file; keeping running config", "path", o.ConfigPath, "error", err)
			continue
		}
		if !forced && bytes.Equal(data, last) {
			continue
		}
		last = data
		next, err := config.Parse(data)
		if err == nil {
			err = ctl.Reload(ctx, next)
		}
		if err != nil {
			log.Error("config reload rejected; keeping running config", "path", o.ConfigPath, "error", err)
			continue
		}
		log.Info("config reloaded", "networks", len(next.Networks))
	}
}
