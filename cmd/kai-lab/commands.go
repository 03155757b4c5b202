package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/cmd/kai-lab/chaos"
	"github.com/kai-dpu/kai/cmd/kai-lab/lab"
	"github.com/kai-dpu/kai/dpu/evpn"
)

const defaultStateDir = "/tmp/kai-lab"

const usage = `Usage: kai-lab COMMAND [flags]

Runs Kai on one machine with real BGP, OVS and VXLAN in network namespaces.
Needs root. Uses only 198.18.0.0/15 and 100.64.0.0/10 inside namespaces it
creates; the root namespace is never touched.

Commands:
  up           build the lab and attach every pod (error if one is running)
  status       what runs: processes, BGP sessions, attachments and phases
  exec POD -- CMD   run a command in a pod's namespace
  ping-matrix  ping every pod from every pod; non-zero exit unless same-network
               pairs reach each other and different-network pairs do not
  down         remove every namespace, process and file of the lab (also after
               a crash); succeeds when nothing runs
  cni --pod POD add|del|check|status|gc
               run the pod's CNI chain (host-device + kai-cni) through libcni
               in its server's host namespace, as the container runtime would
  move POD --to SERVER
               move a pod with its MAC and IP to another server, Kai or legacy,
               make-before-break; waits until every VTEP follows it
  chaos --seed S --events N
               bring up a lab with two route reflectors, run N random faults
               (session resets, link flaps, restarts, churn, moves), check it
               converges to its desired state after each; non-zero exit on
               any mismatch
  reflector    run a BGP l2vpn-evpn route reflector (used inside the lab)
  bench [--quick] [--out DIR] [--scenarios LIST]
               measure convergence, attach latency, memory, churn and restart
               against FRR and the OVS floor (docs/benchmarks.md)

Run 'kai-lab COMMAND --help' for a command's flags.
`

// run dispatches a command and returns the exit code.
func run(ctx context.Context, args []string, log *slog.Logger) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmds := map[string]func(context.Context, []string, io.Writer, *slog.Logger) error{
		"up": cmdUp, "down": cmdDown, "status": cmdStatus, "exec": cmdExec,
		"ping-matrix": cmdPingMatrix, "reflector": cmdReflector,
		"cni": cmdCNI, "cni-status": cmdCNIStatus, "move": cmdMove,
		"chaos": cmdChaos,
		"bench": cmdBench,
	}
	f, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "kai-lab: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err := f(ctx, args[1:], os.Stdout, log); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "kai-lab %s: %v\n", args[0], err)
			return 2
		}
		fmt.Fprintf(os.Stderr, "kai-lab %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

type usageError struct{ error }

func stateDirFlag(fs *flag.FlagSet) *string {
	return fs.String("state-dir", defaultStateDir, "where the lab keeps its record, configs and logs")
}

// parseRunning parses a command that only takes --state-dir and loads the
// running lab.
func parseRunning(name string, args []string) (*lab.State, error) {
	fs := flag.NewFlagSet("kai-lab "+name, flag.ContinueOnError)
	dir := stateDirFlag(fs)
	if err := fs.Parse(args); err != nil {
		return nil, usageError{err}
	}
	return loadRunning(*dir)
}

func loadRunning(dir string) (*lab.State, error) {
	s, ok, err := lab.Load(dir)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no lab is running in %s (start one with `kai-lab up`)", dir)
	}
	return s, nil
}

