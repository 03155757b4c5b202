package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// pciRe is a full PCI address in the lower-case form sysfs uses
// (domain:bus:device.function).
var pciRe = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)

// NormalizePCI returns a PCI address in sysfs's lower-case form, so that
// addresses typed by an operator compare equal to those the kernel and
// Multus report.
func NormalizePCI(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// ValidPCI reports whether s is a normalized full PCI address such as
// "0000:03:00.2". Callers also rely on it before joining s into a sysfs
// path, so "../" can never escape the devices directory.
func ValidPCI(s string) bool {
	return pciRe.MatchString(s)
}

// Validate checks every field and returns all problems at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Node == "" {
		bad("node", "required: this Kubernetes node's name")
	}
	errs = append(errs, c.DPU.validate()...)
	if c.CNI.Socket == "" {
		bad("cni.socket", "required")
	}
	errs = append(errs, c.Identity.validate()...)
	if c.DevicePlugin.Config != "" && c.DevicePlugin.ResourceName == "" {
		bad("devicePlugin.resourceName", "required when devicePlugin.config is set (e.g. kai.dev/evpn_vf)")
	}
	if c.DevicePlugin.ResourceName != "" && strings.Count(c.DevicePlugin.ResourceName, "/") > 1 {
		bad("devicePlugin.resourceName", `must be "name" or "prefix/name", got %q`, c.DevicePlugin.ResourceName)
	}
	if c.Metrics.Listen != "" {
		if _, err := splitAddress(c.Metrics.Listen); err != nil {
			bad("metrics.listen", "%v", err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid config: %w", errors.Join(errs...))
	}
	return nil
}

func (d DPU) validate() []error {
	var errs []error
	if host, err := splitAddress(d.Address); err != nil {
		errs = append(errs, fmt.Errorf("dpu.address: %w", err))
	} else if host == "" {
		errs = append(errs, fmt.Errorf("dpu.address: host required (it is also the default TLS server name), got %q", d.Address))
	}
	files := []struct{ name, value string }{{"dpu.ca", d.CA}, {"dpu.cert", d.Cert}, {"dpu.key", d.Key}}
	var missing, set []string
	for _, f := range files {
		if f.value == "" {
			missing = append(missing, f.name)
		} else {
			set = append(set, f.name)
		}
	}
	switch {
	case d.Insecure && len(set) > 0:
		errs = append(errs, fmt.Errorf("%s: must be empty when dpu.insecure is true (TLS off would silently ignore them)", strings.Join(set, "/")))
	case !d.Insecure && len(missing) > 0:
		errs = append(errs, fmt.Errorf("%s: required unless dpu.insecure is true", strings.Join(missing, "/")))
	}
	return errs
}

func (id Identity) validate() []error {
	var errs []error
	switch id.Mode {
	case ModeSriov:
		if len(id.VFs) > 0 {
			errs = append(errs, fmt.Errorf("identity.vfs: only allowed with identity.mode emulated (sriov mode reads sysfs)"))
		}
	case ModeEmulated:
		if len(id.VFs) == 0 {
			errs = append(errs, fmt.Errorf("identity.vfs: emulated mode needs at least one vf"))
		}
		seen := map[string]int{}
		for i, v := range id.VFs {
			f := fmt.Sprintf("identity.vfs[%d]", i)
			if !ValidPCI(v.PCI) {
				errs = append(errs, fmt.Errorf("%s.pci: must be a PCI address like 0000:03:00.2, got %q", f, v.PCI))
			} else if j, dup := seen[v.PCI]; dup {
				errs = append(errs, fmt.Errorf("%s.pci: %s already used by identity.vfs[%d]", f, v.PCI, j))
			} else {
				seen[v.PCI] = i
			}
			if v.PFPCI != "" && !ValidPCI(v.PFPCI) {
				errs = append(errs, fmt.Errorf("%s.pfPCI: must be a PCI address like 0000:03:00.0, got %q", f, v.PFPCI))
			}
		}
	default:
		errs = append(errs, fmt.Errorf("identity.mode: must be sriov or emulated, got %q", id.Mode))
	}
	return errs
}

// splitAddress checks a "host:port" with a numeric port, so a typo fails at
// load time rather than at the first dial.
func splitAddress(addr string) (string, error) {
	if addr == "" {
		return "", errors.New(`required: "host:port"`)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf(`must be "host:port": %w`, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", fmt.Errorf("port must be a number 1-65535, got %q", port)
	}
	return host, nil
}
