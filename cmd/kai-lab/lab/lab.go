// Package lab builds Kai's lab out of network namespaces on one machine:
// per server a DPU namespace (its own OVS with the userspace datapath, and
// kai-dpu), emulated VFs (veth pairs whose DPU end is named like a BlueField
// representor) into pod namespaces, and a fabric namespace with a route
// reflector joining the DPU uplinks. Only addresses from 198.18.0.0/15
// (underlay) and 100.64.0.0/10 (pods) are used, only inside namespaces the
// lab created; nothing in the root namespace changes.
package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/cmd/kai-lab/netlab"
)

// Addressing and identities of the lab.
const (
	RRAddr    = "198.18.0.1"
	RR2Addr   = "198.18.0.2" // the second reflector (Options.Reflectors 2)
	ASN       = 65000
	stateFile = "lab.json"
	underMTU  = 1600 // room for VXLAN's 50 bytes over the pods' 1500
)

// Networks are the lab's EVPN networks. All pods share one IP subnet, so
// only L2 isolation keeps the networks apart: a ping across them failing
// proves the VTEP separates them.
var Networks = []Network{{Name: "blue", VNI: 10100}, {Name: "red", VNI: 10200}}

// Network is an EVPN network of the lab.
type Network struct {
	Name string `json:"name"`
	VNI  uint32 `json:"vni"`
}

// Options for Up.
type Options struct {
	Servers       int
	PodsPerServer int
	// StateDir holds the lab record, configs, logs and OVS databases.
	StateDir string
	// BinDir holds kai-dpu and kai-lab.
	BinDir string
	// Prefix names the namespaces (Prefix-dpu1, ...).
	Prefix string
	// Fabric is the route reflector: FabricGoBGP (default) or FabricFRR.
	Fabric string
	// LegacyServers adds servers that do EVPN on the host with FRR and a
	// Linux bridge/VXLAN VTEP, each with PodsPerServer pods.
	LegacyServers int
	// Direct attaches pods by calling each DPU's API, without host
	// agents or CNI (for testing kai-dpu alone). Otherwise every server
	// runs kai-host and pods are attached through host-device + kai-cni.
	Direct bool
	// Reflectors is 1 (default) or 2: every VTEP peers with each; the
	// second runs in its own namespace on the fabric bridge.
	Reflectors int
	// SpareVFs adds VFs to every host's device-plugin pool beyond its
	// pods, so pods can move in (kai-lab move).
	SpareVFs int
	// DuplicateSeconds overrides kai-dpu's duplicate-MAC window
	// (macMobility.duplicateSeconds); 0 keeps the default (180 s). Chaos
	// moves pods faster than any real workload and sets it low.
	DuplicateSeconds int
}

// Server is one server of the lab: its DPU namespace and kai-dpu.
type Server struct {
	Name   string `json:"name"`
	Node   string `json:"node"`
	NS     string `json:"ns"`
	Addr   string `json:"addr"`
	HWAddr string `json:"hwaddr"`
	OVSDir string `json:"ovsDir"`
	// Socket is kai-dpu's operator socket (kaictl, the lab).
	Socket   string `json:"socket"`
	Config   string `json:"config"`
	StateDir string `json:"stateDir"`

	// Host side (empty with Options.Direct).
	HostNS     string `json:"hostNS,omitempty"`
	MgmtHost   string `json:"mgmtHost,omitempty"`
	MgmtDPU    string `json:"mgmtDPU,omitempty"`
	HostConfig string `json:"hostConfig,omitempty"`
	HostSocket string `json:"hostSocket,omitempty"`
	CA         string `json:"ca,omitempty"`
	DPUCert    string `json:"dpuCert,omitempty"`
	DPUKey     string `json:"dpuKey,omitempty"`
	HostCert   string `json:"hostCert,omitempty"`
	HostKey    string `json:"hostKey,omitempty"`
}

