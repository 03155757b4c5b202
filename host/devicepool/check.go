package devicepool

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kai-dpu/kai/host/config"
)

// NotInPoolError says which resource a VF is not part of and how to fix it.
// It wraps ErrNotInPool.
type NotInPoolError struct {
	PCI, Resource, Selectors string
}

func (e *NotInPoolError) Error() string {
	return fmt.Sprintf("VF %s is not in device-plugin resource %s (selectors: %s); request the resource in the pod or NetworkAttachmentDefinition",
		e.PCI, e.Resource, e.Selectors)
}

// Unwrap lets errors.Is(err, ErrNotInPool) work.
func (e *NotInPoolError) Unwrap() error { return ErrNotInPool }

// Check returns nil if the device at pci matches any of the resource's
// selector objects, a *NotInPoolError (wrapping ErrNotInPool) if it
// matches none, and another error when an attribute some selector needs
// cannot be read — "cannot tell" must not look like "not in the pool".
func (p *Pool) Check(pci string) error {
	n := config.NormalizePCI(pci)
	if !config.ValidPCI(n) {
		return fmt.Errorf("devicepool: %q is not a PCI address like 0000:03:00.2", pci)
	}
	// Attributes are read lazily: a pool that selects by PCI address alone
	// needs no sysfs at all (and an unreadable attribute a selector needs
	// is reported by match, never taken as "not in the pool").
	d := newDevice(p.sysfsRoot, n)
	var errs []error
	for _, s := range p.selectors {
		ok, err := s.match(d)
		if ok {
			return nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("selector (%s): %w", s, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("devicepool: VF %s: cannot tell whether it is in device-plugin resource %s: %w", n, p.resource, errors.Join(errs...))
	}
	descs := make([]string, 0, len(p.selectors))
	for _, s := range p.selectors {
		descs = append(descs, s.String())
	}
	return &NotInPoolError{PCI: n, Resource: p.resource, Selectors: strings.Join(descs, " or ")}
}

// match reports whether d satisfies every non-empty field of s. A field
// that clearly does not match decides (false, nil) even if another field is
// unreadable; otherwise any unreadable field makes the answer an error.
func (s selector) match(d *device) (bool, error) {
	var errs []error
	check := func(key string, ok bool, err error) bool {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
			return true // undecided, keep looking for a definite mismatch
		}
		return ok
	}
	if len(s.vendors) > 0 {
		v, err := d.Vendor()
		if !check(keyVendors, slices.Contains(s.vendors, v), err) {
			return false, nil
		}
	}
	if len(s.devices) > 0 {
		v, err := d.Device()
		if !check(keyDevices, slices.Contains(s.devices, v), err) {
			return false, nil
		}
	}
	if len(s.drivers) > 0 {
		v, err := d.Driver()
		if !check(keyDrivers, slices.Contains(s.drivers, v), err) {
			return false, nil
		}
	}
	if len(s.pciAddresses) > 0 && !slices.Contains(s.pciAddresses, d.pci) {
		return false, nil
	}
	if len(s.pfNames) > 0 {
		ok, err := matchIndexed(s.pfNames, d.PFName, d)
		if !check(keyPFNames, ok, err) {
			return false, nil
		}
	}
	if len(s.rootDevices) > 0 {
		ok, err := matchIndexed(s.rootDevices, d.PFPCI, d)
		if !check(keyRootDevices, ok, err) {
			return false, nil
		}
	}
	if len(errs) > 0 {
		return false, errors.Join(errs...)
	}
	return true, nil
}

// matchIndexed applies a pfNames/rootDevices list. Like the plugin, only the
// first entry naming the device's PF counts (case-insensitively); its VF
// ranges, if any, must contain the VF index.
func matchIndexed(entries []indexed, parent func() (string, error), d *device) (bool, error) {
	name, err := parent()
	if err != nil {
		return false, err
	}
	i := slices.IndexFunc(entries, func(e indexed) bool { return strings.EqualFold(e.name, name) })
	if i < 0 {
		return false, nil
	}
	e := entries[i]
	if len(e.ranges) == 0 {
		return true, nil
	}
	idx, err := d.VFIndex()
	if err != nil {
		return false, err
	}
	for _, r := range e.ranges {
		if idx >= r[0] && idx <= r[1] {
			return true, nil
		}
	}
	return false, nil
}
