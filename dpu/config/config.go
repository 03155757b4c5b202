// Package config loads and validates the kai-dpu configuration file.
//
// Loading happens in two stages: the file is decoded strictly into a raw
// form (unknown fields are errors), then validated into an immutable Config
// with defaults applied. Every validation error names the field it is about.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Config is a validated kai-dpu configuration.
type Config struct {
	// Node is the name of the Kubernetes node (host) this DPU serves.
	Node string `json:"node"`
	// StateDir holds the persisted attachment store.
	StateDir  string    `json:"stateDir"`
	API       API       `json:"api"`
	Metrics   Metrics   `json:"metrics"`
	BGP       BGP       `json:"bgp"`
	VTEP      VTEP      `json:"vtep"`
	Dataplane Dataplane `json:"dataplane"`
	// Representors selects how VF representors are found: "sriovnet" on a
	// real DPU, "emulated" in the lab (veth ends named like representors).
	Representors string    `json:"representors"`
	Networks     []Network `json:"networks"`
	// Hosts lists which host agents may attach what. Empty means the one
	// host named by Node, on every network and PF.
	Hosts []Host `json:"hosts"`
	// MACMobility tunes duplicate MAC detection.
	MACMobility MACMobility `json:"macMobility"`
}

// MACMobility configures duplicate MAC detection (RFC 7432 section 15.1):
// a MAC that moves DuplicateMoves times within DuplicateSeconds is frozen
// where it is for FreezeSeconds.
type MACMobility struct {
	DuplicateMoves   uint32 `json:"duplicateMoves"`   // default 5; 0 keeps the default
	DuplicateSeconds uint32 `json:"duplicateSeconds"` // default 180
	FreezeSeconds    uint32 `json:"freezeSeconds"`    // default 180
}

// API is where the gRPC API listens.
type API struct {
	// Listen is "host:port" (mutual TLS unless Insecure) or "unix:/path".
	Listen string `json:"listen"`
	TLS    TLS    `json:"tls"`
	// Insecure allows a TCP listener without TLS; callers are then not
	// authenticated and every request is trusted (labs only).
	Insecure bool `json:"insecure"`
	// Socket is an optional extra unix socket for operators on the DPU
	// (kaictl); its file permissions are its access control.
	Socket string `json:"socket"`
}

