package sriov

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultSysClassNet is where the kernel lists the netdevs of the current
// network namespace.
const DefaultSysClassNet = "/sys/class/net"

// Emulated resolves representors in the lab, where a veth end named like a
// BlueField representor ("c1pf0vf3" or "pf0vf3") stands in for the real one.
// It matches on the netdev name, not on phys_port_name, because veths have
// no switchdev port attributes.
//
// It does not enforce PFIndex <= 1: that limit belongs to sriovnet's DPU
// helpers, not to the lab.
type Emulated struct {
	sysClassNet string
}

var _ Resolver = (*Emulated)(nil)

// NewEmulated returns an Emulated resolver reading netdevs from sysClassNet,
// or from DefaultSysClassNet when it is empty. Tests pass a temporary
// directory with fake entries; production passes "".
func NewEmulated(sysClassNet string) *Emulated {
	if sysClassNet == "" {
		sysClassNet = DefaultSysClassNet
	}
	return &Emulated{sysClassNet: sysClassNet}
}

// Representor returns the first of RepresentorNames(vf) that exists as a
// netdev. It returns a wrapped ErrNotFound naming the VF and the names tried
// when none exists, and a different error when sysfs cannot be read, so a
// permissions problem is not mistaken for a missing VF.
func (e *Emulated) Representor(vf VF) (string, error) {
	names := RepresentorNames(vf)
	for _, name := range names {
		_, err := os.Lstat(filepath.Join(e.sysClassNet, name))
		switch {
		case err == nil:
			return name, nil
		case errors.Is(err, fs.ErrNotExist):
			continue
		default:
			return "", fmt.Errorf("sriov: emulated lookup of %s for VF %s: %w", name, vf, err)
		}
	}
	return "", fmt.Errorf("sriov: VF %s: %w (tried %s in %s)", vf, ErrNotFound, strings.Join(names, ", "), e.sysClassNet)
}
