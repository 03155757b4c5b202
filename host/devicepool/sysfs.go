package devicepool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// device reads one PCI device's attributes from sysfs on demand and
// remembers them, so a selector list reads each file at most once and never
// reads what no selector needs.
type device struct {
	pci     string
	devices string // <sysfsRoot>/bus/pci/devices

	vendor, devID, driver, pfPCI, pfName lazy[string]
	vfIndex                              lazy[uint32]
}

type lazy[T any] struct {
	done bool
	v    T
	err  error
}

func (l *lazy[T]) get(f func() (T, error)) (T, error) {
	if !l.done {
		l.v, l.err = f()
		l.done = true
	}
	return l.v, l.err
}

func newDevice(sysfsRoot, pci string) *device {
	return &device{pci: pci, devices: filepath.Join(sysfsRoot, "bus", "pci", "devices")}
}

func (d *device) path(elem ...string) string {
	return filepath.Join(append([]string{d.devices}, elem...)...)
}

// Vendor is the vendor id without "0x" ("15b3"), as the plugin compares it.
func (d *device) Vendor() (string, error) {
	return d.vendor.get(func() (string, error) { return d.readID("vendor") })
}

// Device is the device id without "0x" ("101e").
func (d *device) Device() (string, error) {
	return d.devID.get(func() (string, error) { return d.readID("device") })
}

func (d *device) readID(file string) (string, error) {
	b, err := os.ReadFile(d.path(d.pci, file))
	if err != nil {
		return "", fmt.Errorf("read %s id: %w", file, err)
	}
	return strings.TrimPrefix(strings.ToLower(strings.TrimSpace(string(b))), "0x"), nil
}

// Driver is the bound driver's name; "" when unbound (no driver link), which
// matches no drivers selector, as in the plugin.
func (d *device) Driver() (string, error) {
	return d.driver.get(func() (string, error) {
		target, err := os.Readlink(d.path(d.pci, "driver"))
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("read driver: %w", err)
		}
		return filepath.Base(target), nil
	})
}

// PFPCI is the PF's PCI address, the target of the physfn link.
func (d *device) PFPCI() (string, error) {
	return d.pfPCI.get(func() (string, error) {
		target, err := os.Readlink(d.path(d.pci, "physfn"))
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("read PF address: %s has no physfn link (not a VF)", d.pci)
		}
		if err != nil {
			return "", fmt.Errorf("read PF address: %w", err)
		}
		return filepath.Base(target), nil
	})
}

var uplinkPortRe = regexp.MustCompile(`^p[0-9]+$`)

// PFName is the PF's netdev name. With several netdevs under the PF (a
// switchdev PF also lists its representors) it is the uplink, whose
// phys_port_name is "p<N>" — the rule the plugin uses via sriovnet; if that
// does not single one out, it is an error rather than a guess (the plugin's
// first-entry pick is its known issue #383).
func (d *device) PFName() (string, error) {
	return d.pfName.get(func() (string, error) {
		pf, err := d.PFPCI()
		if err != nil {
			return "", err
		}
		netDir := d.path(pf, "net")
		entries, err := os.ReadDir(netDir)
		if err != nil {
			return "", fmt.Errorf("read PF netdev name: %w", err)
		}
		var names, uplinks []string
		for _, e := range entries {
			names = append(names, e.Name())
			port, err := os.ReadFile(filepath.Join(netDir, e.Name(), "phys_port_name"))
			if err == nil && uplinkPortRe.MatchString(strings.TrimSpace(string(port))) {
				uplinks = append(uplinks, e.Name())
			}
		}
		switch {
		case len(names) == 1:
			return names[0], nil
		case len(names) == 0:
			return "", fmt.Errorf("read PF netdev name: PF %s has no netdev in %s", pf, netDir)
		case len(uplinks) == 1:
			return uplinks[0], nil
		default:
			return "", fmt.Errorf("read PF netdev name: PF %s has several netdevs (%s) and no single uplink (phys_port_name p<N>)", pf, strings.Join(names, ", "))
		}
	})
}

// VFIndex is N of the PF's virtfnN link that points at this VF.
func (d *device) VFIndex() (uint32, error) {
	return d.vfIndex.get(func() (uint32, error) {
		pf, err := d.PFPCI()
		if err != nil {
			return 0, err
		}
		links, err := filepath.Glob(d.path(pf, "virtfn*"))
		if err != nil {
			return 0, fmt.Errorf("read VF index: %w", err)
		}
		for _, l := range links {
			n, err := strconv.ParseUint(strings.TrimPrefix(filepath.Base(l), "virtfn"), 10, 32)
			if err != nil {
				continue
			}
			target, err := os.Readlink(l)
			if err != nil {
				return 0, fmt.Errorf("read VF index: %w", err)
			}
			if filepath.Base(target) == d.pci {
				return uint32(n), nil
			}
		}
		return 0, fmt.Errorf("read VF index: PF %s has no virtfn link to %s", pf, d.pci)
	})
}