// Pod is a pod namespace with one emulated VF.
type Pod struct {
	Name    string `json:"name"`
	NS      string `json:"ns"`
	Server  string `json:"server"`
	Network string `json:"network"`
	MAC     string `json:"mac"`
	IP      string `json:"ip"`
	VF      uint32 `json:"vf"`
	PCI     string `json:"pci"`
	Rep     string `json:"representor"`
	// Legacy pods sit behind an FRR/Linux-bridge VTEP, not a Kai DPU.
	Legacy bool `json:"legacy,omitempty"`
	// Gen counts the pod's moves; each move makes a new incarnation.
	Gen int `json:"gen,omitempty"`
	// HostLink is a legacy pod's veth on its server's bridge.
	HostLink string `json:"hostLink,omitempty"`
}

// State is what `up` built; it is persisted so other commands (and `down`
// after a crash) find it.
type State struct {
	Dir     string        `json:"dir"`
	Prefix  string        `json:"prefix"`
	Servers []Server      `json:"servers"`
	Pods    []Pod         `json:"pods"`
	Record  netlab.Record `json:"record"`
	BinDir  string        `json:"binDir"`
	Direct  bool          `json:"direct"`
	Fabric  string        `json:"fabric"`
	Legacy  []Legacy      `json:"legacy,omitempty"`
	// RRs are the route reflectors' addresses.
	RRs []string `json:"rrs"`
	// VFs is the number of VFs in each host's device-plugin pool.
	VFs int `json:"vfs,omitempty"`
	// DuplicateSeconds is Options.DuplicateSeconds.
	DuplicateSeconds int `json:"duplicateSeconds,omitempty"`
	// LinkSeq numbers the veths of pods moved to legacy servers.
	LinkSeq int `json:"linkSeq,omitempty"`
}

// ErrRunning is returned by Up when a lab is already up in the state dir.
var ErrRunning = errors.New("a lab is already running")

// Load reads the state of a running lab; ok is false when none is up.
func Load(dir string) (*State, bool, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read lab state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, false, fmt.Errorf("lab state %s is corrupt (remove it after checking `ip netns list`): %w", filepath.Join(dir, stateFile), err)
	}
	return &s, true, nil
}

func (s *State) save() error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.Dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return os.Rename(tmp, filepath.Join(s.Dir, stateFile))
}

// Down removes everything the lab recorded: processes (by pid), namespaces
// (and with them every veth), then the state dir's lab record. With nothing
// up it succeeds.
func Down(dir string) error {
	s, ok, err := Load(dir)
	if err != nil || !ok {
		return err
	}
	if err := netlab.Teardown(s.Record); err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	return os.RemoveAll(s.Dir)
}

// Lab is a lab brought up by this process: its state plus the handles of
// the processes it started, for tests that restart them.
type Lab struct {
	*State
	nl *netlab.Lab
}

// Down tears the lab down.
func (l *Lab) Down() error { return Down(l.Dir) }

// RestartDPU stops a server's kai-dpu (SIGTERM, as systemd would) and starts
// it again with the same config and state.
func (l *Lab) RestartDPU(ctx context.Context, server string) error {
	if err := l.StopDPU(server); err != nil {
		return err
	}
	return l.StartDPU(ctx, server)
}

// RestartVswitchd restarts a server's ovs-vswitchd, which loses every
// OpenFlow flow and group (OVSDB keeps the bridge and ports).
func (l *Lab) RestartVswitchd(server string) error {
	srv := l.Server(server)
	if srv == nil {
		return fmt.Errorf("no server %q", server)
	}
	o := l.nl.OVS(srv.NS, srv.Name+"-ovs")
	o.StopVswitchd()
	return o.StartVswitchd()
}

// StopDPU stops a server's kai-dpu (SIGTERM).
func (l *Lab) StopDPU(server string) error {
	srv := l.Server(server)
	if srv == nil {
		return fmt.Errorf("no server %q", server)
	}
	if p := l.nl.Proc(srv.Name + "-kai-dpu"); p != nil {
		p.Stop(10 * time.Second)
	}
	return nil
}

// StartDPU starts a server's kai-dpu again.
func (l *Lab) StartDPU(ctx context.Context, server string) error {
	srv := l.Server(server)
	if srv == nil {
		return fmt.Errorf("no server %q", server)
	}
	return StartDPU(ctx, l.nl, srv, l.BinDir)
}

