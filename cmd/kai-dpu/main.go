// Command kai-dpu is Kai's controller on the DPU: the gRPC API for host
// agents, the BGP-EVPN speaker and the OVS offload backend.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kai-dpu/kai/dpu/config"
	"github.com/kai-dpu/kai/dpu/daemon"
)

var version = "dev"

func main() {
	fs := flag.NewFlagSet("kai-dpu", flag.ExitOnError)
	cfgPath := fs.String("config", "/etc/kai/dpu.yaml", "path to the kai-dpu YAML config")
	dryRun := fs.Bool("dry-run", false, "validate the config file and exit")
	withdraw := fs.Bool("withdraw-on-exit", false, "withdraw all routes on exit (decommissioning); a normal restart keeps them via graceful restart")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: kai-dpu [flags]\n\nRuns Kai's EVPN VTEP controller on a DPU. SIGHUP or a change of the config file reloads it.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	if *showVersion {
		fmt.Println(version)
		return
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(os.Stderr, "kai-dpu: --log-level: %v\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	if *dryRun {
		if _, err := config.Load(*cfgPath); err != nil {
			fmt.Fprintf(os.Stderr, "kai-dpu: %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("%s: ok\n", *cfgPath)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	err := daemon.Run(ctx, daemon.Options{ConfigPath: *cfgPath, Reload: reload, Version: version, Log: log, WithdrawOnExit: *withdraw})
	if err != nil {
		log.Error("kai-dpu failed", "error", err)
		os.Exit(1)
	}
}