// TLS files for mutual TLS: the DPU's certificate and the CA that signs host
// agents' client certificates. A client certificate's CommonName (or first
// DNS name) is the node it speaks for.
type TLS struct {
	CA   string `json:"ca"`
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// Host is a host agent allowed to use this DPU.
type Host struct {
	// Node is the name in the agent's client certificate.
	Node string `json:"node"`
	// Networks it may attach to; empty means all.
	Networks []string `json:"networks"`
	// PFs whose VFs it may attach; empty means all.
	PFs []uint32 `json:"pfs"`
}

// Metrics is where Prometheus metrics and health endpoints are served; empty disables.
type Metrics struct {
	Listen string `json:"listen"`
	// Pprof also serves Go's profiler under /debug/pprof/ (opt-in: it
	// exposes internals and costs CPU while profiling).
	Pprof bool `json:"pprof"`
}

// BGP configures the EVPN speaker.
type BGP struct {
	ASN      uint32     `json:"asn"`
	RouterID netip.Addr `json:"routerID"`
	// ListenPort is the local BGP port; 0 means 179, -1 disables the listener.
	ListenPort int32      `json:"listenPort"`
	Neighbors  []Neighbor `json:"neighbors"`
	// GracefulRestartTime is how long peers keep our routes while kai-dpu restarts.
	GracefulRestartSeconds uint32 `json:"gracefulRestartSeconds"`
	// InitialSyncSeconds bounds how long a starting kai-dpu keeps its last known
	// remote routes while waiting for End-of-RIB from its neighbors.
	InitialSyncSeconds uint32 `json:"initialSyncSeconds"`
}

// Neighbor is a BGP peer (route reflector or leaf) carrying l2vpn-evpn.
type Neighbor struct {
	Address netip.Addr `json:"address"`
	ASN     uint32     `json:"asn"`
	Port    uint16     `json:"port"`
}

// VTEP is the local VXLAN tunnel endpoint.
type VTEP struct {
	Address netip.Addr `json:"address"`
	// Port is the VXLAN UDP port (default 4789).
	Port uint16 `json:"port"`
}

// Dataplane selects and configures the offload backend.
type Dataplane struct {
	Backend string `json:"backend"`
	OVS     OVS    `json:"ovs"`
}

// OVS configures the Open vSwitch backend.
type OVS struct {
	// DB is the OVSDB endpoint, e.g. "unix:/var/run/openvswitch/db.sock".
	DB     string `json:"db"`
	Bridge string `json:"bridge"`
	// DatapathType is "system" on a DPU (kernel + TC offload) or "netdev" (userspace).
	DatapathType string `json:"datapathType"`
	HWOffload    bool   `json:"hwOffload"`
	// OFCtl is the ovs-ofctl binary used for OpenFlow bundles.
	OFCtl string `json:"ofctl"`
	// RunDir holds ovs-vswitchd's per-bridge OpenFlow sockets (<bridge>.mgmt).
	RunDir string `json:"runDir"`
}

// Network is an L2 EVPN segment (MAC-VRF) bound to one VNI.
type Network struct {
	Name string `json:"name"`
	VNI  uint32 `json:"vni"`
	// RD defaults to routerID:(VNI mod 65536).
	RD           string       `json:"rd"`
	RouteTargets RouteTargets `json:"routeTargets"`
}

// RouteTargets to import and export; both default to (ASN mod 65536):VNI like FRR.
type RouteTargets struct {
	Import []string `json:"import"`
	Export []string `json:"export"`
}

// Defaults applied to fields left empty.
const (
	DefaultStateDir           = "/var/lib/kai-dpu"
	DefaultBridge             = "br-kai"
	DefaultOVSDB              = "unix:/var/run/openvswitch/db.sock"
	DefaultVXLANPort          = 4789
	DefaultGracefulRestart    = 120
	DefaultInitialSyncSeconds = 30
	maxVNI                    = 1<<24 - 1
)

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data)
}

// Parse decodes YAML strictly and validates it.
func Parse(data []byte) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c.normalize()
	return &c, nil
}

func (c *Config) applyDefaults() {
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.Representors == "" {
		c.Representors = "sriovnet"
	}
	if c.VTEP.Port == 0 {
		c.VTEP.Port = DefaultVXLANPort
	}
	if c.BGP.GracefulRestartSeconds == 0 {
		c.BGP.GracefulRestartSeconds = DefaultGracefulRestart
	}
	if c.BGP.InitialSyncSeconds == 0 {
		c.BGP.InitialSyncSeconds = DefaultInitialSyncSeconds
	}
	if c.MACMobility.DuplicateMoves == 0 {
		c.MACMobility.DuplicateMoves = 5
	}
	if c.MACMobility.DuplicateSeconds == 0 {
		c.MACMobility.DuplicateSeconds = 180
	}
	if c.MACMobility.FreezeSeconds == 0 {
		c.MACMobility.FreezeSeconds = 180
	}
	if c.Dataplane.Backend == "" {
		c.Dataplane.Backend = "ovs"
	}
	o := &c.Dataplane.OVS
	if o.DB == "" {
		o.DB = DefaultOVSDB
	}
	if o.Bridge == "" {
		o.Bridge = DefaultBridge
	}
	if o.DatapathType == "" {
		o.DatapathType = "system"
	}
	if o.OFCtl == "" {
		o.OFCtl = "ovs-ofctl"
	}
	if o.RunDir == "" {
		o.RunDir = "/var/run/openvswitch"
	}
	for i := range c.Networks {
		n := &c.Networks[i]
		if n.RD == "" && c.BGP.RouterID.Is4() {
			n.RD = fmt.Sprintf("%s:%d", c.BGP.RouterID, n.VNI&0xffff)
		}
		def := fmt.Sprintf("%d:%d", c.BGP.ASN&0xffff, n.VNI)
		if len(n.RouteTargets.Import) == 0 {
			n.RouteTargets.Import = []string{def}
		}
		if len(n.RouteTargets.Export) == 0 {
			n.RouteTargets.Export = []string{def}
		}
	}
}

