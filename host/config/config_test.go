package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const sriovConfig = `
node: worker-1
dpu: {address: "dpu-worker-1.mgmt:50051", ca: /etc/kai/ca.pem, cert: /etc/kai/host.pem, key: /etc/kai/host-key.pem}
devicePlugin: {config: /etc/pcidp/config.json, resourceName: kai.dev/evpn_vf}
metrics: {listen: ":9101"}
`

const emulatedConfig = `
node: server-a
stateDir: /tmp/kai/server-a
dpu: {address: "198.18.0.2:50051", insecure: true}
cni: {socket: /tmp/kai/server-a/host.sock}
identity:
  mode: emulated
  vfs:
    - {pci: "0000:03:00.2", pf: 0, vf: 0, pfPCI: "0000:03:00.0"}
    - {pci: "0000:03:00.3", pf: 0, vf: 1}
    - {pci: "0000:03:01.7", pf: 1, vf: 13}
addTimeoutSeconds: 5
`

func TestParseSriovDefaults(t *testing.T) {
	c, err := Parse([]byte(sriovConfig))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	for _, tt := range []struct {
		field     string
		got, want any
	}{
		{"node", c.Node, "worker-1"},
		{"stateDir", c.StateDir, "/var/lib/kai-host"},
		{"cni.socket", c.CNI.Socket, "/run/kai/host.sock"},
		{"identity.mode", c.Identity.Mode, "sriov"},
		{"addTimeoutSeconds", c.AddTimeoutSeconds, uint32(30)},
		{"dpu.serverName", c.DPU.ServerName, "dpu-worker-1.mgmt"},
		{"dpu.insecure", c.DPU.Insecure, false},
		{"dpu.key", c.DPU.Key, "/etc/kai/host-key.pem"},
		{"devicePlugin.resourceName", c.DevicePlugin.ResourceName, "kai.dev/evpn_vf"},
		{"metrics.listen", c.Metrics.Listen, ":9101"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.field, tt.got, tt.want)
		}
	}
}

func TestParseEmulated(t *testing.T) {
	c, err := Parse([]byte(emulatedConfig))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []EmulatedVF{
		{PCI: "0000:03:00.2", PF: 0, VF: 0, PFPCI: "0000:03:00.0"},
		{PCI: "0000:03:00.3", PF: 0, VF: 1},
		{PCI: "0000:03:01.7", PF: 1, VF: 13},
	}
	if !slices.Equal(c.Identity.VFs, want) {
		t.Errorf("VFs = %+v, want %+v", c.Identity.VFs, want)
	}
	if c.StateDir != "/tmp/kai/server-a" || c.CNI.Socket != "/tmp/kai/server-a/host.sock" || c.AddTimeoutSeconds != 5 {
		t.Errorf("explicit values not kept: %+v", c)
	}
	if !c.DPU.Insecure || c.DPU.ServerName != "198.18.0.2" {
		t.Errorf("DPU = %+v", c.DPU)
	}
}

