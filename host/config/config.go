// Package config loads and validates the kai-host configuration file.
//
// Loading follows dpu/config: the YAML is decoded strictly (unknown fields
// are errors, so a typo never silently falls back to a default), defaults
// are applied, and Validate reports every problem at once, each prefixed by
// the path of the field it is about.
package config

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// Config is a validated kai-host configuration.
type Config struct {
	// Node is this Kubernetes node's name; attachment ids and the DPU's
	// per-node state are keyed by it.
	Node string `json:"node"`
	// StateDir holds the attachment checkpoint.
	StateDir     string       `json:"stateDir"`
	DPU          DPU          `json:"dpu"`
	CNI          CNI          `json:"cni"`
	Identity     Identity     `json:"identity"`
	DevicePlugin DevicePlugin `json:"devicePlugin"`
	Metrics      Metrics      `json:"metrics"`
	// AddTimeoutSeconds bounds a Sync with the DPU, and an ADD whose
	// request carries no timeout (kai-cni always sends its netconf's).
	AddTimeoutSeconds uint32 `json:"addTimeoutSeconds"`
}

// DPU is how kai-host reaches kai-dpu. The link carries which VF belongs to
// which pod, so it is mutually authenticated TLS unless explicitly disabled.
type DPU struct {
	// Address is kai-dpu's gRPC "host:port".
	Address string `json:"address"`
	// CA verifies kai-dpu's certificate; Cert and Key are kai-host's client
	// certificate.
	CA   string `json:"ca"`
	Cert string `json:"cert"`
	Key  string `json:"key"`
	// ServerName is the name expected in kai-dpu's certificate; it defaults
	// to the host part of Address.
	ServerName string `json:"serverName"`
	// Insecure disables TLS (lab only); it must be said explicitly.
	Insecure bool `json:"insecure"`
}

// CNI is where kai-host serves kai-cni.
type CNI struct {
	// Socket is the Unix socket kai-cni connects to.
	Socket string `json:"socket"`
}

// Identity selects how a VF PCI address is turned into a VF identity.
type Identity struct {
	// Mode is "sriov" (read sysfs through sriovnet) or "emulated" (the lab,
	// where "VFs" are veths and the table below stands in for sysfs).
	Mode string `json:"mode"`
	// VFs is the emulated table; only allowed in emulated mode.
	VFs []EmulatedVF `json:"vfs"`
}

// EmulatedVF declares one lab "VF": the PCI address the CNI chain passes as
// deviceID and the PF/VF identity it stands for.
type EmulatedVF struct {
	PCI   string `json:"pci"`
	PF    uint32 `json:"pf"`
	VF    uint32 `json:"vf"`
	PFPCI string `json:"pfPCI"`
}

// DevicePlugin points at the SR-IOV network device plugin's config so that
// kai-host can refuse VFs outside Kai's pool with an actionable error.
type DevicePlugin struct {
	// Config is the device plugin's config.json; empty disables the check.
	Config string `json:"config"`
	// ResourceName is Kai's resource, "prefix/name" (kai.dev/evpn_vf) or a
	// bare name (evpn_vf) matching any prefix.
	ResourceName string `json:"resourceName"`
}

// Metrics is where Prometheus metrics and health endpoints are served;
// empty disables.
type Metrics struct {
	Listen string `json:"listen"`
}

// Identity modes.
const (
	ModeSriov    = "sriov"
	ModeEmulated = "emulated"
)

// Defaults applied to fields left empty.
const (
	DefaultStateDir          = "/var/lib/kai-host"
	DefaultCNISocket         = "/run/kai/host.sock"
	DefaultAddTimeoutSeconds = 30
)

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data)
}

// Parse decodes YAML strictly, applies defaults and validates.
func Parse(data []byte) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// applyDefaults fills empty fields and lower-cases PCI addresses, so that
// the address sysfs and Multus report ("0000:03:00.2") always equals ours.
func (c *Config) applyDefaults() {
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.CNI.Socket == "" {
		c.CNI.Socket = DefaultCNISocket
	}
	if c.AddTimeoutSeconds == 0 {
		c.AddTimeoutSeconds = DefaultAddTimeoutSeconds
	}
	if c.Identity.Mode == "" {
		c.Identity.Mode = ModeSriov
	}
	if c.DPU.ServerName == "" {
		if host, err := splitAddress(c.DPU.Address); err == nil {
			c.DPU.ServerName = host
		}
	}
	for i := range c.Identity.VFs {
		v := &c.Identity.VFs[i]
		v.PCI = NormalizePCI(v.PCI)
		v.PFPCI = NormalizePCI(v.PFPCI)
	}
}
