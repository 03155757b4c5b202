// Command kaictl is the operator's command-line view of a Kai DPU. It reads
// attachments, EVPN networks, routes, OpenFlow flows and daemon info from
// kai-dpu's gRPC API.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, newRootCommand(os.Stdout, os.Stderr), os.Args[1:])
	stop()
	os.Exit(code)
}
