// Package offload defines the dataplane a DPU programs: per-network local
// ports, remote MACs and flood lists. Backends (OVS, later TC or a kernel
// bridge) turn the same State into their own objects and reconcile by
// reading back what is programmed.
package offload

import (
	"context"
	"net/netip"
)

// State is the complete desired dataplane. It is a pure function of the
// config, the attachments and the EVPN RIB (see dpu/desired).
type State struct {
	// VTEP is the local tunnel source address.
	VTEP netip.Addr
	// VXLANPort is the UDP destination port of the tunnel.
	VXLANPort uint16
	// Networks sorted by VNI.
	Networks []Network
	// KeepRemote asks the backend not to remove programmed remote-MAC
	// entries that Networks lacks (it still adds and replaces). The
	// controller sets it while the fabric's routes are incomplete after a
	// restart: what is programmed may be newer than the routes saved
	// before a crash, and must stand in until every End-of-RIB like a
	// graceful-restart helper keeps stale routes.
	KeepRemote bool
}

// Network is one MAC-VRF: a VNI with its local ports and remote MACs.
type Network struct {
	Name string
	VNI  uint32
	// Ports are the local representors, sorted by name.
	Ports []Port
	// Remote MACs that won RFC 7432 selection at another VTEP, sorted by MAC.
	Remote []RemoteMAC
	// Flood lists the remote VTEPs (from type-3 routes) for BUM, sorted.
	Flood []netip.Addr
}

// Port is a representor attached to a network.
type Port struct {
	// Name is the representor netdev, e.g. pf0vf3.
	Name string
	// Owner is the attachment id.
	Owner string
	// MAC is the only source MAC accepted from the VF.
	MAC string
	// IPs are the only source addresses accepted for IP and ARP; empty
	// allows any address from the MAC.
	IPs []netip.Addr
	// Moved is set when another VTEP won the MAC (RFC 7432 section 15):
	// the port stays attached but unicast to MAC follows the remote entry.
	Moved bool
}

// RemoteMAC is a MAC reachable through another VTEP.
type RemoteMAC struct {
	MAC  string
	VTEP netip.Addr
}

// Result summarizes one Apply.
type Result struct {
	// Changes counts objects added, modified or removed; 0 means in sync.
	Changes int
}

// Flow is a programmed flow as read back, for inspection.
type Flow struct {
	Network  string
	VNI      uint32
	Cookie   uint64
	Owner    string
	Table    uint8
	Priority uint16
	Match    string
	Actions  string
	Packets  uint64
}

// Group is a programmed group as read back, for inspection.
type Group struct {
	Network string
	ID      uint32
	Type    string
	Buckets []string
}

// Dump is what a backend has programmed.
type Dump struct {
	Flows  []Flow
	Groups []Group
}

// Dataplane is implemented by each backend.
type Dataplane interface {
	// Apply makes the programmed state equal to s, changing only what
	// differs. It never flushes: unchanged objects are left alone, and a
	// changed flow is replaced in place. Safe to call repeatedly.
	Apply(ctx context.Context, s State) (Result, error)
	// Dump reads back what is programmed.
	Dump(ctx context.Context) (Dump, error)
	// Close releases connections; it leaves the dataplane programmed.
	Close() error
}

// DriftDetector is implemented by backends that can tell cheaply that what
// is programmed no longer matches their last Apply (for example after
// ovs-vswitchd restarted), so the controller reconciles at once.
type DriftDetector interface {
	Drifted(ctx context.Context) bool
}
