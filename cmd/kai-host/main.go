// Command kai-host is Kai's host agent (a DaemonSet): it tells the DPU which
// SR-IOV VF belongs to which pod and network, for kai-cni.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kai-dpu/kai/host/config"
	"github.com/kai-dpu/kai/host/daemon"
)

var version = "dev"

func main() {
	fs := flag.NewFlagSet("kai-host", flag.ExitOnError)
	cfgPath := fs.String("config", "/etc/kai/host.yaml", "path to the kai-host YAML config")
	dryRun := fs.Bool("dry-run", false, "validate the config file and exit")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: kai-host [flags]\n\nRuns Kai's host agent: checkpoints this node's VF attachments, syncs them to the DPU over mutual TLS, and serves kai-cni on a unix socket.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	if *showVersion {
		fmt.Println(version)
		return
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(os.Stderr, "kai-host: --log-level: %v\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	if *dryRun {
		if _, err := config.Load(*cfgPath); err != nil {
			fmt.Fprintf(os.Stderr, "kai-host: %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("%s: ok\n", *cfgPath)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := daemon.Run(ctx, daemon.Options{ConfigPath: *cfgPath, Version: version, Log: log}); err != nil {
		log.Error("kai-host failed", "error", err)
		os.Exit(1)
	}
}
