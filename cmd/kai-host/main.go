// Command kai-host is Kai's host agent (a DaemonSet): it tells the DPU which
// SR-IOV VF belongs to which pod and network, for kai-cni.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/kai-dpu/kai/cmd/internal/daemoncli"
	"github.com/kai-dpu/kai/host/config"
	"github.com/kai-dpu/kai/host/daemon"
)

var version = "dev"

func main() {
	os.Exit(daemoncli.Daemon{
		Name:          "kai-host",
		Summary:       "Runs Kai's host agent: checkpoints this node's VF attachments, syncs them to the DPU over mutual TLS, and serves kai-cni on a unix socket.",
		DefaultConfig: "/etc/kai/host.yaml",
		Version:       version,
		Validate:      func(path string) error { _, err := config.Load(path); return err },
		Run: func(ctx context.Context, path string, log *slog.Logger) error {
			return daemon.Run(ctx, daemon.Options{ConfigPath: path, Version: version, Log: log})
		},
	}.Stdio())
}
