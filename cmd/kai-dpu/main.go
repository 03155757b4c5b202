// Command kai-dpu is Kai's controller on the DPU: the gRPC API for host
// agents, the BGP-EVPN speaker and the OVS offload backend.
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kai-dpu/kai/cmd/internal/daemoncli"
	"github.com/kai-dpu/kai/dpu/config"
	"github.com/kai-dpu/kai/dpu/daemon"
)

var version = "dev"

func main() {
	var withdraw *bool
	os.Exit(daemoncli.Daemon{
		Name:          "kai-dpu",
		Summary:       "Runs Kai's EVPN VTEP controller on a DPU. SIGHUP or a change of the config file reloads it.",
		DefaultConfig: "/etc/kai/dpu.yaml",
		Version:       version,
		Flags: func(fs *flag.FlagSet) {
			withdraw = fs.Bool("withdraw-on-exit", false, "withdraw all routes on exit (decommissioning); a normal restart keeps them via graceful restart")
		},
		Validate: func(path string) error { _, err := config.Load(path); return err },
		Run: func(ctx context.Context, path string, log *slog.Logger) error {
			return daemon.Run(ctx, daemon.Options{ConfigPath: path, Reload: sighup(ctx), Version: version, Log: log, WithdrawOnExit: *withdraw})
		},
	}.Stdio())
}

// sighup turns SIGHUP into coalesced reload requests.
func sighup(ctx context.Context) <-chan struct{} {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case reload <- struct{}{}:
				default:
				}
			}
		}
	}()
	return reload
}