func TestParseExplicitServerNameAndIPv6(t *testing.T) {
	c, err := Parse([]byte(`
node: n
dpu: {address: "[fd00::2]:50051", ca: a, cert: b, key: c, serverName: kai-dpu.n}
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.DPU.ServerName != "kai-dpu.n" {
		t.Errorf("ServerName = %q, want the explicit kai-dpu.n", c.DPU.ServerName)
	}
	// Without one, the TLS server name is the address's host, brackets off.
	c, err = Parse([]byte(`
node: n
dpu: {address: "[fd00::2]:50051", ca: a, cert: b, key: c}
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.DPU.ServerName != "fd00::2" {
		t.Errorf("default ServerName = %q, want fd00::2 from the IPv6 address", c.DPU.ServerName)
	}
}

// PCI addresses typed in upper case must equal what sysfs reports.
func TestParseNormalizesPCI(t *testing.T) {
	c, err := Parse([]byte(`
node: n
dpu: {address: "d:1", insecure: true}
identity: {mode: emulated, vfs: [{pci: "0000:0A:00.2", pfPCI: "0000:0A:00.0"}]}
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := c.Identity.VFs[0]; got.PCI != "0000:0a:00.2" || got.PFPCI != "0000:0a:00.0" {
		t.Errorf("VF = %+v, want lower-case addresses", got)
	}
}

func TestParseErrors(t *testing.T) {
	const base = "node: n\ndpu: {address: \"d:1\", insecure: true}\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown field", base + "nodes: x\n", `unknown field "nodes"`},
		{"unknown nested field", "node: n\ndpu: {address: \"d:1\", insecure: true, tls: true}\n", `unknown field "tls"`},
		{"wrong type", base + "addTimeoutSeconds: soon\n", "decode config"},
		{"node missing", "dpu: {address: \"d:1\", insecure: true}\n", "node: required"},
		{"address missing", "node: n\ndpu: {insecure: true}\n", `dpu.address: required: "host:port"`},
		{"address without port", "node: n\ndpu: {address: dpu, insecure: true}\n", `dpu.address: must be "host:port"`},
		{"address named port", "node: n\ndpu: {address: \"dpu:grpc\", insecure: true}\n", `dpu.address: port must be a number 1-65535, got "grpc"`},
		{"address port zero", "node: n\ndpu: {address: \"dpu:0\", insecure: true}\n", "dpu.address: port must be a number"},
		{"address port too big", "node: n\ndpu: {address: \"dpu:65536\", insecure: true}\n", "dpu.address: port must be a number"},
		{"address without host", "node: n\ndpu: {address: \":50051\", insecure: true}\n", "dpu.address: host required"},
		{"no tls at all", "node: n\ndpu: {address: \"d:1\"}\n", "dpu.ca/dpu.cert/dpu.key: required unless dpu.insecure is true"},
		{"key missing", "node: n\ndpu: {address: \"d:1\", ca: a, cert: b}\n", "dpu.key: required unless dpu.insecure is true"},
		{"ca and key missing", "node: n\ndpu: {address: \"d:1\", cert: b}\n", "dpu.ca/dpu.key: required unless dpu.insecure is true"},
		{"insecure with cert", "node: n\ndpu: {address: \"d:1\", insecure: true, cert: b}\n", "dpu.cert: must be empty when dpu.insecure is true"},
		{"bad mode", base + "identity: {mode: fake}\n", `identity.mode: must be sriov or emulated, got "fake"`},
		{"sriov with vfs", base + "identity: {vfs: [{pci: \"0000:03:00.2\"}]}\n", "identity.vfs: only allowed with identity.mode emulated"},
		{"emulated without vfs", base + "identity: {mode: emulated}\n", "identity.vfs: emulated mode needs at least one vf"},
		{"short pci", base + "identity: {mode: emulated, vfs: [{pci: \"03:00.2\"}]}\n", `identity.vfs[0].pci: must be a PCI address like 0000:03:00.2, got "03:00.2"`},
		{"function 8", base + "identity: {mode: emulated, vfs: [{pci: \"0000:03:00.8\"}]}\n", "identity.vfs[0].pci: must be a PCI address"},
		{"path in pci", base + "identity: {mode: emulated, vfs: [{pci: \"../../0000:03:00.2\"}]}\n", "identity.vfs[0].pci: must be a PCI address"},
		{"duplicate pci", base + "identity: {mode: emulated, vfs: [{pci: \"0000:03:00.2\"}, {pci: \"0000:03:00.2\", vf: 1}]}\n", "identity.vfs[1].pci: 0000:03:00.2 already used by identity.vfs[0]"},
		{"duplicate pci after case folding", base + "identity: {mode: emulated, vfs: [{pci: \"0000:0a:00.2\"}, {pci: \"0000:0A:00.2\", vf: 1}]}\n", "identity.vfs[1].pci: 0000:0a:00.2 already used"},
		{"bad pf pci", base + "identity: {mode: emulated, vfs: [{pci: \"0000:03:00.2\", pfPCI: p0}]}\n", `identity.vfs[0].pfPCI: must be a PCI address like 0000:03:00.0, got "p0"`},
		{"device plugin without resource", base + "devicePlugin: {config: /etc/pcidp/config.json}\n", "devicePlugin.resourceName: required when devicePlugin.config is set"},
		{"resource with two slashes", base + "devicePlugin: {resourceName: a/b/c}\n", `devicePlugin.resourceName: must be "name" or "prefix/name"`},
		{"bad metrics listen", base + "metrics: {listen: \"9101\"}\n", "metrics.listen: must be \"host:port\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want error containing %q", c, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// All problems are reported at once, so an operator fixes the file in one go.
func TestParseReportsAllErrors(t *testing.T) {
	_, err := Parse([]byte("dpu: {address: nope}\nidentity: {mode: emulated}\n"))
	if err == nil {
		t.Fatal("Parse succeeded, want errors")
	}
	for _, want := range []string{"node:", "dpu.address:", "dpu.ca/dpu.cert/dpu.key:", "identity.vfs:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 4 {
		t.Errorf("want 4 joined errors, got %v", err)
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host.yaml")
	if err := os.WriteFile(path, []byte(emulatedConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Node != "server-a" {
		t.Errorf("Node = %q", c.Node)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrNotExist", err)
	}
}
