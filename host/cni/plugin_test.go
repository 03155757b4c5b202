package cni_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/testutils"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
)

const (
	vfMAC = "02:00:00:00:01:05"
	vfPCI = "0000:03:00.2"
)

// prevResult is what host-device or sriov-cni (plus IPAM) hands kai-cni:
// the VF in the pod's sandbox, plus a host-side interface and address that
// must not be reported as the pod's.
func prevResult(cniVersion, sandbox string) map[string]any {
	ip := func(addr, ver string, iface *int) map[string]any {
		m := map[string]any{"address": addr}
		if iface != nil {
			m["interface"] = *iface
		}
		if cniVersion == "0.4.0" {
			m["version"] = ver
		}
		return m
	}
	zero, one := 0, 1
	return map[string]any{
		"cniVersion": cniVersion,
		"interfaces": []any{
			map[string]any{"name": "host-side", "mac": "aa:bb:cc:dd:ee:ff"},
			map[string]any{"name": "net1", "mac": vfMAC, "sandbox": sandbox},
		},
		"ips": []any{
			ip("100.64.1.5/24", "4", &one),
			ip("198.18.0.9/32", "4", &zero),
			ip("2001:db8::5/64", "6", nil),
		},
	}
}

func TestAddReportsAttachmentAndPassesPrevResultThrough(t *testing.T) {
	for _, ver := range []string{"0.4.0", "1.0.0", "1.1.0"} {
		t.Run(ver, func(t *testing.T) {
			pod := podNS(t, "net1", vfMAC)
			socket, fake := startFakeHost(t)
			p, _, _ := newPlugin(t)
			prev := prevResult(ver, pod.Path())
			args := cmdArgs(pod.Path(), netconf(t, ver, map[string]any{
				"network": "blue", "socket": socket, "deviceID": vfPCI, "prevResult": prev,
			}))

			got, _, err := testutils.CmdAddWithArgs(args, func() error { return p.Add(args) })
			if err != nil {
				t.Fatalf("ADD: %v", err)
			}

			prevJSON, err := json.Marshal(prev)
			if err != nil {
				t.Fatal(err)
			}
			want, err := version.NewResult(ver, prevJSON)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("stdout result = %+v, want prevResult %+v", got, want)
			}

			if len(fake.adds) != 1 {
				t.Fatalf("kai-host got %d Add calls, want 1", len(fake.adds))
			}
			req := fake.adds[0]
			checks := []struct{ field, got, want string }{
				{"id", req.GetId(), "c0ffee/net1"},
				{"network", req.GetNetwork(), "blue"},
				{"pci_address", req.GetPciAddress(), vfPCI},
				{"mac", req.GetMac(), vfMAC},
				{"pod.namespace", req.GetPod().GetNamespace(), "team-a"},
				{"pod.name", req.GetPod().GetName(), "web-0"},
				{"pod.uid", req.GetPod().GetUid(), "uid-123"},
				{"container_id", req.GetContainerId(), "c0ffee"},
				{"ifname", req.GetIfname(), "net1"},
				{"netns", req.GetNetns(), pod.Path()},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("Add %s = %q, want %q", c.field, c.got, c.want)
				}
			}
			if want := []string{"100.64.1.5", "2001:db8::5"}; !reflect.DeepEqual(req.GetIps(), want) {
				t.Errorf("Add ips = %q, want %q", req.GetIps(), want)
			}
			if req.GetTimeoutSeconds() != 30 {
				t.Errorf("Add timeout_seconds = %d, want the default 30", req.GetTimeoutSeconds())
			}
		})
	}
}

