package cni_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/host/cni"
)

// fakeHost is an in-memory kai-host: it records every request, keeps the
// attachments it was given, and returns the configured errors.
type fakeHost struct {
	kaiv1.UnimplementedHostServer

	mu          sync.Mutex
	adds        []*kaiv1.HostAddRequest
	dels        []string
	checks      []string
	gcs         [][]string
	attachments map[string]*kaiv1.Attachment

	addErr, delErr, checkErr, statusErr, gcErr error
	// addPhase is the phase Add reports; READY when unset.
	addPhase  kaiv1.Phase
	addReason string
	// status is what Status returns; ready when nil.
	status *kaiv1.HostStatusResponse
}

func (f *fakeHost) Add(_ context.Context, req *kaiv1.HostAddRequest) (*kaiv1.HostAddResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.adds = append(f.adds, req)
	if f.addErr != nil {
		return nil, f.addErr
	}
	phase := f.addPhase
	if phase == kaiv1.Phase_PHASE_UNSPECIFIED {
		phase = kaiv1.Phase_PHASE_READY
	}
	att := &kaiv1.Attachment{
		Id: req.GetId(), Pod: req.GetPod(), Network: req.GetNetwork(), Mac: req.GetMac(), Ips: req.GetIps(),
		Vf:     &kaiv1.VF{PciAddress: req.GetPciAddress()},
		Status: &kaiv1.AttachmentStatus{Phase: phase, Reason: f.addReason},
	}
	if f.attachments == nil {
		f.attachments = map[string]*kaiv1.Attachment{}
	}
	f.attachments[req.GetId()] = att
	return &kaiv1.HostAddResponse{Attachment: att}, nil
}

// Del answers NotFound for unknown attachments, which kai-cni must treat
// as success; the real kai-host answers OK, and both must work.
func (f *fakeHost) Del(_ context.Context, req *kaiv1.HostDelRequest) (*kaiv1.HostDelResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dels = append(f.dels, req.GetId())
	if f.delErr != nil {
		return nil, f.delErr
	}
	if _, ok := f.attachments[req.GetId()]; !ok {
		return nil, status.Errorf(codes.NotFound, "attachment %s not known", req.GetId())
	}
	delete(f.attachments, req.GetId())
	return &kaiv1.HostDelResponse{}, nil
}

func (f *fakeHost) Check(_ context.Context, req *kaiv1.HostCheckRequest) (*kaiv1.HostCheckResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks = append(f.checks, req.GetId())
	if f.checkErr != nil {
		return nil, f.checkErr
	}
	att, ok := f.attachments[req.GetId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "attachment %s not known", req.GetId())
	}
	return &kaiv1.HostCheckResponse{Attachment: att}, nil
}

func (f *fakeHost) Status(context.Context, *kaiv1.HostStatusRequest) (*kaiv1.HostStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.statusErr != nil {
		return nil, f.statusErr
	}
	if f.status != nil {
		return f.status, nil
	}
	return &kaiv1.HostStatusResponse{Ready: true}, nil
}

func (f *fakeHost) GC(_ context.Context, req *kaiv1.HostGCRequest) (*kaiv1.HostGCResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gcs = append(f.gcs, req.GetValidIds())
	if f.gcErr != nil {
		return nil, f.gcErr
	}
	return &kaiv1.HostGCResponse{}, nil
}

// reset forgets all requests, attachments and configured failures.
func (f *fakeHost) reset() {
	f.adds, f.dels, f.checks, f.gcs, f.attachments = nil, nil, nil, nil, nil
	f.addErr, f.delErr, f.checkErr, f.statusErr, f.gcErr = nil, nil, nil, nil, nil
	f.addPhase, f.addReason, f.status = kaiv1.Phase_PHASE_UNSPECIFIED, "", nil
}