// normalize rewrites RDs and RTs in canonical form ("65000:010" becomes
// "65000:10") so they compare equal to what is learned from BGP.
func (c *Config) normalize() {
	for i := range c.Networks {
		n := &c.Networks[i]
		if rd, err := ParseRD(n.RD); err == nil {
			n.RD = rd.String()
		}
		for _, list := range [][]string{n.RouteTargets.Import, n.RouteTargets.Export} {
			for k, s := range list {
				if rt, err := ParseRT(s); err == nil {
					list[k] = rt.String()
				}
			}
		}
	}
}

// Validate checks every field and returns all problems at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Node == "" {
		bad("node", "required: the name of the host this DPU serves")
	}
	errs = append(errs, c.validateAPI()...)
	if c.MACMobility.DuplicateMoves < 2 {
		bad("macMobility.duplicateMoves", "must be at least 2 (a single move is normal mobility), got %d", c.MACMobility.DuplicateMoves)
	}
	if c.BGP.ASN == 0 {
		bad("bgp.asn", "required and must be non-zero")
	}
	if !c.BGP.RouterID.Is4() {
		bad("bgp.routerID", "must be an IPv4 address, got %q", addrString(c.BGP.RouterID))
	}
	if c.BGP.ListenPort < -1 || c.BGP.ListenPort > 65535 {
		bad("bgp.listenPort", "must be -1 (no listener), 0 (default 179) or a port, got %d", c.BGP.ListenPort)
	}
	seenPeer := map[netip.Addr]bool{}
	for i, n := range c.BGP.Neighbors {
		f := fmt.Sprintf("bgp.neighbors[%d]", i)
		if !n.Address.IsValid() {
			bad(f+".address", "required")
		} else if seenPeer[n.Address] {
			bad(f+".address", "duplicate neighbor %s", n.Address)
		}
		seenPeer[n.Address] = true
		if n.ASN == 0 {
			bad(f+".asn", "required and must be non-zero")
		}
	}
	if !c.VTEP.Address.Is4() {
		bad("vtep.address", "must be an IPv4 address, got %q", addrString(c.VTEP.Address))
	}
	switch c.Representors {
	case "sriovnet", "emulated":
	default:
		bad("representors", "must be sriovnet or emulated, got %q", c.Representors)
	}
	switch c.Dataplane.Backend {
	case "ovs":
		o := c.Dataplane.OVS
		if !strings.HasPrefix(o.DB, "unix:") && !strings.HasPrefix(o.DB, "tcp:") {
			bad("dataplane.ovs.db", "must start with unix: or tcp: (ssl: is not supported yet), got %q", o.DB)
		}
		if !validIfName(o.Bridge) {
			bad("dataplane.ovs.bridge", "must be a valid interface name (1-15 chars, no '/' or spaces), got %q", o.Bridge)
		}
		if o.DatapathType != "system" && o.DatapathType != "netdev" {
			bad("dataplane.ovs.datapathType", "must be system or netdev, got %q", o.DatapathType)
		}
	default:
		bad("dataplane.backend", "must be ovs, got %q", c.Dataplane.Backend)
	}
	errs = append(errs, c.validateNetworks()...)
	errs = append(errs, c.validateHosts()...)
	if len(errs) > 0 {
		return fmt.Errorf("invalid config: %w", errors.Join(errs...))
	}
	return nil
}

