package main

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
)

// fakeDPU serves canned data. Lists are deliberately unsorted.
type fakeDPU struct {
	kaiv1.UnimplementedAttachmentsServer
	kaiv1.UnimplementedInspectServer
}

var _ kaiv1.AttachmentsServer = (*fakeDPU)(nil)
var _ kaiv1.InspectServer = (*fakeDPU)(nil)

func (fakeDPU) List(_ context.Context, req *kaiv1.ListRequest) (*kaiv1.ListResponse, error) {
	all := []*kaiv1.Attachment{
		{
			Id: "worker-2/uid-b/net1", Node: "worker-2",
			Pod:     &kaiv1.Pod{Namespace: "default", Name: "web-1", Uid: "uid-b"},
			Network: "red", Vf: &kaiv1.VF{PfIndex: 1, VfIndex: 0}, Mac: "02:00:00:00:00:02",
			Status: &kaiv1.AttachmentStatus{Phase: kaiv1.Phase_PHASE_ERROR, Reason: "representor not found"},
		},
		{
			Id: "worker-1/uid-a/net1", Node: "worker-1",
			Pod:     &kaiv1.Pod{Namespace: "default", Name: "web-0", Uid: "uid-a"},
			Network: "blue", Vf: &kaiv1.VF{PfIndex: 0, VfIndex: 3}, Mac: "02:00:00:00:00:01",
			Ips:    []string{"10.0.0.5", "fd00::5"},
			Status: &kaiv1.AttachmentStatus{Phase: kaiv1.Phase_PHASE_READY, Representor: "pf0vf3"},
		},
	}
	resp := &kaiv1.ListResponse{}
	for _, a := range all {
		if req.GetNode() == "" || a.GetNode() == req.GetNode() {
			resp.Attachments = append(resp.Attachments, a)
		}
	}
	return resp, nil
}

func (fakeDPU) ListNetworks(context.Context, *kaiv1.ListNetworksRequest) (*kaiv1.ListNetworksResponse, error) {
	return &kaiv1.ListNetworksResponse{Networks: []*kaiv1.Network{
		{Name: "red", Vni: 200, RouteDistinguisher: "10.0.0.1:200"},
		{
			Name: "blue", Vni: 100, RouteDistinguisher: "10.0.0.1:100",
			ImportRouteTargets: []string{"65000:100", "65000:999"}, ExportRouteTargets: []string{"65000:100"},
			LocalAttachments: 1, RemoteMacs: 4, FloodVteps: []string{"10.0.0.2", "10.0.0.3"},
		},
	}}, nil
}

func (fakeDPU) ListRoutes(_ context.Context, req *kaiv1.ListRoutesRequest) (*kaiv1.ListRoutesResponse, error) {
	if req.GetNetwork() == "missing" {
		return nil, status.Error(codes.NotFound, `network "missing" not found`)
	}
	return &kaiv1.ListRoutesResponse{Routes: []*kaiv1.Route{
		{
			Network: "blue", Type: "mac-ip", RouteDistinguisher: "10.0.0.2:100", Mac: "02:00:00:00:00:09",
			Ip: "10.0.0.9", Vtep: "10.0.0.2", Vni: 100, Sequence: 2, Winner: true, Source: "10.0.0.2",
		},
		{
			Network: "blue", Type: "inclusive-multicast", RouteDistinguisher: "10.0.0.1:100",
			Vtep: "10.0.0.1", Vni: 100, Local: true, Source: "local",
		},
	}}, nil
}

func (fakeDPU) ListFlows(context.Context, *kaiv1.ListFlowsRequest) (*kaiv1.ListFlowsResponse, error) {
	return &kaiv1.ListFlowsResponse{
		Flows: []*kaiv1.Flow{
			{Network: "blue", Cookie: 0x2a, Owner: "mac", Table: 1, Priority: 100, Match: "dl_dst=02:00:00:00:00:09", Actions: "output:vxlan0", Packets: 7},
			{Network: "blue", Cookie: 0xff01, Owner: "classifier", Table: 0, Priority: 200, Match: "in_port=pf0vf3", Actions: "goto_table:1", Packets: 42},
		},
		Groups: []*kaiv1.Group{
			{Network: "blue", Id: 100, Type: "all", Buckets: []string{"output:vxlan0", "output:pf0vf3"}},
		},
	}, nil
}