func cmdUp(ctx context.Context, args []string, out io.Writer, _ *slog.Logger) error {
	fs := flag.NewFlagSet("kai-lab up", flag.ContinueOnError)
	servers := fs.Int("servers", 2, "number of servers (each a host with a DPU)")
	pods := fs.Int("pods-per-server", 2, "pods per server, spread over the networks")
	dir := stateDirFlag(fs)
	binDir := fs.String("bin-dir", "", "directory with kai-dpu and kai-lab (default: this binary's)")
	fabric := fs.String("fabric", "gobgp", "route reflector: gobgp or frr (FRR bgpd from Debian's frr package)")
	prefix := fs.String("prefix", "kai", "namespace name prefix (namespaces are PREFIX-server1, ...)")
	legacy := fs.Int("legacy-servers", 0, "add servers doing EVPN on the host the old way (FRR + Linux bridge/VXLAN), with the same number of pods")
	direct := fs.Bool("direct", false, "no host agents: attach pods through the DPU API instead of kai-host + CNI")
	reflectors := fs.Int("reflectors", 1, "route reflectors (1 or 2); every VTEP peers with each")
	spare := fs.Int("spare-vfs", 1, "free VFs per host beyond its pods, for pods moving in (kai-lab move)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *fabric != lab.FabricGoBGP && *fabric != lab.FabricFRR {
		return usageError{fmt.Errorf("--fabric %q: want gobgp or frr", *fabric)}
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, veths, OVS)")
	}
	if *binDir == "" {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		*binDir = filepath.Dir(self)
	}
	start := time.Now()
	uctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	s, err := lab.Up(uctx, lab.Options{Servers: *servers, PodsPerServer: *pods, StateDir: *dir, BinDir: *binDir, Prefix: *prefix, Direct: *direct, Fabric: *fabric, LegacyServers: *legacy, Reflectors: *reflectors, SpareVFs: *spare})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "lab up in %s: %d servers, %d pods, state in %s\n\n", time.Since(start).Round(100*time.Millisecond), len(s.Servers), len(s.Pods), s.Dir)
	printTopology(out, s.State)
	return nil
}

func printTopology(out io.Writer, s *lab.State) {
	fmt.Fprintf(out, "fabric: %s route reflector %s (AS %d, iBGP, l2vpn-evpn)\n", s.Fabric, strings.Join(s.RRs, ", "), lab.ASN)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tDPU NAMESPACE\tVTEP\tKAI-DPU API")
	for _, srv := range s.Servers {
		fmt.Fprintf(tw, "%s\t%s\t%s\tunix:%s\n", srv.Name, srv.NS, srv.Addr, srv.Socket)
	}
	_ = tw.Flush()
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POD\tSERVER\tNETWORK\tMAC\tIP\tVF -> REPRESENTOR")
	for _, p := range s.Pods {
		vf := fmt.Sprintf("pf0vf%d -> %s", p.VF, p.Rep)
		if p.Legacy {
			vf = "veth on a Linux bridge (FRR VTEP)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Server, p.Network, p.MAC, p.IP, vf)
	}
	_ = tw.Flush()
}

func cmdDown(_ context.Context, args []string, out io.Writer, _ *slog.Logger) error {
	fs := flag.NewFlagSet("kai-lab down", flag.ContinueOnError)
	dir := stateDirFlag(fs)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	s, ok, err := lab.Load(*dir)
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintln(out, "no lab running")
		return nil
	}
	if err := lab.Down(*dir); err != nil {
		return err
	}
	fmt.Fprintf(out, "lab down: removed %d namespaces, stopped %d processes\n", len(s.Record.Namespaces), len(s.Record.Procs))
	return nil
}