func (c *Config) validateNetworks() []error {
	var errs []error
	names := map[string]int{}
	vnis := map[uint32]int{}
	rds := map[RD]int{}
	for i, n := range c.Networks {
		f := fmt.Sprintf("networks[%d]", i)
		if !validName(n.Name) {
			errs = append(errs, fmt.Errorf("%s.name: must be 1-63 lowercase letters, digits or '-', got %q", f, n.Name))
		} else if j, dup := names[n.Name]; dup {
			errs = append(errs, fmt.Errorf("%s.name: %q already used by networks[%d]", f, n.Name, j))
		}
		names[n.Name] = i
		if n.VNI == 0 || n.VNI > maxVNI {
			errs = append(errs, fmt.Errorf("%s.vni: must be 1..%d, got %d", f, maxVNI, n.VNI))
		} else if j, dup := vnis[n.VNI]; dup {
			errs = append(errs, fmt.Errorf("%s.vni: %d already used by networks[%d]", f, n.VNI, j))
		}
		vnis[n.VNI] = i
		if rd, err := ParseRD(n.RD); err != nil {
			if c.BGP.RouterID.Is4() || n.RD != "" { // else bgp.routerID already explains it
				errs = append(errs, fmt.Errorf("%s.rd: %w", f, err))
			}
		} else {
			if j, dup := rds[rd]; dup {
				errs = append(errs, fmt.Errorf("%s.rd: %s already used by networks[%d]; set rd explicitly", f, rd, j))
			}
			rds[rd] = i
		}
		for k, rt := range n.RouteTargets.Import {
			if _, err := ParseRT(rt); err != nil {
				errs = append(errs, fmt.Errorf("%s.routeTargets.import[%d]: %w", f, k, err))
			}
		}
		for k, rt := range n.RouteTargets.Export {
			if _, err := ParseRT(rt); err != nil {
				errs = append(errs, fmt.Errorf("%s.routeTargets.export[%d]: %w", f, k, err))
			}
		}
	}
	return errs
}

func (c *Config) validateAPI() []error {
	var errs []error
	a := c.API
	tlsSet := a.TLS != (TLS{})
	switch {
	case a.Listen == "":
		errs = append(errs, errors.New(`api.listen: required: "host:port" or "unix:/path"`))
	case strings.HasPrefix(a.Listen, "unix:"):
		if tlsSet {
			errs = append(errs, errors.New("api.tls: not used on a unix socket; remove it or listen on host:port"))
		}
	default:
		if _, port, err := net.SplitHostPort(a.Listen); err != nil || port == "" {
			errs = append(errs, fmt.Errorf(`api.listen: want "host:port" or "unix:/path", got %q`, a.Listen))
		}
		switch {
		case a.Insecure && tlsSet:
			errs = append(errs, errors.New("api.insecure: cannot be combined with api.tls"))
		case !a.Insecure:
			for field, v := range map[string]string{"api.tls.ca": a.TLS.CA, "api.tls.cert": a.TLS.Cert, "api.tls.key": a.TLS.Key} {
				if v == "" {
					errs = append(errs, fmt.Errorf("%s: required for a TCP listener (mutual TLS) unless api.insecure is true", field))
				}
			}
		}
	}
	if a.Socket != "" && !strings.HasPrefix(a.Socket, "unix:") {
		errs = append(errs, fmt.Errorf(`api.socket: must be "unix:/path", got %q`, a.Socket))
	}
	sortErrors(errs)
	return errs
}

func (c *Config) validateHosts() []error {
	var errs []error
	seen := map[string]int{}
	for i, h := range c.Hosts {
		f := fmt.Sprintf("hosts[%d]", i)
		if h.Node == "" {
			errs = append(errs, fmt.Errorf("%s.node: required", f))
		} else if j, dup := seen[h.Node]; dup {
			errs = append(errs, fmt.Errorf("%s.node: %q already listed as hosts[%d]", f, h.Node, j))
		}
		seen[h.Node] = i
		for k, n := range h.Networks {
			if _, ok := c.Network(n); !ok {
				errs = append(errs, fmt.Errorf("%s.networks[%d]: no network named %q", f, k, n))
			}
		}
	}
	return errs
}

// HostPolicy returns what the host agent of node may do, if anything.
func (c *Config) HostPolicy(node string) (Host, bool) {
	if len(c.Hosts) == 0 {
		return Host{Node: c.Node}, node == c.Node
	}
	for _, h := range c.Hosts {
		if h.Node == node {
			return h, true
		}
	}
	return Host{}, false
}

func sortErrors(errs []error) {
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
}

// Network returns the network with the given name.
func (c *Config) Network(name string) (Network, bool) {
	for _, n := range c.Networks {
		if n.Name == name {
			return n, true
		}
	}
	return Network{}, false
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for _, r := range s {
		lower, digit := r >= 'a' && r <= 'z', r >= '0' && r <= '9'
		if !lower && !digit && r != '-' {
			return false
		}
	}
	return true
}

func validIfName(s string) bool {
	return len(s) > 0 && len(s) < 16 && !strings.ContainsAny(s, "/ \t\n:")
}
