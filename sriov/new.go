package sriov

import "fmt"

// Modes accepted by New. They are plain strings because they come straight
// from configuration/flags.
const (
	ModeEmulated = "emulated"
	ModeSriovnet = "sriovnet"
)

// New returns the Resolver for mode. An empty or unknown mode is an error
// rather than a silent default: picking the emulated resolver on a real DPU
// (or the reverse) would fail much later and far less clearly.
func New(mode string) (Resolver, error) {
	switch mode {
	case ModeEmulated:
		return NewEmulated(""), nil
	case ModeSriovnet:
		return NewSriovnet(), nil
	default:
		return nil, fmt.Errorf("sriov: unknown representor mode %q (allowed: %q, %q)", mode, ModeEmulated, ModeSriovnet)
	}
}