func (fakeDPU) GetInfo(context.Context, *kaiv1.GetInfoRequest) (*kaiv1.Info, error) {
	return &kaiv1.Info{
		Node: "dpu-1", BootId: "boot-123", RouterId: "10.0.0.1", Asn: 65000, Vtep: "10.0.0.1", Version: "v0.1.0",
		Peers: []*kaiv1.Peer{
			{Address: "10.0.0.254", Asn: 65000, State: "established", Received: 12, Accepted: 10},
			{Address: "10.0.0.253", Asn: 65000, State: "active"},
		},
	}, nil
}

// startServer serves fakeDPU on a unix socket and returns its --dpu address.
func startServer(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "kai.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer()
	kaiv1.RegisterAttachmentsServer(srv, fakeDPU{})
	kaiv1.RegisterInspectServer(srv, fakeDPU{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return "unix://" + sock
}

// run runs kaictl with args and returns its exit code, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := execute(t.Context(), newRootCommand(&stdout, &stderr), args)
	return code, stdout.String(), stderr.String()
}

// fields splits table output into rows of whitespace-separated cells.
func fields(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		rows = append(rows, strings.Fields(line))
	}
	return rows
}

func assertRows(t *testing.T, out string, want [][]string) {
	t.Helper()
	got := fields(out)
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d:\n%s", len(got), len(want), out)
	}
	for i := range want {
		if strings.Join(got[i], " ") != strings.Join(want[i], " ") {
			t.Errorf("row %d:\n got  %q\n want %q\noutput:\n%s", i, got[i], want[i], out)
		}
	}
}

func TestGetTable(t *testing.T) {
	addr := startServer(t)
	tests := []struct {
		name string
		args []string
		want [][]string
	}{
		{
			name: "attachments",
			args: []string{"get", "attachments"},
			want: [][]string{
				{"ID", "NODE", "POD", "NETWORK", "VF", "MAC", "IPS", "REPRESENTOR", "PHASE", "REASON"},
				{"worker-1/uid-a/net1", "worker-1", "default/web-0", "blue", "pf0vf3", "02:00:00:00:00:01", "10.0.0.5,fd00::5", "pf0vf3", "Ready", "-"},
				{"worker-2/uid-b/net1", "worker-2", "default/web-1", "red", "pf1vf0", "02:00:00:00:00:02", "-", "-", "Error", "representor", "not", "found"},
			},
		},
		{
			name: "attachments of a node",
			args: []string{"get", "attachments", "--node", "worker-2"},
			want: [][]string{
				{"ID", "NODE", "POD", "NETWORK", "VF", "MAC", "IPS", "REPRESENTOR", "PHASE", "REASON"},
				{"worker-2/uid-b/net1", "worker-2", "default/web-1", "red", "pf1vf0", "02:00:00:00:00:02", "-", "-", "Error", "representor", "not", "found"},
			},
		},
		{
			name: "networks",
			args: []string{"get", "networks"},
			want: [][]string{
				{"NAME", "VNI", "RD", "IMPORT-RT", "EXPORT-RT", "LOCAL", "REMOTE-MACS", "FLOOD-VTEPS"},
				{"blue", "100", "10.0.0.1:100", "65000:100,65000:999", "65000:100", "1", "4", "10.0.0.2,10.0.0.3"},
				{"red", "200", "10.0.0.1:200", "-", "-", "0", "0", "-"},
			},
		},
		{
			name: "routes",
			args: []string{"get", "routes", "--network", "blue"},
			want: [][]string{
				{"NETWORK", "TYPE", "RD", "MAC", "IP", "VTEP", "VNI", "SEQ", "LOCAL", "WINNER", "SOURCE"},
				{"blue", "inclusive-multicast", "10.0.0.1:100", "-", "-", "10.0.0.1", "100", "0", "true", "false", "local"},
				{"blue", "mac-ip", "10.0.0.2:100", "02:00:00:00:00:09", "10.0.0.9", "10.0.0.2", "100", "2", "false", "true", "10.0.0.2"},
			},
		},
		{
			name: "flows",
			args: []string{"get", "flows"},
			want: [][]string{
				{"NETWORK", "TABLE", "PRIORITY", "COOKIE", "OWNER", "MATCH", "ACTIONS", "PACKETS"},
				{"blue", "0", "200", "0xff01", "classifier", "in_port=pf0vf3", "goto_table:1", "42"},
				{"blue", "1", "100", "0x2a", "mac", "dl_dst=02:00:00:00:00:09", "output:vxlan0", "7"},
				nil,
				{"NETWORK", "GROUP", "TYPE", "BUCKETS"},
				{"blue", "100", "all", "output:vxlan0", "|", "output:pf0vf3"},
			},
		},
		{
			name: "info",
			args: []string{"get", "info"},
			want: [][]string{
				{"NODE:", "dpu-1"},
				{"BOOT-ID:", "boot-123"},
				{"ROUTER-ID:", "10.0.0.1"},
				{"ASN:", "65000"},
				{"VTEP:", "10.0.0.1"},
				{"VERSION:", "v0.1.0"},
				nil,
				{"PEER", "ASN", "STATE", "RECEIVED", "ACCEPTED"},
				{"10.0.0.253", "65000", "active", "0", "0"},
				{"10.0.0.254", "65000", "established", "12", "10"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"--dpu", addr}, tt.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d, stderr: %s", code, errOut)
			}
			assertRows(t, out, tt.want)
		})
	}
}

