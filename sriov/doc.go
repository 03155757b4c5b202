// Package sriov resolves a VF identity to its representor netdev on the DPU.
//
// A VF is always named by its PF and VF index (see DESIGN.md, "Identities"),
// never by a MAC address or a netdev name on the host: those change with
// driver binds and namespace moves, the PF/VF index does not. The
// representor is what the dataplane plugs into the OVS bridge, so every
// attachment on the DPU goes through a Resolver.
//
// Two implementations exist behind the one interface: Sriovnet for a real
// BlueField (switchdev phys_port_name lookup through sriovnet), and Emulated
// for the lab, where the "representor" is the DPU end of a veth pair named
// like a BlueField representor.
package sriov
