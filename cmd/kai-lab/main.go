// Command kai-lab runs Kai on one machine: servers as network namespaces,
// each a host (kai-host) and a DPU (OVS userspace datapath + kai-dpu),
// emulated VFs attached to pods by the real CNI chain, and a fabric with a
// GoBGP or FRR route reflector. See "The lab" in README.md.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], slog.New(slog.NewTextHandler(os.Stderr, nil)))
	stop()
	os.Exit(code)
}
