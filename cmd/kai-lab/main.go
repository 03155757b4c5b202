// Command kai-lab runs Kai on one machine: servers as network namespaces,
// each with a DPU (OVS userspace datapath + kai-dpu), emulated VFs into pod
// namespaces, and a fabric with a route reflector. See docs/lab.md.
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