func cmdStatus(ctx context.Context, args []string, out io.Writer, _ *slog.Logger) error {
	s, err := parseRunning("status", args)
	if err != nil {
		return err
	}
	printTopology(out, s)
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tPID\tRUNNING")
	for _, p := range s.Record.Procs {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", p.Pid))
		fmt.Fprintf(tw, "%s\t%d\t%t\n", p.Name, p.Pid, err == nil)
	}
	_ = tw.Flush()
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tBGP NEIGHBOR\tSTATE\tATTACHMENT\tPHASE")
	for _, srv := range s.Servers {
		conn, err := lab.Dial(&srv)
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		info, ierr := kaiv1.NewInspectClient(conn).GetInfo(cctx, &kaiv1.GetInfoRequest{})
		list, lerr := kaiv1.NewAttachmentsClient(conn).List(cctx, &kaiv1.ListRequest{})
		cancel()
		_ = conn.Close()
		if ierr != nil || lerr != nil {
			fmt.Fprintf(tw, "%s\t-\tkai-dpu unreachable: %v\t\t\n", srv.Name, errors.Join(ierr, lerr))
			continue
		}
		for _, p := range info.GetPeers() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t\t\n", srv.Name, p.GetAddress(), p.GetState())
		}
		for _, a := range list.GetAttachments() {
			fmt.Fprintf(tw, "%s\t\t\t%s\t%s\n", srv.Name, a.GetId(), strings.TrimPrefix(a.GetStatus().GetPhase().String(), "PHASE_"))
		}
	}
	return tw.Flush()
}

func cmdExec(ctx context.Context, args []string, _ io.Writer, _ *slog.Logger) error {
	fs := flag.NewFlagSet("kai-lab exec", flag.ContinueOnError)
	dir := stateDirFlag(fs)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), "Usage: kai-lab exec [--state-dir DIR] POD -- CMD [ARGS...]") }
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	rest := fs.Args()
	if len(rest) < 3 || rest[1] != "--" {
		return usageError{errors.New("want POD -- CMD [ARGS...]")}
	}
	s, err := loadRunning(*dir)
	if err != nil {
		return err
	}
	for _, p := range s.Pods {
		if p.Name == rest[0] {
			cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", p.NS}, rest[2:]...)...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			return cmd.Run()
		}
	}
	return fmt.Errorf("no pod %q (see `kai-lab status`)", rest[0])
}

func cmdPingMatrix(ctx context.Context, args []string, out io.Writer, _ *slog.Logger) error {
	s, err := parseRunning("ping-matrix", args)
	if err != nil {
		return err
	}
	start := time.Now()
	table, ok := lab.FormatMatrix(s.Pods, s.PingMatrix(ctx))
	fmt.Fprint(out, table)
	fmt.Fprintf(out, "(%d pairs in %s)\n", len(s.Pods)*(len(s.Pods)-1), time.Since(start).Round(100*time.Millisecond))
	if !ok {
		return errors.New("ping matrix does not match the networks (FAIL: should reach; LEAK: must not)")
	}
	return nil
}