func TestAddFindsDeviceID(t *testing.T) {
	pod := podNS(t, "net1", vfMAC)
	socket, fake := startFakeHost(t)
	p, devInfoDir, _ := newPlugin(t)
	prev := prevResult("1.0.0", pod.Path())

	tests := []struct {
		name  string
		extra map[string]any
		file  string // device-info file content, written for this case
		want  string
	}{
		{name: "netconf wins", extra: map[string]any{"deviceID": "0000:03:00.3", "runtimeConfig": map[string]any{"deviceID": "0000:03:00.4"}}, want: "0000:03:00.3"},
		{name: "runtimeConfig", extra: map[string]any{"runtimeConfig": map[string]any{"deviceID": "0000:03:00.4"}}, want: "0000:03:00.4"},
		{name: "device-info file", file: `{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:03:00.5"}}`, want: "0000:03:00.5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(devInfoDir, "blue-net-c0ffee_net1")
			_ = os.Remove(path)
			if tc.file != "" {
				if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			extra := map[string]any{"socket": socket, "prevResult": prev}
			for k, v := range tc.extra {
				extra[k] = v
			}
			args := cmdArgs(pod.Path(), netconf(t, "1.0.0", extra))
			if _, _, err := testutils.CmdAddWithArgs(args, func() error { return p.Add(args) }); err != nil {
				t.Fatalf("ADD: %v", err)
			}
			last := fake.adds[len(fake.adds)-1]
			if last.GetPciAddress() != tc.want {
				t.Errorf("pci_address = %q, want %q", last.GetPciAddress(), tc.want)
			}
			if last.GetNetwork() != "blue-net" {
				t.Errorf("network = %q, want the netconf name %q", last.GetNetwork(), "blue-net")
			}
		})
	}

	t.Run("runtimeConfig.CNIDeviceInfoFile", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "multus-named")
		if err := os.WriteFile(path, []byte(`{"pci":{"pci-address":"0000:03:00.6"}}`), 0o600); err != nil {
			t.Fatal(err)
		}
		args := cmdArgs(pod.Path(), netconf(t, "1.0.0", map[string]any{
			"socket": socket, "prevResult": prev, "runtimeConfig": map[string]any{"CNIDeviceInfoFile": path},
		}))
		if _, _, err := testutils.CmdAddWithArgs(args, func() error { return p.Add(args) }); err != nil {
			t.Fatalf("ADD: %v", err)
		}
		if got := fake.adds[len(fake.adds)-1].GetPciAddress(); got != "0000:03:00.6" {
			t.Errorf("pci_address = %q, want 0000:03:00.6", got)
		}
	})
}

