package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/cmd/kai-lab/netlab"
	"github.com/kai-dpu/kai/host/cni"
)

// The device-plugin resource that forms Kai's VF pool in the lab.
const (
	resourcePrefix = "kai.dev"
	resourceName   = "evpn_vf"
	// RestrictedNetwork exists on every DPU but no host may use it: the
	// hosts policy denies it (PermissionDenied).
	RestrictedNetwork = "green"
	apiPort           = 50051
)

// vfPCI is the emulated PCI address of VF index j (0000:03:00.2 + j).
func vfPCI(j int) string { return fmt.Sprintf("0000:03:%02x.%d", (j+2)/8, (j+2)%8) }

// buildHost creates a server's host namespace: the management link to its
// DPU, the VFs (veth pairs host "vfJ" <-> DPU "pf0vfJ", one spare outside
// the device-plugin pool), certificates and kai-host's config.
func buildHost(nl *netlab.Lab, srv *Server, n int, vfs int, ca *CA, dir string) error {
	hns, err := nl.AddNS(srv.Name + "-host")
	if err != nil {
		return err
	}
	srv.HostNS = hns
	srv.MgmtHost, srv.MgmtDPU = fmt.Sprintf("198.19.%d.1", n), fmt.Sprintf("198.19.%d.2", n)
	if err := nl.Veth(hns, "mgmt0", srv.NS, "mgmt0", 1500); err != nil {
		return err
	}
	if _, err := nl.In(hns, "ip", "addr", "add", srv.MgmtHost+"/24", "dev", "mgmt0"); err != nil {
		return err
	}
	if _, err := nl.In(srv.NS, "ip", "addr", "add", srv.MgmtDPU+"/24", "dev", "mgmt0"); err != nil {
		return err
	}
	for j := range vfs + 1 {
		vf := fmt.Sprintf("vf%d", j)
		if err := nl.Veth(hns, vf, srv.NS, fmt.Sprintf("pf0vf%d", j), 1500); err != nil {
			return err
		}
		// A VF's MAC is set by the PF's admin; the pod keeps it.
		for _, args := range [][]string{
			{"ip", "link", "set", vf, "address", fmt.Sprintf("02:00:00:00:%02x:%02x", n, j+1)},
			// Packets enter the userspace datapath through AF_PACKET
			// with partial checksums; a real VF has no such problem.
			{"ethtool", "-K", vf, "tx", "off"},
		} {
			if _, err := nl.In(hns, args...); err != nil {
				return err
			}
		}
	}
	certs := filepath.Join(dir, "certs")
	srv.DPUCert, srv.DPUKey, err = ca.Issue(certs, srv.Name+"-dpu", true, srv.MgmtDPU)
	if err != nil {
		return err
	}
	srv.HostCert, srv.HostKey, err = ca.Issue(certs, srv.Node, false)
	if err != nil {
		return err
	}
	srv.CA = ca.Path
	srv.HostSocket = filepath.Join(dir, srv.Name+"-host.sock")
	srv.HostConfig = filepath.Join(dir, srv.Name+"-host.yaml")
	pool := filepath.Join(dir, srv.Name+"-pcidp.json")
	var inPool []string
	var ids []string
	for j := range vfs + 1 {
		if j < vfs {
			inPool = append(inPool, vfPCI(j))
		}
		ids = append(ids, fmt.Sprintf("    - {pci: %q, pf: 0, vf: %d}", vfPCI(j), j))
	}
	pcidp, _ := json.MarshalIndent(map[string]any{"resourceList": []any{map[string]any{
		"resourcePrefix": resourcePrefix, "resourceName": resourceName, "deviceType": "netDevice",
		"selectors": map[string]any{"pciAddresses": inPool},
	}}}, "", "  ")
	if err := os.WriteFile(pool, pcidp, 0o644); err != nil {
		return err
	}
	hostCfg := fmt.Sprintf(`# kai-host config written by kai-lab for %s
node: %s
stateDir: %s
dpu: {address: "%s:%d", ca: %s, cert: %s, key: %s, serverName: %s-dpu}
cni: {socket: %s}
identity:
  mode: emulated
  vfs:
%s
devicePlugin: {config: %s, resourceName: %s/%s}
`, srv.Name, srv.Node, filepath.Join(dir, srv.Name+"-host-state"), srv.MgmtDPU, apiPort, srv.CA, srv.HostCert, srv.HostKey, srv.Name,
		srv.HostSocket, strings.Join(ids, "\n"), pool, resourcePrefix, resourceName)
	return os.WriteFile(srv.HostConfig, []byte(hostCfg), 0o644)
}

// StartHost starts kai-host for a server and waits until it has synced
// with its DPU.
func StartHost(ctx context.Context, nl *netlab.Lab, srv *Server, binDir string) error {
	p, err := startHostProc(nl, srv, binDir)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if p.Exited() {
			return fmt.Errorf("kai-host on %s exited:\n%s", srv.Name, p.Tail(2000))
		}
		_, err := HostStatus(ctx, srv.HostSocket)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kai-host on %s not ready: %w", srv.Name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func startHostProc(nl *netlab.Lab, srv *Server, binDir string) (*netlab.Proc, error) {
	return nl.Start(srv.HostNS, srv.Name+"-kai-host", nil, filepath.Join(binDir, "kai-host"), "--config", srv.HostConfig, "--log-level", "debug")
}