func cmdReflector(ctx context.Context, args []string, _ io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("kai-lab reflector", flag.ContinueOnError)
	asn := fs.Uint("asn", lab.ASN, "AS number (iBGP with the DPUs)")
	rid := fs.String("router-id", "", "router id (IPv4), also the cluster id")
	port := fs.Int("listen-port", 179, "BGP port")
	clients := fs.String("clients", "", "comma-separated client addresses")
	grTime := fs.Uint("graceful-restart", 120, "graceful restart time in seconds (helper for restarting DPUs)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	id, err := netip.ParseAddr(*rid)
	if err != nil || !id.Is4() {
		return usageError{fmt.Errorf("--router-id: need an IPv4 address, got %q", *rid)}
	}
	var ns []evpn.Neighbor
	for _, c := range strings.Split(*clients, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		a, err := netip.ParseAddr(c)
		if err != nil {
			return usageError{fmt.Errorf("--clients: %w", err)}
		}
		ns = append(ns, evpn.Neighbor{Address: a, ASN: uint32(*asn)})
	}
	if len(ns) == 0 {
		return usageError{errors.New("--clients: at least one client address is required")}
	}
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

func cmdCNI(ctx context.Context, args []string, out io.Writer, _ *slog.Logger) error {
	fs := flag.NewFlagSet("kai-lab cni", flag.ContinueOnError)
	dir := stateDirFlag(fs)
	pod := fs.String("pod", "", "pod name")
	conf := fs.String("conflist", "", "use this conflist file instead of the pod's")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *pod == "" || fs.NArg() != 1 {
		return usageError{errors.New("want --pod POD add|del|check|status|gc")}
	}
	s, err := loadRunning(*dir)
	if err != nil {
		return err
	}
	var raw []byte
	if *conf != "" {
		if raw, err = os.ReadFile(*conf); err != nil {
			return err
		}
	}
	res, err := s.CNI(ctx, *pod, fs.Arg(0), raw)
	if err != nil {
		return err
	}
	if res != "" {
		fmt.Fprintln(out, res)
	}
	return nil
}

// cmdCNIStatus asks kai-host whether it is ready (used to wait for it).
func cmdCNIStatus(ctx context.Context, args []string, out io.Writer, _ *slog.Logger) error {
	fs := flag.NewFlagSet("kai-lab cni-status", flag.ContinueOnError)
	sock := fs.String("socket", "", "kai-host socket")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	boot, err := lab.HostStatus(ctx, *sock)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "ready (DPU boot id %s)\n", boot)
	return nil
}

func cmdMove(ctx context.Context, args []string, out io.Writer, _ *slog.Logger) error {
	fs := flag.NewFlagSet("kai-lab move", flag.ContinueOnError)
	dir := stateDirFlag(fs)
	to := fs.String("to", "", "server to move the pod to (serverN or legacyN)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: kai-lab move [--state-dir DIR] POD --to SERVER")
		fs.PrintDefaults()
	}
	// The pod name may come before the flags.
	var pod string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pod, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if pod == "" && fs.NArg() == 1 {
		pod = fs.Arg(0)
	}
	if pod == "" || *to == "" {
		return usageError{errors.New("want POD --to SERVER")}
	}
	l, err := lab.Open(*dir)
	if err != nil {
		return err
	}
	mctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	m, err := l.Move(mctx, pod, *to)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "moved %s from %s (VTEP %s, seq %d) to %s (VTEP %s, seq %d) in %s; every VTEP follows\n",
		m.Pod, m.From, m.FromVTEP, m.FromSeq, m.To, m.ToVTEP, m.ToSeq, m.Took.Round(10*time.Millisecond))
	return nil
}

func cmdChaos(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("kai-lab chaos", flag.ContinueOnError)
	seed := fs.Uint64("seed", 1, "random seed: the same seed gives the same event sequence")
	events := fs.Int("events", 50, "number of events")
	servers := fs.Int("servers", 3, "servers with a DPU")
	pods := fs.Int("pods-per-server", 2, "pods per server")
	legacy := fs.Int("legacy-servers", 0, "legacy FRR VTEPs (pods also move to and from them)")
	fabric := fs.String("fabric", "gobgp", "route reflectors: gobgp or frr")
	dir := fs.String("state-dir", "/tmp/kai-chaos", "where the chaos lab keeps its record, configs and logs")
	prefix := fs.String("prefix", "kaichaos", "namespace name prefix")
	settle := fs.Duration("settle", 30*time.Second, "longest wait for convergence after an event")
	keep := fs.Bool("keep", false, "leave the lab up afterwards (remove it with `kai-lab down --state-dir DIR`)")
	jsonOut := fs.String("json", "", "also write the summary as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, veths, OVS)")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	sum, err := chaos.Run(ctx, chaos.Options{
		Seed: *seed, Events: *events, Settle: *settle, Keep: *keep, Out: out, Log: log,
		Lab: lab.Options{Servers: *servers, PodsPerServer: *pods, LegacyServers: *legacy, Fabric: *fabric,
			StateDir: *dir, BinDir: filepath.Dir(self), Prefix: *prefix},
	})
	if err != nil {
		return err
	}
	fmt.Fprint(out, sum.Format())
	if *jsonOut != "" {
		data, err := json.MarshalIndent(sum, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, data, 0o644); err != nil {
			return err
		}
	}
	if len(sum.Mismatches) > 0 {
		return fmt.Errorf("%d mismatches in %d events", len(sum.Mismatches), sum.Events)
	}
	return nil
}
