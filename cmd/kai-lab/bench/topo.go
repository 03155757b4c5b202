package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kai-dpu/kai/cmd/kai-lab/lab"
	"github.com/kai-dpu/kai/cmd/kai-lab/netlab"
)

// The BGP topology: the injector in the fabric namespace (this process),
// one kai-dpu with its OVS, a remote Linux VTEP with a pod (real packets
// for the restart scenario) and an FRR VTEP, all on one bridge.
const (
	asn       = 65000
	injAddr   = "198.18.0.1"
	dpuAddr   = "198.18.0.11"
	frrAddr   = "198.18.0.21"
	rvtepAddr = "198.18.0.31"
	vni       = 10100
	underMTU  = 1600
	bridge    = "br-kai"
	metricsAt = dpuAddr + ":9464"

	kpodMAC = "02:00:00:00:01:01"
	kpodIP  = "100.64.1.1"
	rpodMAC = "02:00:00:00:02:01"
	rpodIP  = "100.64.2.1"
)

// topo is the running BGP topology.
type topo struct {
	nl     *netlab.Lab
	binDir string
	dir    string
	fab    string
	dpu    string
	kpod   string
	rvtep  string
	rpod   string
	frr    string
	ovs    *netlab.OVS
	kai    *netlab.Proc
	srv    lab.Server // for lab.Dial and Ofctl
}

func buildTopo(nl *netlab.Lab, binDir, dir string) (*topo, error) {
	t := &topo{nl: nl, binDir: binDir, dir: dir, fab: nl.NS("fab")}
	sh := func(ns string, cmds ...[]string) error {
		for _, c := range cmds {
			if _, err := nl.In(ns, c...); err != nil {
				return err
			}
		}
		return nil
	}
	// This process runs in the fabric namespace the outer process created.
	if err := sh(t.fab,
		[]string{"ip", "link", "add", "br0", "mtu", fmt.Sprint(underMTU), "type", "bridge"},
		[]string{"ip", "addr", "add", injAddr + "/16", "dev", "br0"},
		[]string{"ip", "link", "set", "br0", "up"},
		[]string{"ethtool", "-K", "br0", "tx", "off"},
	); err != nil {
		return nil, err
	}
	uplink := func(name string) (string, error) {
		ns, err := nl.AddNS(name)
		if err != nil {
			return "", err
		}
		end := "up-" + name
		if err := nl.Veth(ns, "up0", t.fab, end, underMTU); err != nil {
			return "", err
		}
		return ns, sh(t.fab, []string{"ip", "link", "set", end, "master", "br0"}, []string{"ethtool", "-K", end, "tx", "off"})
	}
	var err error
	if t.dpu, err = uplink("dpu"); err != nil {
		return nil, err
	}
	if t.ovs, err = nl.StartOVS(t.dpu, "ovs"); err != nil {
		return nil, err
	}
	if err := t.ovs.Underlay("up0", dpuAddr+"/16", "02:18:00:00:00:11", underMTU); err != nil {
		return nil, err
	}
	// The local pod: an emulated VF (veth) whose DPU end is the representor.
	if t.kpod, err = nl.AddNS("kpod"); err != nil {
		return nil, err
	}
	if err := nl.Veth(t.dpu, "pf0vf0", t.kpod, "eth0", 1500); err != nil {
		return nil, err
	}
	if err := sh(t.kpod, []string{"ip", "link", "set", "eth0", "address", kpodMAC},
		[]string{"ip", "addr", "add", kpodIP + "/16", "dev", "eth0"}, []string{"ethtool", "-K", "eth0", "tx", "off"}); err != nil {
		return nil, err
	}
	// The remote VTEP: Linux bridge + VXLAN with static FDB entries towards
	// the DPU, so its pod answers whatever kai-dpu does.
	if t.rvtep, err = uplink("rvtep"); err != nil {
		return nil, err
	}
	if t.rpod, err = nl.AddNS("rpod"); err != nil {
		return nil, err
	}
	if err := nl.Veth(t.rvtep, "rp0", t.rpod, "eth0", 1500); err != nil {
		return nil, err
	}
	// The remote VTEP is static: no BGP, the DPU as its flood target and
	// the local pod's MAC pinned to it.
	if err := nl.LinuxVTEP(t.rvtep, "br-blue", "vx-blue", vni, rvtepAddr); err != nil {
		return nil, err
	}
	if err := sh(t.rvtep,
		[]string{"ip", "addr", "add", rvtepAddr + "/16", "dev", "up0"},
		[]string{"ip", "link", "set", "rp0", "master", "br-blue"},
		[]string{"bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx-blue", "dst", dpuAddr},
		[]string{"bridge", "fdb", "add", kpodMAC, "dev", "vx-blue", "dst", dpuAddr, "static"},
	); err != nil {
		return nil, err
	}
	if err := sh(t.rpod, []string{"ip", "link", "set", "eth0", "address", rpodMAC},
		[]string{"ip", "addr", "add", rpodIP + "/16", "dev", "eth0"}); err != nil {
		return nil, err
	}
	if t.frr, err = uplink("frr"); err != nil {
		return nil, err
	}
	if err := sh(t.frr, []string{"ip", "addr", "add", frrAddr + "/16", "dev", "up0"}); err != nil {
		return nil, err
	}
	t.srv = lab.Server{Name: "dpu", Node: "bench", NS: t.dpu, OVSDir: t.ovs.Dir, Socket: filepath.Join(dir, "dpu.sock"),
		Config: filepath.Join(dir, "dpu.yaml"), StateDir: filepath.Join(dir, "dpu-state")}
	return t, os.WriteFile(t.srv.Config, []byte(t.dpuConfig()), 0o644)
}

