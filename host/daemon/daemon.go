// Package daemon wires kai-host: config, checkpoint, VF identity, device
// pool, the mutual-TLS connection to the DPU, the agent, the kai.v1.Host
// socket for kai-cni, and health/metrics.
package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/host/agent"
	"github.com/kai-dpu/kai/host/checkpoint"
	"github.com/kai-dpu/kai/host/config"
	"github.com/kai-dpu/kai/host/devicepool"
	"github.com/kai-dpu/kai/host/identity"
)

// Options for Run.
type Options struct {
	ConfigPath string
	Version    string
	Log        *slog.Logger
}

// Run runs kai-host until ctx ends. Stopping it changes nothing on the DPU:
// attachments stay, and the next start resyncs from the checkpoint.
func Run(ctx context.Context, o Options) error {
	log := o.Log
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return err
	}
	ck, err := checkpoint.Open(cfg.StateDir)
	if err != nil {
		return err
	}
	ids, err := identity.New(cfg.Identity)
	if err != nil {
		return err
	}
	var pool *devicepool.Pool
	if cfg.DevicePlugin.Config != "" {
		if pool, err = devicepool.Load(cfg.DevicePlugin.Config, cfg.DevicePlugin.ResourceName, ""); err != nil {
			return err
		}
	}
	creds, err := dpuCredentials(cfg.DPU)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(cfg.DPU.Address, grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 15 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}))
	if err != nil {
		return fmt.Errorf("dpu.address: %w", err)
	}
	defer func() { _ = conn.Close() }()

	ag := agent.New(cfg.Node, ck, ids, pool, conn,
		agent.Options{AddTimeout: time.Duration(cfg.AddTimeoutSeconds) * time.Second}, log.With("component", "agent"))
	lis, err := listenUnix(cfg.CNI.Socket)
	if err != nil {
		return err
	}
	rpc := newRPCMetrics()
	g := grpc.NewServer(grpc.UnaryInterceptor(rpc.interceptor))
	kaiv1.RegisterHostServer(g, agent.NewHostServer(ag))
	errc := make(chan error, 3)
	go func() {
		if err := g.Serve(lis); err != nil {
			errc <- fmt.Errorf("serve %s: %w", cfg.CNI.Socket, err)
		}
	}()
	go func() { errc <- ag.Run(ctx) }()
	var msrv *http.Server
	if cfg.Metrics.Listen != "" {
		if msrv, err = serveMetrics(cfg.Metrics.Listen, ag, rpc, errc); err != nil {
			return err
		}
	}
	log.Info("kai-host running", "version", o.Version, "node", cfg.Node, "dpu", cfg.DPU.Address, "cniSocket", cfg.CNI.Socket,
		"attachments", len(ck.List()), "tls", !cfg.DPU.Insecure)
	select {
	case <-ctx.Done():
		err = nil
	case err = <-errc:
	}
	log.Info("kai-host stopping; attachments stay on the DPU")
	g.Stop()
	if msrv != nil {
		_ = msrv.Close()
	}
	return err
}

func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("cni.socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cni.socket: remove stale %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("cni.socket: %w", err)
	}
	// Only root (the container runtime running kai-cni) may attach pods.
	if err := os.Chmod(path, 0o600); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("cni.socket: %w", err)
	}
	return l, nil
}

// dpuCredentials: mutual TLS with the DPU, unless the config explicitly
// says insecure (labs).
func dpuCredentials(d config.DPU) (credentials.TransportCredentials, error) {
	if d.Insecure {
		return insecure.NewCredentials(), nil
	}
	cert, err := tls.LoadX509KeyPair(d.Cert, d.Key)
	if err != nil {
		return nil, fmt.Errorf("dpu.cert/dpu.key: %w", err)
	}
	caPEM, err := os.ReadFile(d.CA)
	if err != nil {
		return nil, fmt.Errorf("dpu.ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("dpu.ca: %s holds no PEM certificate", d.CA)
	}
	// config fills ServerName from dpu.address when it is not set.
	return credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: d.ServerName, MinVersion: tls.VersionTLS13,
	}), nil
}