// HostStatus asks kai-host at socket (a path: unix sockets do not depend
// on the network namespace) whether it is ready, as kai-cni's STATUS does,
// and returns the DPU's boot id.
func HostStatus(ctx context.Context, socket string) (string, error) {
	c, closer, err := cni.DialHost(socket)
	if err != nil {
		return "", err
	}
	defer func() { _ = closer.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := c.Status(ctx, &kaiv1.HostStatusRequest{})
	if err != nil {
		return "", err
	}
	if !st.GetReady() {
		return "", errors.New(st.GetReason())
	}
	return st.GetDpuBootId(), nil
}

// ConfList is the CNI chain that attaches pod p, as Multus would run it:
// host-device moves the VF into the pod and assigns its IP, kai-cni
// reports it to kai-host and waits for the DPU. deviceID plays Multus.
func (s *State) ConfList(p Pod) ([]byte, error) {
	srv := s.Server(p.Server)
	return json.Marshal(map[string]any{
		"cniVersion": "1.1.0",
		"name":       p.Network,
		"plugins": []any{
			map[string]any{"type": "host-device", "device": fmt.Sprintf("vf%d", p.VF),
				"ipam": map[string]any{"type": "static", "addresses": []any{map[string]any{"address": p.IP + "/16"}}}},
			map[string]any{"type": "kai-cni", "network": p.Network, "socket": srv.HostSocket,
				"deviceID": p.PCI, "timeoutSeconds": 30},
		},
	})
}

// CNI performs op (add, del, check, status, gc) for a pod of the record
// with libcni and the plugins in the lab's bin dir; confOverride, when set,
// replaces the pod's conflist.
func (s *State) CNI(ctx context.Context, pod, op string, confOverride []byte) (string, error) {
	p, ok := s.Pod(pod)
	if !ok {
		return "", fmt.Errorf("no pod %q", pod)
	}
	return s.cniFor(ctx, p, op, confOverride)
}

// Pod returns a pod by name.
func (s *State) Pod(name string) (Pod, bool) {
	for _, p := range s.Pods {
		if p.Name == name {
			return p, true
		}
	}
	return Pod{}, false
}

// cniFor runs op for one incarnation of a pod, which need not be the one
// in the lab record (a pod half-way through a move has two), in its
// server's host namespace as a container runtime would: host-device takes
// the VF from there and gives it back there on DEL. It enters that
// namespace itself, on a thread of its own, so whatever namespace the
// caller is in (the root one, say) is never touched.
func (s *State) cniFor(ctx context.Context, p Pod, op string, confOverride []byte) (string, error) {
	srv := s.Server(p.Server)
	if srv == nil || srv.HostNS == "" || p.Legacy {
		return "", fmt.Errorf("pod %s: server %q has no host agent", p.Name, p.Server)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine, and its
		// namespace with it; the plugins inherit it when forked from it.
		runtime.LockOSThread()
		if err := netlab.EnterNS(srv.HostNS); err != nil {
			done <- result{err: err}
			return
		}
		out, err := runCNI(ctx, s, p, op, confOverride)
		done <- result{out, err}
	}()
	r := <-done
	return r.out, r.err
}

func runCNI(ctx context.Context, s *State, p Pod, op string, confOverride []byte) (string, error) {
	raw := confOverride
	if raw == nil {
		var err error
		if raw, err = s.ConfList(p); err != nil {
			return "", err
		}
	}
	conf, err := libcni.ConfListFromBytes(raw)
	if err != nil {
		return "", fmt.Errorf("conflist: %w", err)
	}
	cn := libcni.NewCNIConfigWithCacheDir([]string{s.BinDir}, filepath.Join(s.Dir, "cni-cache"), nil)
	rt := p.runtimeConf()
	switch op {
	case "add":
		res, err := cn.AddNetworkList(ctx, conf, rt)
		if err != nil {
			return "", err
		}
		out, _ := json.Marshal(res)
		return string(out), nil
	case "del":
		return "", cn.DelNetworkList(ctx, conf, rt)
	case "check":
		return "", cn.CheckNetworkList(ctx, conf, rt)
	case "status":
		return "", cn.GetStatusNetworkList(ctx, conf)
	case "gc":
		// Keep every pod of this server except this one.
		var valid []types.GCAttachment
		for _, o := range s.Pods {
			if o.Server == p.Server && o.Name != p.Name {
				valid = append(valid, types.GCAttachment{ContainerID: o.containerID(), IfName: "eth0"})
			}
		}
		return "", cn.GCNetworkList(ctx, conf, &libcni.GCArgs{ValidAttachments: valid})
	default:
		return "", fmt.Errorf("unknown CNI operation %q (add, del, check, status, gc)", op)
	}
}

// containerID and uid name one incarnation of a pod: a pod that moves is
// a new pod on its new server (as with a live migration), so both change.
func (p Pod) containerID() string {
	if p.Gen == 0 {
		return p.Name + "-sandbox"
	}
	return fmt.Sprintf("%s-sandbox-g%d", p.Name, p.Gen)
}

func (p Pod) uid() string {
	if p.Gen == 0 {
		return p.Name + "-uid"
	}
	return fmt.Sprintf("%s-uid-g%d", p.Name, p.Gen)
}

func (p Pod) runtimeConf() *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: p.containerID(), NetNS: "/run/netns/" + p.NS, IfName: "eth0",
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", p.Name}, {"K8S_POD_UID", p.uid()}},
	}
}