func (t *topo) dpuConfig() string {
	return fmt.Sprintf(`# kai-dpu config written by kai-lab bench
node: bench
stateDir: %s
api: {listen: "unix:%s"}
metrics: {listen: "%s", pprof: true}
bgp:
  asn: %d
  routerID: %s
  neighbors: [{address: %s, asn: %d}]
  initialSyncSeconds: 30
vtep: {address: %s}
dataplane:
  backend: ovs
  ovs: {db: "unix:%s", runDir: %s, bridge: %s, datapathType: netdev}
representors: emulated
networks:
  - {name: blue, vni: %d}
`, t.srv.StateDir, t.srv.Socket, metricsAt, asn, dpuAddr, injAddr, asn, dpuAddr, t.ovs.DBSocket(), t.ovs.Dir, bridge, vni)
}

// startKai starts kai-dpu (keeping its state dir unless fresh) and waits
// for its API.
func (t *topo) startKai(ctx context.Context, fresh bool) error {
	if fresh {
		if err := os.RemoveAll(t.srv.StateDir); err != nil {
			return err
		}
		// A fresh start also means an empty bridge: no flows from before.
		if _, err := t.ovs.Vsctl("--if-exists", "del-br", bridge); err != nil {
			return err
		}
	}
	p, err := t.nl.Start(t.dpu, "kai-dpu", nil, filepath.Join(t.binDir, "kai-dpu"), "--config", t.srv.Config)
	if err != nil {
		return err
	}
	t.kai = p
	return lab.WaitDPU(ctx, p, &t.srv)
}

// attachPod attaches the local pod through kai-dpu's API (no host agent:
// this topology measures the DPU side).
func (t *topo) attachPod(ctx context.Context) error {
	return lab.AttachDirect(ctx, &t.srv, lab.Pod{Name: "kpod", Network: "blue", MAC: kpodMAC, IP: kpodIP})
}

// ofctl runs ovs-ofctl against br-kai.
func (t *topo) ofctl(cmd string, args ...string) (string, error) {
	return t.ovs.Ofctl(cmd, bridge, args...)
}

// remoteFlows counts kai's remote-MAC flows (table 20, from local ports)
// without printing them; the network's BUM flow matches too.
func (t *topo) remoteFlows() (int, error) {
	out, err := t.ofctl("dump-aggregate", "cookie=0x4b00000000000000/0xff00000000000000,table=20,reg0=0")
	if err != nil {
		return 0, err
	}
	return flowCount(out)
}

// flowCount parses ovs-ofctl dump-aggregate output.
func flowCount(out string) (int, error) {
	_, rest, ok := strings.Cut(out, "flow_count=")
	if !ok {
		return 0, fmt.Errorf("unparsable dump-aggregate output %q", out)
	}
	return strconv.Atoi(strings.Fields(rest)[0])
}

// rss of a process in bytes.
func rss(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// cpuTime is a process's user+system CPU time.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	_, rest, _ := strings.Cut(string(data), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	// USER_HZ is 100 on Linux.
	return time.Duration(u+s) * 10 * time.Millisecond, nil
}