// RestartHost stops a server's kai-host (SIGKILL when crash, as a node
// failure would; else SIGTERM) and starts it again. With wait it returns
// once the new kai-host has synced with its DPU.
func (l *Lab) RestartHost(ctx context.Context, server string, crash, wait bool) error {
	srv := l.Server(server)
	if srv == nil || srv.HostNS == "" {
		return fmt.Errorf("no server %q with a host agent", server)
	}
	if p := l.nl.Proc(srv.Name + "-kai-host"); p != nil {
		if crash {
			p.Kill()
		} else {
			p.Stop(10 * time.Second)
		}
	}
	if wait {
		return StartHost(ctx, l.nl, srv, l.BinDir)
	}
	_, err := startHostProc(l.nl, srv, l.BinDir)
	return err
}

// UseRogueHostCert replaces a server's kai-host client certificate with one
// for the same node from a CA the DPU does not trust.
func (l *Lab) UseRogueHostCert(server string) error {
	srv := l.Server(server)
	if srv == nil {
		return fmt.Errorf("no server %q", server)
	}
	dir := filepath.Join(l.Dir, "rogue")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := NewCA(dir, "rogue-ca")
	if err != nil {
		return err
	}
	cert, key, err := ca.Issue(dir, srv.Node, false)
	if err != nil {
		return err
	}
	for src, dst := range map[string]string{cert: srv.HostCert, key: srv.HostKey} {
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// OutOfPoolVF is the PCI address of the VF every host has beyond its pool:
// known to kai-host's identity mapping but outside the device-plugin pool.
func (l *Lab) OutOfPoolVF() string { return vfPCI(l.VFs) }

// Ofctl runs ovs-ofctl (OpenFlow 1.5, port numbers) on a server's br-kai.
func (srv *Server) Ofctl(cmd string, args ...string) (string, error) {
	return netlab.Sh(append([]string{"ovs-ofctl", "-O", "OpenFlow15", "--no-names", cmd, "unix:" + filepath.Join(srv.OVSDir, "br-kai.mgmt")}, args...)...)
}

// Up builds the lab and attaches every pod. On failure it tears down what
// it built. It fails if a lab is already up in opts.StateDir.
func Up(ctx context.Context, o Options) (*Lab, error) {
	if _, ok, err := Load(o.StateDir); err != nil {
		return nil, err
	} else if ok {
		return nil, fmt.Errorf("%w in %s: run `kai-lab down --state-dir %s` first", ErrRunning, o.StateDir, o.StateDir)
	}
	if o.Servers < 1 || o.Servers > 200 {
		return nil, fmt.Errorf("--servers must be 1..200, got %d", o.Servers)
	}
	if o.LegacyServers < 0 || o.LegacyServers > 50 {
		return nil, fmt.Errorf("--legacy-servers must be 0..50, got %d", o.LegacyServers)
	}
	if o.PodsPerServer < 1 || o.PodsPerServer > 15 {
		return nil, fmt.Errorf("--pods-per-server must be 1..15, got %d", o.PodsPerServer)
	}
	if o.Reflectors == 0 {
		o.Reflectors = 1
	}
	if o.Reflectors < 1 || o.Reflectors > 2 {
		return nil, fmt.Errorf("--reflectors must be 1 or 2, got %d", o.Reflectors)
	}
	if o.SpareVFs < 0 || o.PodsPerServer+o.SpareVFs > 30 {
		return nil, fmt.Errorf("--spare-vfs must be 0..%d, got %d", 30-o.PodsPerServer, o.SpareVFs)
	}
	nl, err := netlab.New(o.Prefix, o.StateDir)
	if err != nil {
		return nil, err
	}
	switch o.Fabric {
	case "":
		o.Fabric = FabricGoBGP
	case FabricGoBGP, FabricFRR:
	default:
		return nil, fmt.Errorf("fabric %q: want %s or %s", o.Fabric, FabricGoBGP, FabricFRR)
	}
	s := &State{Dir: o.StateDir, Prefix: o.Prefix, BinDir: o.BinDir, Direct: o.Direct, Fabric: o.Fabric,
		RRs: []string{RRAddr, RR2Addr}[:o.Reflectors], VFs: o.PodsPerServer + o.SpareVFs, DuplicateSeconds: o.DuplicateSeconds}
	nl.OnChange = func(r netlab.Record) {
		s.Record = r
		_ = s.save()
	}
	if err := s.save(); err != nil {
		return nil, err
	}
	if err := build(ctx, nl, s, o); err != nil {
		if derr := Down(o.StateDir); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	return &Lab{State: s, nl: nl}, s.save()
}

func build(ctx context.Context, nl *netlab.Lab, s *State, o Options) error {
	fab, err := nl.AddNS("fabric")
	if err != nil {
		return err
	}
	for _, args := range [][]string{
		{"ip", "link", "add", "br0", "mtu", fmt.Sprint(underMTU), "type", "bridge"},
		{"ip", "addr", "add", RRAddr + "/24", "dev", "br0"},
		{"ip", "link", "set", "br0", "up"},
		// Segments entering a userspace datapath must carry full checksums.
		{"ethtool", "-K", "br0", "tx", "off"},
	} {
		if _, err := nl.In(fab, args...); err != nil {
			return err
		}
	}
	var clients []string
	for i := range o.Servers {
		n := i + 1
		srv := Server{
			Name: fmt.Sprintf("server%d", n), Node: fmt.Sprintf("server%d", n),
			Addr: fmt.Sprintf("198.18.0.%d", 10+n), HWAddr: fmt.Sprintf("02:18:00:00:00:%02x", 10+n),
		}
		clients = append(clients, srv.Addr)
		s.Servers = append(s.Servers, srv)
	}
	for n := 1; n <= o.LegacyServers; n++ {
		clients = append(clients, fmt.Sprintf("198.18.0.%d", 100+n))
	}
	for i, addr := range s.RRs {
		if err := startReflector(nl, fab, i+1, addr, o, clients); err != nil {
			return fmt.Errorf("route reflector %s: %w", addr, err)
		}
	}
	var ca *CA
	if !o.Direct {
		if err := os.MkdirAll(filepath.Join(o.StateDir, "certs"), 0o700); err != nil {
			return err
		}
		if ca, err = NewCA(filepath.Join(o.StateDir, "certs"), "kai-lab-ca"); err != nil {
			return err
		}
	}
	for i := range s.Servers {
		srv := &s.Servers[i]
		if err := buildServer(nl, fab, srv, o); err != nil {
			return fmt.Errorf("%s: %w", srv.Name, err)
		}
		if !o.Direct {
			if err := buildHost(nl, srv, i+1, s.VFs, ca, o.StateDir); err != nil {
				return fmt.Errorf("%s: %w", srv.Name, err)
			}
		}
		if err := os.WriteFile(srv.Config, []byte(dpuConfig(srv, s)), 0o644); err != nil {
			return err
		}
		for j := range o.PodsPerServer {
			p := Pod{
				Name: fmt.Sprintf("pod%d-%d", i+1, j+1), Server: srv.Name,
				Network: Networks[j%len(Networks)].Name,
				MAC:     fmt.Sprintf("02:00:00:00:%02x:%02x", i+1, j+1),
				IP:      fmt.Sprintf("100.64.%d.%d", 1+i/16, (i%16)*16+j+1),
				VF:      uint32(j), PCI: vfPCI(j), Rep: fmt.Sprintf("pf0vf%d", j),
			}
			if err := buildPod(nl, srv, &p, o.Direct); err != nil {
				return fmt.Errorf("%s: %w", p.Name, err)
			}
			s.Pods = append(s.Pods, p)
		}
	}
	if err := s.save(); err != nil {
		return err
	}
	for i := range s.Servers {
		if err := StartDPU(ctx, nl, &s.Servers[i], o.BinDir); err != nil {
			return err
		}
		if !o.Direct {
			if err := StartHost(ctx, nl, &s.Servers[i], o.BinDir); err != nil {
				return err
			}
		}
	}
	for n := 1; n <= o.LegacyServers; n++ {
		if err := buildLegacy(nl, s, fab, n, o.PodsPerServer); err != nil {
			return fmt.Errorf("legacy server %d: %w", n, err)
		}
	}
	if err := s.AttachAll(ctx); err != nil {
		return err
	}
	s.announceLegacyPods()
	return s.WaitConverged(ctx)
}

// WaitConverged waits until every DPU has learned the type-2 MAC routes of
// every pod on the other servers and their type-3 routes.
func (s *State) WaitConverged(ctx context.Context) error {
	for _, srv := range s.Servers {
		want := map[string]bool{}
		for _, p := range s.Pods {
			if p.Server != srv.Name {
				want[p.MAC] = true
			}
		}
		missing := -1
		for missing != 0 {
			if ctx.Err() != nil {
				return fmt.Errorf("%s learned all but %d remote MACs before the deadline: %w", srv.Name, missing, ctx.Err())
			}
			rs, err := s.routes(ctx, &srv)
			if err == nil {
				missing = len(want)
				vteps := map[string]bool{}
				for _, r := range rs {
					if !r.GetLocal() && want[r.GetMac()] && r.GetIp() == "" {
						missing--
					}
					if !r.GetLocal() && r.GetType() == "inclusive-multicast" {
						vteps[r.GetVtep()] = true
					}
				}
				if len(vteps) < len(s.Servers)-1 {
					missing = max(missing, 1)
				}
			}
			if missing != 0 {
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	return nil
}

func buildServer(nl *netlab.Lab, fab string, srv *Server, o Options) error {
	ns, err := nl.AddNS(srv.Name)
	if err != nil {
		return err
	}
	srv.NS = ns
	fabEnd := fmt.Sprintf("up-%s", srv.Name)
	if err := nl.Veth(ns, "up0", fab, fabEnd, underMTU); err != nil {
		return err
	}
	if _, err := nl.In(fab, "ip", "link", "set", fabEnd, "master", "br0"); err != nil {
		return err
	}
	if _, err := nl.In(fab, "ethtool", "-K", fabEnd, "tx", "off"); err != nil {
		return err
	}
	ovs, err := nl.StartOVS(ns, srv.Name+"-ovs")
	if err != nil {
		return err
	}
	srv.OVSDir = ovs.Dir
	if err := ovs.Underlay("up0", srv.Addr+"/24", srv.HWAddr, underMTU); err != nil {
		return err
	}
	srv.Socket = filepath.Join(o.StateDir, srv.Name+"-dpu.sock")
	srv.Config = filepath.Join(o.StateDir, srv.Name+"-dpu.yaml")
	srv.StateDir = filepath.Join(o.StateDir, srv.Name+"-dpu-state")
	return nil
}

func dpuConfig(srv *Server, s *State) string {
	nets := ""
	var allowed []string
	for _, n := range Networks {
		nets += fmt.Sprintf("  - {name: %s, vni: %d}\n", n.Name, n.VNI)
		allowed = append(allowed, n.Name)
	}
	nets += fmt.Sprintf("  - {name: %s, vni: 10300}   # defined, but no host may use it\n", RestrictedNetwork)
	api := fmt.Sprintf(`api: {listen: "unix:%s"}`, srv.Socket)
	if srv.HostNS != "" {
		api = fmt.Sprintf(`api:
  listen: "%s:%d"      # the management link to the host, mutual TLS
  tls: {ca: %s, cert: %s, key: %s}
  socket: "unix:%s"    # operators: kaictl, kai-lab
hosts:
  - {node: %s, networks: [%s]}`, srv.MgmtDPU, apiPort, srv.CA, srv.DPUCert, srv.DPUKey, srv.Socket, srv.Node, strings.Join(allowed, ", "))
	}
	var neighbors []string
	for _, rr := range s.RRs {
		neighbors = append(neighbors, fmt.Sprintf("{address: %s, asn: %d}", rr, ASN))
	}
	mobility := ""
	if s.DuplicateSeconds > 0 {
		mobility = fmt.Sprintf("macMobility: {duplicateSeconds: %d}   # chaos moves pods faster than workloads do\n", s.DuplicateSeconds)
	}
	return fmt.Sprintf(`# kai-dpu config written by kai-lab for %s
node: %s
stateDir: %s
%s
bgp:
  asn: %d
  routerID: %s
  neighbors: [%s]
  initialSyncSeconds: 10
vtep: {address: %s}
dataplane:
  backend: ovs
  ovs: {db: "unix:%s", runDir: %s, bridge: br-kai, datapathType: netdev}
representors: emulated
%snetworks:
%s`, srv.Name, srv.Node, srv.StateDir, api, ASN, srv.Addr, strings.Join(neighbors, ", "), srv.Addr,
		filepath.Join(srv.OVSDir, "db.sock"), srv.OVSDir, mobility, nets)
}

// buildPod creates the pod's namespace. With host agents the VF is moved
// in later by the CNI chain; in direct mode the lab wires it itself.
func buildPod(nl *netlab.Lab, srv *Server, p *Pod, direct bool) error {
	ns, err := nl.AddNS(p.Name)
	if err != nil {
		return err
	}
	p.NS = ns
	if !direct {
		return nil
	}
	if err := nl.Veth(srv.NS, p.Rep, ns, "eth0", 1500); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"ip", "link", "set", "eth0", "address", p.MAC},
		{"ip", "addr", "add", p.IP + "/16", "dev", "eth0"},
		// Packets enter the userspace datapath through AF_PACKET with
		// partial checksums; a real VF has no such problem.
		{"ethtool", "-K", "eth0", "tx", "off"},
	} {
		if _, err := nl.In(ns, args...); err != nil {
			return err
		}
	}
	return nil
}

// StartDPU starts kai-dpu for a server and waits for its API.
func StartDPU(ctx context.Context, nl *netlab.Lab, srv *Server, binDir string) error {
	p, err := nl.Start(srv.NS, srv.Name+"-kai-dpu", nil, filepath.Join(binDir, "kai-dpu"), "--config", srv.Config, "--log-level", "debug")
	if err != nil {
		return err
	}
	return WaitDPU(ctx, p, srv)
}

// WaitDPU waits until the kai-dpu process p answers on srv's API socket.
func WaitDPU(ctx context.Context, p *netlab.Proc, srv *Server) error {
	conn, err := Dial(srv)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	insp := kaiv1.NewInspectClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if p.Exited() {
			return fmt.Errorf("kai-dpu on %s exited:\n%s", srv.Name, p.Tail(2000))
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := insp.GetInfo(cctx, &kaiv1.GetInfoRequest{})
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("kai-dpu on %s not answering: %w", srv.Name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Dial connects to a server's kai-dpu API.
func Dial(srv *Server) (*grpc.ClientConn, error) {
	return grpc.NewClient("unix:"+srv.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// Attachment is the attachment of pod p.
func (p Pod) Attachment(node string) *kaiv1.Attachment {
	return &kaiv1.Attachment{
		Id: node + "/" + p.Name + "-uid/net1", Node: node, Network: p.Network,
		Pod: &kaiv1.Pod{Namespace: "default", Name: p.Name, Uid: p.uid()},
		Vf:  &kaiv1.VF{PfIndex: 0, VfIndex: p.VF, PciAddress: vfPCI(int(p.VF))},
		Mac: p.MAC, Ips: []string{p.IP},
	}
}

// Server returns the server of a pod.
func (s *State) Server(name string) *Server {
	for i := range s.Servers {
		if s.Servers[i].Name == name {
			return &s.Servers[i]
		}
	}
	return nil
}

// AttachAll attaches every pod: through the CNI chain (host-device +
// kai-cni -> kai-host -> DPU), or in direct mode through the DPU's API.
func (s *State) AttachAll(ctx context.Context) error {
	if !s.Direct {
		for _, p := range s.Pods {
			if p.Legacy {
				continue
			}
			if out, err := s.CNI(ctx, p.Name, "add", nil); err != nil {
				return fmt.Errorf("CNI ADD %s: %w: %s", p.Name, err, out)
			}
		}
		return nil
	}
	for _, p := range s.Pods {
		if p.Legacy {
			continue
		}
		if err := AttachDirect(ctx, s.Server(p.Server), p); err != nil {
			return err
		}
	}
	return nil
}

// AttachDirect attaches p through srv's kai-dpu API (no host agent) and
// requires it Ready.
func AttachDirect(ctx context.Context, srv *Server, p Pod) error {
	conn, err := Dial(srv)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	resp, err := kaiv1.NewAttachmentsClient(conn).Attach(ctx, &kaiv1.AttachRequest{Attachment: p.Attachment(srv.Node)})
	if err != nil {
		return fmt.Errorf("attach %s: %w", p.Name, err)
	}
	if ph := resp.GetAttachment().GetStatus().GetPhase(); ph != kaiv1.Phase_PHASE_READY {
		return fmt.Errorf("attach %s: %s: %s", p.Name, ph, resp.GetAttachment().GetStatus().GetReason())
	}
	return nil
}