// set runs fn under the fake's lock, for changing its behaviour between calls.
func (f *fakeHost) set(fn func(f *fakeHost)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// sockDir returns a short temporary directory: unix socket paths are
// limited to 108 bytes and t.TempDir() embeds the (long) test name.
func sockDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kai-cni")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// startFakeHost serves a fakeHost on a unix socket and returns its path.
func startFakeHost(t *testing.T) (string, *fakeHost) {
	t.Helper()
	socket := filepath.Join(sockDir(t), "host.sock")
	lis, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeHost{}
	srv := grpc.NewServer()
	kaiv1.RegisterHostServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return socket, fake
}

// missingSocket is a socket path nothing listens on.
func missingSocket(t *testing.T) string {
	return filepath.Join(sockDir(t), "absent.sock")
}

// newPlugin returns a Plugin that looks for device-info files in a
// temporary directory and logs into a buffer.
func newPlugin(t *testing.T) (*cni.Plugin, string, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	log := &bytes.Buffer{}
	p := &cni.Plugin{
		Dial: cni.DialHost,
		DeviceInfoPath: func(netName, containerID, ifName string) string {
			return filepath.Join(dir, netName+"-"+containerID+"_"+ifName)
		},
		Log: log,
	}
	return p, dir, log
}

// requireRoot skips tests that need network namespaces when not root,
// except in CI, where skipping would hide that they never ran.
func requireRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs root (network namespaces); skipped in -short mode")
	}
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("this test needs root (network namespaces) and CI must run it as root")
	}
	t.Skip("needs root (network namespaces); run `sudo go test ./host/cni`")
}

// podNS creates a pod netns holding a link ifName with mac, standing
// in for the VF that sriov-cni or host-device moved there.
func podNS(t *testing.T, ifName, mac string) ns.NetNS {
	t.Helper()
	requireRoot(t)
	podNS, err := testutils.NewNS()
	if err != nil {
		t.Fatalf("create netns: %v", err)
	}
	t.Cleanup(func() {
		_ = podNS.Close()
		_ = testutils.UnmountNS(podNS)
	})
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	err = podNS.Do(func(ns.NetNS) error {
		// A veth, not a dummy: the lab's "VFs" are veths, and dummy needs a
		// kernel module that is not always loaded.
		return netlink.LinkAdd(&netlink.Veth{
			LinkAttrs: netlink.LinkAttrs{Name: ifName, HardwareAddr: hw},
			PeerName:  "peer0",
		})
	})
	if err != nil {
		t.Fatalf("create %s in pod netns: %v", ifName, err)
	}
	return podNS
}

// setMAC changes the MAC of ifName inside netns.
func setMAC(t *testing.T, netns ns.NetNS, ifName, mac string) {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	err = netns.Do(func(ns.NetNS) error {
		link, err := netlink.LinkByName(ifName)
		if err != nil {
			return err
		}
		return netlink.LinkSetHardwareAddr(link, hw)
	})
	if err != nil {
		t.Fatalf("set MAC: %v", err)
	}
}

// netconf renders a kai-cni netconf for cniVersion with the given extra
// fields (nil values are dropped, so tests can remove defaults).
func netconf(t *testing.T, cniVersion string, extra map[string]any) []byte {
	t.Helper()
	m := map[string]any{"cniVersion": cniVersion, "name": "blue-net", "type": "kai-cni"}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cniError asserts err is a CNI error with code and a message containing
// every want substring.
func cniError(t *testing.T, err error, code uint, want ...string) {
	t.Helper()
	var e *types.Error
	if !errors.As(err, &e) {
		t.Fatalf("want CNI error %d, got %T %v", code, err, err)
	}
	t.Logf("CNI error %d: %s", e.Code, e.Error())
	if e.Code != code {
		t.Errorf("code = %d, want %d (msg %q)", e.Code, code, e.Error())
	}
	for _, w := range want {
		if !strings.Contains(e.Error(), w) {
			t.Errorf("message %q does not contain %q", e.Error(), w)
		}
	}
}

// cmdArgs builds the CmdArgs kubelet (through Multus) would pass.
func cmdArgs(netnsPath string, stdin []byte) *skel.CmdArgs {
	return &skel.CmdArgs{
		ContainerID: "c0ffee",
		Netns:       netnsPath,
		IfName:      "net1",
		Args:        "IgnoreUnknown=1;K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=web-0;K8S_POD_UID=uid-123;K8S_POD_INFRA_CONTAINER_ID=c0ffee",
		StdinData:   stdin,
	}
}