// TestTableAligned checks that the columns line up: every cell of a column
// starts at the same offset as its header.
func TestTableAligned(t *testing.T) {
	addr := startServer(t)
	_, out, _ := run(t, "--dpu", addr, "get", "networks")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	col := strings.Index(lines[0], "RD")
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l[col:], "10.0.0.1:") {
			t.Errorf("RD column not aligned at %d:\n%s", col, out)
		}
	}
}

func TestGetJSON(t *testing.T) {
	addr := startServer(t)
	tests := []struct {
		resource string
		resp     proto.Message
		check    func(t *testing.T, m proto.Message)
	}{
		{"attachments", &kaiv1.ListResponse{}, func(t *testing.T, m proto.Message) {
			r := m.(*kaiv1.ListResponse)
			if len(r.GetAttachments()) != 2 || r.GetAttachments()[0].GetId() != "worker-1/uid-a/net1" {
				t.Errorf("attachments not sorted by node: %v", r)
			}
			if got := r.GetAttachments()[0].GetStatus().GetPhase(); got != kaiv1.Phase_PHASE_READY {
				t.Errorf("phase = %v", got)
			}
		}},
		{"networks", &kaiv1.ListNetworksResponse{}, func(t *testing.T, m proto.Message) {
			r := m.(*kaiv1.ListNetworksResponse)
			if len(r.GetNetworks()) != 2 || r.GetNetworks()[0].GetName() != "blue" || r.GetNetworks()[0].GetVni() != 100 {
				t.Errorf("networks: %v", r)
			}
		}},
		{"routes", &kaiv1.ListRoutesResponse{}, func(t *testing.T, m proto.Message) {
			r := m.(*kaiv1.ListRoutesResponse)
			if len(r.GetRoutes()) != 2 || !r.GetRoutes()[1].GetWinner() {
				t.Errorf("routes: %v", r)
			}
		}},
		{"flows", &kaiv1.ListFlowsResponse{}, func(t *testing.T, m proto.Message) {
			r := m.(*kaiv1.ListFlowsResponse)
			if len(r.GetFlows()) != 2 || r.GetFlows()[0].GetCookie() != 0xff01 || len(r.GetGroups()) != 1 {
				t.Errorf("flows: %v", r)
			}
		}},
		{"info", &kaiv1.Info{}, func(t *testing.T, m proto.Message) {
			r := m.(*kaiv1.Info)
			if r.GetBootId() != "boot-123" || len(r.GetPeers()) != 2 {
				t.Errorf("info: %v", r)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			code, out, errOut := run(t, "--dpu", addr, "get", tt.resource, "-o", "json")
			if code != exitOK {
				t.Fatalf("exit %d, stderr: %s", code, errOut)
			}
			if err := protojson.Unmarshal([]byte(out), tt.resp); err != nil {
				t.Fatalf("output does not parse as %T: %v\n%s", tt.resp, err, out)
			}
			tt.check(t, tt.resp)
			// Stable: the same request prints the same bytes.
			if _, again, _ := run(t, "--dpu", addr, "get", tt.resource, "-o", "json"); again != out {
				t.Errorf("json output not stable:\n%s\n---\n%s", out, again)
			}
			if !strings.Contains(out, "\n  ") {
				t.Errorf("json output not indented:\n%s", out)
			}
		})
	}
}

func TestRPCError(t *testing.T) {
	addr := startServer(t)
	code, out, errOut := run(t, "--dpu", addr, "get", "routes", "--network", "missing")
	if code != exitError {
		t.Errorf("exit %d, want %d", code, exitError)
	}
	if out != "" {
		t.Errorf("stdout: %q", out)
	}
	if want := `kaictl: NotFound: list routes: network "missing" not found`; !strings.Contains(errOut, want) {
		t.Errorf("stderr %q does not contain %q", errOut, want)
	}
}

func TestUnavailable(t *testing.T) {
	addr := "unix://" + filepath.Join(t.TempDir(), "absent.sock")
	code, _, errOut := run(t, "--dpu", addr, "--timeout", "5s", "get", "info")
	if code != exitError {
		t.Errorf("exit %d, want %d", code, exitError)
	}
	if !strings.HasPrefix(errOut, "kaictl: Unavailable: get info: ") {
		t.Errorf("stderr: %q", errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	addr := startServer(t)
	tests := []struct {
		name string
		args []string
		want string
		hint string
	}{
		{"unknown resource", []string{"--dpu", addr, "get", "pods"}, `unknown resource "pods"`, "kaictl get --help"},
		{"misspelt resource", []string{"--dpu", addr, "get", "atachments"}, "did you mean attachments?", "kaictl get --help"},
		{"missing resource", []string{"--dpu", addr, "get"}, "missing resource", "kaictl get --help"},
		{"unknown command", []string{"--dpu", addr, "list"}, `unknown command "list"`, "kaictl --help"},
		{"missing --dpu", []string{"get", "info"}, "--dpu is required", "kaictl get info --help"},
		{"bad output", []string{"--dpu", addr, "get", "info", "-o", "yaml"}, `--output "yaml"`, "kaictl get info --help"},
		{"flag of another resource", []string{"--dpu", addr, "get", "networks", "--node", "a"}, "unknown flag: --node", "kaictl get networks --help"},
		{"extra argument", []string{"--dpu", addr, "get", "info", "x"}, "takes no arguments", "kaictl get info --help"},
		{"bad timeout", []string{"--dpu", addr, "--timeout", "soon", "get", "info"}, "--timeout", "kaictl get info --help"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", code, exitUsage, errOut)
			}
			if out != "" {
				t.Errorf("stdout: %q", out)
			}
			if !strings.HasPrefix(errOut, "kaictl: ") || !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr %q does not contain %q", errOut, tt.want)
			}
			if !strings.Contains(errOut, "Run '"+tt.hint+"' for usage.") {
				t.Errorf("stderr %q lacks hint to %q", errOut, tt.hint)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{
		{"--help"},
		{"get", "--help"},
		{"get", "attachments", "--help"},
		{"get", "networks", "--help"},
		{"get", "routes", "--help"},
		{"get", "flows", "--help"},
		{"get", "info", "--help"},
	} {
		code, out, errOut := run(t, args...)
		if code != exitOK || errOut != "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
		for _, want := range []string{"Usage:", "Examples:", "--dpu"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: help lacks %q:\n%s", args, want, out)
			}
		}
	}
}