// TestAddRejectsBadInput covers everything that fails before kai-cni looks
// into the pod, so it needs no root.
func TestAddRejectsBadInput(t *testing.T) {
	p, devInfoDir, _ := newPlugin(t)
	prev := prevResult("1.0.0", "/var/run/netns/unused")
	tests := []struct {
		name  string
		stdin []byte
		file  string
		code  uint
		want  []string
	}{
		{name: "malformed JSON", stdin: []byte(`{"cniVersion":"1.0.0",`), code: types.ErrDecodingFailure, want: []string{"not valid JSON"}},
		{name: "wrong type", stdin: netconf(t, "1.0.0", map[string]any{"timeoutSeconds": "ten", "prevResult": prev}), code: types.ErrDecodingFailure, want: []string{"timeoutSeconds"}},
		{name: "negative timeout", stdin: netconf(t, "1.0.0", map[string]any{"timeoutSeconds": -1, "prevResult": prev}), code: types.ErrInvalidNetworkConfig, want: []string{"timeoutSeconds"}},
		{name: "relative socket", stdin: netconf(t, "1.0.0", map[string]any{"socket": "host.sock", "prevResult": prev}), code: types.ErrInvalidNetworkConfig, want: []string{`"socket"`, "absolute"}},
		{name: "no network", stdin: netconf(t, "1.0.0", map[string]any{"name": nil, "prevResult": prev}), code: types.ErrInvalidNetworkConfig, want: []string{`"network"`}},
		{name: "bad prevResult", stdin: netconf(t, "1.0.0", map[string]any{"prevResult": map[string]any{"ips": "x"}}), code: types.ErrDecodingFailure, want: []string{"prevResult"}},
		{name: "no prevResult", stdin: netconf(t, "1.0.0", map[string]any{"deviceID": vfPCI}), code: types.ErrInvalidNetworkConfig, want: []string{"chained after", "sriov-cni or host-device"}},
		{name: "no deviceID", stdin: netconf(t, "1.0.0", map[string]any{"prevResult": prev}), code: types.ErrInvalidNetworkConfig, want: []string{`"deviceID"`, "SR-IOV network device plugin"}},
		{name: "deviceID not a PCI address", stdin: netconf(t, "1.0.0", map[string]any{"deviceID": "ens1f0v2", "prevResult": prev}), code: types.ErrInvalidNetworkConfig, want: []string{`"deviceID"`, "ens1f0v2"}},
		{name: "runtimeConfig.deviceID not a PCI address", stdin: netconf(t, "1.0.0", map[string]any{"runtimeConfig": map[string]any{"deviceID": "x"}, "prevResult": prev}), code: types.ErrInvalidNetworkConfig, want: []string{`"runtimeConfig.deviceID"`}},
		{name: "malformed device-info file", stdin: netconf(t, "1.0.0", map[string]any{"prevResult": prev}), file: `{"pci":`, code: types.ErrDecodingFailure, want: []string{"device-info", "malformed"}},
		{name: "device-info without PCI", stdin: netconf(t, "1.0.0", map[string]any{"prevResult": prev}), file: `{"type":"vhost-user"}`, code: types.ErrInvalidNetworkConfig, want: []string{"no pci-address", "vhost-user"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(devInfoDir, "blue-net-c0ffee_net1")
			_ = os.Remove(path)
			if tc.file != "" {
				if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			args := cmdArgs("/var/run/netns/unused", tc.stdin)
			_, _, err := testutils.CmdAddWithArgs(args, func() error { return p.Add(args) })
			cniError(t, err, tc.code, tc.want...)
		})
	}
}

// TestAddReportsActionableErrors covers failures in the pod and at kai-host.
func TestAddReportsActionableErrors(t *testing.T) {
	pod := podNS(t, "net1", vfMAC)
	socket, fake := startFakeHost(t)
	p, _, _ := newPlugin(t)
	stdin := func(socket string, prev map[string]any) []byte {
		return netconf(t, "1.0.0", map[string]any{"socket": socket, "deviceID": vfPCI, "prevResult": prev})
	}
	good := prevResult("1.0.0", pod.Path())
	wrongMAC := prevResult("1.0.0", pod.Path())
	wrongMAC["interfaces"].([]any)[1].(map[string]any)["mac"] = "02:00:00:00:09:09"

	tests := []struct {
		name    string
		addErr  error       // what kai-host's Add returns
		phase   kaiv1.Phase // the phase kai-host reports when Add succeeds
		reason  string
		ifName  string // CNI_IFNAME when not net1
		netns   string // CNI_NETNS when not the pod's
		stdin   []byte // netconf when not the good one
		code    uint
		wantMsg []string
	}{{
		name:    "unknown network",
		addErr:  status.Error(codes.NotFound, `network "blue" is not configured on the DPU`),
		code:    types.ErrInvalidNetworkConfig,
		wantMsg: []string{`network "blue" is not configured`},
	}, {
		name:    "not permitted",
		addErr:  status.Error(codes.PermissionDenied, "host node-1 may not use network blue"),
		code:    types.ErrInvalidNetworkConfig,
		wantMsg: []string{"not permitted", "host node-1 may not use network blue"},
	}, {
		name:    "VF in use",
		addErr:  status.Error(codes.FailedPrecondition, "VF 0000:03:00.2 is attached to pod x"),
		code:    types.ErrInvalidNetworkConfig,
		wantMsg: []string{"VF 0000:03:00.2 is attached to pod x"},
	}, {
		name:    "DPU unreachable",
		addErr:  status.Error(codes.Unavailable, "DPU 198.18.0.2:50051 not connected"),
		code:    types.ErrTryAgainLater,
		wantMsg: []string{"DPU is not reachable/ready", "not connected"},
	}, {
		name:    "DPU too slow",
		addErr:  status.Error(codes.DeadlineExceeded, "no status after 30s"),
		code:    types.ErrTryAgainLater,
		wantMsg: []string{"timed out waiting for the DPU to report the attachment Ready"},
	}, {
		name:    "internal",
		addErr:  status.Error(codes.Internal, "checkpoint write failed"),
		code:    types.ErrInternal,
		wantMsg: []string{"checkpoint write failed"},
	}, {
		name:    "attachment in error",
		phase:   kaiv1.Phase_PHASE_ERROR,
		reason:  "representor pf0vf2 not found",
		code:    types.ErrInvalidNetworkConfig,
		wantMsg: []string{"ERROR", "representor pf0vf2 not found"},
	}, {
		name:    "kai-host not running",
		stdin:   stdin(missingSocket(t), good),
		code:    types.ErrTryAgainLater,
		wantMsg: []string{"kai-host is not reachable at", "absent.sock", "DaemonSet"},
	}, {
		name:    "interface missing",
		ifName:  "net9",
		code:    types.ErrInvalidNetworkConfig,
		wantMsg: []string{"net9 not found", "chained after"},
	}, {
		name:    "prevResult MAC disagrees",
		stdin:   stdin(socket, wrongMAC),
		code:    types.ErrInvalidNetworkConfig,
		wantMsg: []string{"02:00:00:00:09:09", vfMAC},
	}, {
		name:    "netns gone",
		netns:   filepath.Join(t.TempDir(), "no-such-netns"),
		code:    types.ErrInvalidNetNS,
		wantMsg: []string{"netns"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake.set(func(f *fakeHost) {
				f.reset()
				f.addErr, f.addPhase, f.addReason = tc.addErr, tc.phase, tc.reason
			})
			in := tc.stdin
			if in == nil {
				in = stdin(socket, good)
			}
			args := cmdArgs(pod.Path(), in)
			if tc.ifName != "" {
				args.IfName = tc.ifName
			}
			if tc.netns != "" {
				args.Netns = tc.netns
			}
			_, _, err := testutils.CmdAddWithArgs(args, func() error { return p.Add(args) })
			cniError(t, err, tc.code, tc.wantMsg...)
		})
	}
}

func TestDelIsIdempotent(t *testing.T) {
	socket, fake := startFakeHost(t)
	p, _, _ := newPlugin(t)
	fake.set(func(f *fakeHost) {
		f.attachments = map[string]*kaiv1.Attachment{"c0ffee/net1": {Id: "c0ffee/net1"}}
	})
	// DEL may come without a netns (the sandbox is already gone).
	args := cmdArgs("", netconf(t, "1.0.0", map[string]any{"socket": socket}))
	for i := range 2 {
		if err := testutils.CmdDelWithArgs(args, func() error { return p.Del(args) }); err != nil {
			t.Fatalf("DEL #%d: %v", i+1, err)
		}
	}
	if want := []string{"c0ffee/net1", "c0ffee/net1"}; !reflect.DeepEqual(fake.dels, want) {
		t.Errorf("kai-host Del ids = %q, want %q", fake.dels, want)
	}

	t.Run("server error is reported", func(t *testing.T) {
		fake.set(func(f *fakeHost) { f.delErr = status.Error(codes.Internal, "checkpoint write failed") })
		err := testutils.CmdDelWithArgs(args, func() error { return p.Del(args) })
		cniError(t, err, types.ErrInternal, "checkpoint write failed")
	})
}

func TestDelWithoutKaiHost(t *testing.T) {
	socket := missingSocket(t)

	t.Run("tolerated by default", func(t *testing.T) {
		p, _, log := newPlugin(t)
		args := cmdArgs("", netconf(t, "1.0.0", map[string]any{"socket": socket}))
		if err := testutils.CmdDelWithArgs(args, func() error { return p.Del(args) }); err != nil {
			t.Fatalf("DEL: %v", err)
		}
		if !strings.Contains(log.String(), "not reachable") || !strings.Contains(log.String(), "GC") {
			t.Errorf("stderr %q does not explain the tolerated failure", log.String())
		}
	})
	t.Run("delToleratesUnavailable=false", func(t *testing.T) {
		p, _, _ := newPlugin(t)
		args := cmdArgs("", netconf(t, "1.0.0", map[string]any{"socket": socket, "delToleratesUnavailable": false}))
		err := testutils.CmdDelWithArgs(args, func() error { return p.Del(args) })
		cniError(t, err, types.ErrTryAgainLater, "kai-host is not reachable at "+socket)
	})
}

func TestCheck(t *testing.T) {
	pod := podNS(t, "net1", vfMAC)
	socket, fake := startFakeHost(t)
	p, _, _ := newPlugin(t)
	args := cmdArgs(pod.Path(), netconf(t, "1.0.0", map[string]any{
		"socket": socket, "deviceID": vfPCI, "prevResult": prevResult("1.0.0", pod.Path()),
	}))
	if _, _, err := testutils.CmdAddWithArgs(args, func() error { return p.Add(args) }); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	check := func() error { return testutils.CmdCheckWithArgs(args, func() error { return p.Check(args) }) }

	if err := check(); err != nil {
		t.Fatalf("CHECK after ADD: %v", err)
	}

	fake.set(func(f *fakeHost) {
		f.attachments["c0ffee/net1"].Status = &kaiv1.AttachmentStatus{Phase: kaiv1.Phase_PHASE_ERROR, Reason: "flows not offloaded"}
	})
	cniError(t, check(), types.ErrInvalidNetworkConfig, "c0ffee/net1", "ERROR", "flows not offloaded")

	fake.set(func(f *fakeHost) {
		f.attachments["c0ffee/net1"].Status = &kaiv1.AttachmentStatus{Phase: kaiv1.Phase_PHASE_READY}
	})
	setMAC(t, pod, "net1", "02:00:00:00:07:07")
	cniError(t, check(), types.ErrInvalidNetworkConfig, "02:00:00:00:07:07", vfMAC)

	fake.set(func(f *fakeHost) { delete(f.attachments, "c0ffee/net1") })
	cniError(t, check(), types.ErrInvalidNetworkConfig, "not known")
}

func TestStatus(t *testing.T) {
	socket, fake := startFakeHost(t)
	p, _, _ := newPlugin(t)
	stdin := netconf(t, "1.1.0", map[string]any{"socket": socket})
	status := func(stdin []byte) error {
		args := cmdArgs("", stdin)
		return testutils.CmdStatus(func() error { return p.Status(args) })
	}

	if err := status(stdin); err != nil {
		t.Fatalf("STATUS with a ready kai-host: %v", err)
	}
	fake.set(func(f *fakeHost) { f.status = &kaiv1.HostStatusResponse{Reason: "DPU boot id changed, resyncing"} })
	cniError(t, status(stdin), 50, "not ready", "DPU boot id changed, resyncing")

	cniError(t, status(netconf(t, "1.1.0", map[string]any{"socket": missingSocket(t)})), 50, "kai-host is not reachable at")
}

func TestGCSendsValidAttachments(t *testing.T) {
	socket, fake := startFakeHost(t)
	p, _, _ := newPlugin(t)
	stdin := netconf(t, "1.1.0", map[string]any{
		"socket": socket,
		"cni.dev/valid-attachments": []any{
			map[string]any{"containerID": "c1", "ifname": "net1"},
			map[string]any{"containerID": "c2", "ifname": "net2"},
		},
	})
	args := cmdArgs("", stdin)
	if err := p.GC(args); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if want := [][]string{{"c1/net1", "c2/net2"}}; !reflect.DeepEqual(fake.gcs, want) {
		t.Errorf("kai-host GC valid ids = %q, want %q", fake.gcs, want)
	}

	gone := cmdArgs("", netconf(t, "1.1.0", map[string]any{"socket": missingSocket(t)}))
	cniError(t, p.GC(gone), types.ErrTryAgainLater, "kai-host is not reachable at")
}
