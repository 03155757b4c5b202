// Command kai-lab runs Kai's lab on one machine. For now it provides the
// fabric's route reflector; the topology commands (up, down, status,
// ping-matrix) build on the netlab package.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/kai-dpu/kai/dpu/evpn"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var err error
	switch os.Args[1] {
	case "reflector":
		err = runReflector(os.Args[2:], log)
	default:
		fmt.Fprintf(os.Stderr, "kai-lab: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		log.Error("kai-lab failed", "error", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `Usage: kai-lab COMMAND [flags]

Commands:
  reflector   run a BGP l2vpn-evpn route reflector (GoBGP) for the lab fabric

Run 'kai-lab COMMAND --help' for a command's flags.
`)
}

func runReflector(args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("kai-lab reflector", flag.ExitOnError)
	asn := fs.Uint("asn", 65000, "AS number (iBGP with the DPUs)")
	rid := fs.String("router-id", "", "router id (IPv4), also the cluster id")
	port := fs.Int("listen-port", 179, "BGP port")
	clients := fs.String("clients", "", "comma-separated client addresses")
	grTime := fs.Uint("graceful-restart", 120, "graceful restart time in seconds (helper for restarting DPUs)")
	_ = fs.Parse(args)
	id, err := netip.ParseAddr(*rid)
	if err != nil || !id.Is4() {
		return fmt.Errorf("--router-id: need an IPv4 address, got %q", *rid)
	}
	var ns []evpn.Neighbor
	for _, c := range strings.Split(*clients, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		a, err := netip.ParseAddr(c)
		if err != nil {
			return fmt.Errorf("--clients: %w", err)
		}
		ns = append(ns, evpn.Neighbor{Address: a, ASN: uint32(*asn)})
	}
	if len(ns) == 0 {
		return fmt.Errorf("--clients: at least one client address is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	rr := evpn.NewSpeaker(evpn.SpeakerConfig{
		ASN: uint32(*asn), RouterID: id, ListenPort: int32(*port), VTEP: id,
		RouteReflector: true, Passive: true, GracefulRestartSeconds: uint32(*grTime),
	}, log)
	if err := rr.Start(ctx, nil, ns); err != nil {
		return err
	}
	log.Info("route reflector running", "routerID", id, "clients", len(ns))
	<-ctx.Done()
	return rr.Stop(context.Background())
}
