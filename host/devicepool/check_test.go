package devicepool

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sysfs builds a fake /sys/bus/pci/devices in a temporary directory, laid
// out as the kernel does it (relative links, ids as "0x15b3\n").
type sysfs struct {
	t    *testing.T
	root string
}

func newSysfs(t *testing.T) *sysfs {
	t.Helper()
	s := &sysfs{t: t, root: t.TempDir()}
	s.mkdir("")
	return s
}

func (s *sysfs) path(rel string) string {
	return filepath.Join(s.root, "bus", "pci", "devices", rel)
}

func (s *sysfs) mkdir(rel string) {
	s.t.Helper()
	if err := os.MkdirAll(s.path(rel), 0o755); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sysfs) write(rel, content string) {
	s.t.Helper()
	if err := os.WriteFile(s.path(rel), []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sysfs) symlink(target, rel string) {
	s.t.Helper()
	if err := os.Symlink(target, s.path(rel)); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sysfs) remove(rel string) {
	s.t.Helper()
	if err := os.RemoveAll(s.path(rel)); err != nil {
		s.t.Fatal(err)
	}
}

// pf creates a ConnectX-style PF with netdev name and VFs; vfs[i] is the
// address of virtfn i. VFs are bound to mlx5_core.
func (s *sysfs) pf(pci, netdev string, vfs ...string) {
	s.t.Helper()
	s.mkdir(pci)
	s.write(pci+"/vendor", "0x15b3\n")
	s.write(pci+"/device", "0xa2d6\n")
	s.mkdir(pci + "/net/" + netdev)
	for i, vf := range vfs {
		s.mkdir(vf)
		s.write(vf+"/vendor", "0x15b3\n")
		s.write(vf+"/device", "0x101e\n")
		s.symlink("../../../bus/pci/drivers/mlx5_core", vf+"/driver")
		s.symlink("../"+pci, vf+"/physfn")
		s.symlink("../"+vf, pci+"/virtfn"+strconv.Itoa(i))
	}
}

// vfAddrs returns n VF addresses starting at function 2 of device 00.
func vfAddrs(bus string, n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		f := i + 2
		out = append(out, "0000:"+bus+":0"+strconv.Itoa(f/8)+"."+strconv.Itoa(f%8))
	}
	return out
}

// lab is two PFs, p0 (0000:03:00.0) and p1 (0000:03:00.1), with 12 VFs
// each: p0's VF 3 is 0000:03:00.5, VF 9 is 0000:03:01.3; p1's are on bus 04
// for readability.
func lab(t *testing.T) *sysfs {
	s := newSysfs(t)
	s.pf("0000:03:00.0", "p0", vfAddrs("03", 12)...)
	s.pf("0000:03:00.1", "p1", vfAddrs("04", 12)...)
	return s
}

func pool(t *testing.T, root, selectors string) *Pool {
	t.Helper()
	cfg := `{"resourceList": [{"resourcePrefix": "kai.dev", "resourceName": "evpn_vf", "selectors": ` + selectors + `}]}`
	p, err := Parse([]byte(cfg), "kai.dev/evpn_vf", root)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name      string
		selectors string
		setup     func(s *sysfs)
		pci       string
		in        bool
	}{
		{name: "vendor and pf range", selectors: `{"vendors": ["15b3"], "pfNames": ["p0#0-7"]}`, pci: "0000:03:00.5", in: true},
		{name: "outside pf range", selectors: `{"vendors": ["15b3"], "pfNames": ["p0#0-7"]}`, pci: "0000:03:01.3"},
		{name: "other pf", selectors: `{"pfNames": ["p0"]}`, pci: "0000:04:00.2"},
		{name: "whole pf", selectors: `{"pfNames": ["p1"]}`, pci: "0000:04:01.5", in: true},
		{name: "pf name case-insensitive", selectors: `{"pfNames": ["P0#3"]}`, pci: "0000:03:00.5", in: true},
		{name: "list of indexes", selectors: `{"pfNames": ["p0#1,3,8-9"]}`, pci: "0000:03:01.3", in: true},
		{name: "list of indexes, gap", selectors: `{"pfNames": ["p0#1,3,8-9"]}`, pci: "0000:03:00.4"},
		// The plugin uses only the first entry naming the PF.
		{name: "first entry for a pf wins", selectors: `{"pfNames": ["p0#0-3", "p0#8-11"]}`, pci: "0000:03:01.3"},
		{name: "vendor mismatch", selectors: `{"vendors": ["8086"]}`, pci: "0000:03:00.5"},
		{name: "device id", selectors: `{"devices": ["101e"]}`, pci: "0000:03:00.5", in: true},
		{name: "device id mismatch", selectors: `{"devices": ["1018"]}`, pci: "0000:03:00.5"},
		{name: "driver", selectors: `{"drivers": ["mlx5_core"]}`, pci: "0000:03:00.5", in: true},
		{name: "unbound VF has no driver", selectors: `{"drivers": ["mlx5_core"]}`, setup: func(s *sysfs) { s.remove("0000:03:00.5/driver") }, pci: "0000:03:00.5"},
		{name: "vfio-bound VF", selectors: `{"drivers": ["mlx5_core"]}`, setup: func(s *sysfs) {
			s.remove("0000:03:00.5/driver")
			s.symlink("../../../bus/pci/drivers/vfio-pci", "0000:03:00.5/driver")
		}, pci: "0000:03:00.5"},
		{name: "pci address", selectors: `{"pciAddresses": ["0000:03:00.5", "0000:03:00.6"]}`, pci: "0000:03:00.6", in: true},
		{name: "pci address mismatch", selectors: `{"pciAddresses": ["0000:03:00.5"]}`, pci: "0000:03:00.6"},
		{name: "upper-case deviceID", selectors: `{"pciAddresses": ["0000:0a:00.2"]}`, setup: func(s *sysfs) { s.pf("0000:0a:00.0", "p2", "0000:0a:00.2") }, pci: "0000:0A:00.2", in: true},
		{name: "root device", selectors: `{"rootDevices": ["0000:03:00.1"]}`, pci: "0000:04:00.3", in: true},
		{name: "root device range", selectors: `{"rootDevices": ["0000:03:00.1#0-1"]}`, pci: "0000:04:00.3", in: true},
		{name: "root device outside range", selectors: `{"rootDevices": ["0000:03:00.1#0-1"]}`, pci: "0000:04:00.4"},
		{name: "array: second object matches", selectors: `[{"pfNames": ["p1"]}, {"pfNames": ["p0#9"]}]`, pci: "0000:03:01.3", in: true},
		{name: "array: none matches", selectors: `[{"pfNames": ["p1"]}, {"pfNames": ["p0#8"]}]`, pci: "0000:03:01.3"},
		{name: "no selectors: every device", selectors: `null`, pci: "0000:03:01.3", in: true},
		{
			name:      "switchdev PF: uplink by phys_port_name",
			selectors: `{"pfNames": ["enp3s0f0np0"]}`,
			setup: func(s *sysfs) {
				s.remove("0000:03:00.0/net/p0")
				for _, n := range []struct{ dev, port string }{{"enp3s0f0np0", "p0"}, {"enp3s0f0r0", "pf0vf0"}, {"enp3s0f0r1", "pf0vf1"}} {
					s.mkdir("0000:03:00.0/net/" + n.dev)
					s.write("0000:03:00.0/net/"+n.dev+"/phys_port_name", n.port+"\n")
				}
			},
			pci: "0000:03:00.5",
			in:  true,
		},
		// A mismatch is certain even when another attribute is unreadable.
		{name: "definite mismatch beats unreadable attribute", selectors: `{"vendors": ["15b3"], "pfNames": ["p1"]}`, setup: func(s *sysfs) { s.remove("0000:03:00.5/vendor") }, pci: "0000:03:00.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := lab(t)
			if tt.setup != nil {
				tt.setup(s)
			}
			err := pool(t, s.root, tt.selectors).Check(tt.pci)
			if tt.in {
				if err != nil {
					t.Fatalf("Check(%s) = %v, want nil", tt.pci, err)
				}
				return
			}
			if !errors.Is(err, ErrNotInPool) {
				t.Fatalf("Check(%s) = %v, want ErrNotInPool", tt.pci, err)
			}
		})
	}
}

func TestCheckNotInPoolMessage(t *testing.T) {
	s := lab(t)
	err := pool(t, s.root, `{"vendors": ["15b3"], "pfNames": ["p0#0-7"]}`).Check("0000:03:01.3")
	const want = "VF 0000:03:01.3 is not in device-plugin resource kai.dev/evpn_vf (selectors: vendors [15b3], pfNames [p0#0-7]); request the resource in the pod or NetworkAttachmentDefinition"
	if err == nil || err.Error() != want {
		t.Fatalf("Check = %v\nwant %s", err, want)
	}
	var nip *NotInPoolError
	if !errors.As(err, &nip) || nip.PCI != "0000:03:01.3" || nip.Resource != "kai.dev/evpn_vf" {
		t.Fatalf("errors.As = %+v", nip)
	}

	err = pool(t, s.root, `[{"pfNames": ["p1"]}, {"rootDevices": ["0000:03:00.0#8"]}]`).Check("0000:03:01.3")
	if err == nil || !strings.Contains(err.Error(), "(selectors: pfNames [p1] or rootDevices [0000:03:00.0#8])") {
		t.Fatalf("Check = %v, want both selector objects listed", err)
	}
}

// When an attribute a selector needs cannot be read, Check says which one,
// and does not claim the VF is outside the pool.
func TestCheckUnreadable(t *testing.T) {
	tests := []struct {
		name, selectors string
		setup           func(s *sysfs)
		pci, want       string
	}{
		{name: "vendor file missing", selectors: `{"vendors": ["15b3"]}`, setup: func(s *sysfs) { s.remove("0000:03:00.5/vendor") }, pci: "0000:03:00.5", want: "vendors: read vendor id"},
		{name: "device file missing", selectors: `{"devices": ["101e"]}`, setup: func(s *sysfs) { s.remove("0000:03:00.5/device") }, pci: "0000:03:00.5", want: "devices: read device id"},
		{name: "PF has no netdev", selectors: `{"pfNames": ["p0"]}`, setup: func(s *sysfs) { s.remove("0000:03:00.0/net/p0") }, pci: "0000:03:00.5", want: "pfNames: read PF netdev name: PF 0000:03:00.0 has no netdev"},
		{name: "PF net dir missing", selectors: `{"pfNames": ["p0"]}`, setup: func(s *sysfs) { s.remove("0000:03:00.0/net") }, pci: "0000:03:00.5", want: "pfNames: read PF netdev name"},
		{name: "several PF netdevs, no uplink", selectors: `{"pfNames": ["p0"]}`, setup: func(s *sysfs) { s.mkdir("0000:03:00.0/net/p0b") }, pci: "0000:03:00.5", want: "has several netdevs (p0, p0b)"},
		{name: "a PF is not a VF", selectors: `{"pfNames": ["p0"]}`, pci: "0000:03:00.0", want: "0000:03:00.0 has no physfn link (not a VF)"},
		{name: "root device of a PF", selectors: `{"rootDevices": ["0000:03:00.0"]}`, pci: "0000:03:00.1", want: "rootDevices: read PF address"},
		{name: "VF index missing", selectors: `{"pfNames": ["p0#0-3"]}`, setup: func(s *sysfs) { s.remove("0000:03:00.0/virtfn3") }, pci: "0000:03:00.5", want: "read VF index: PF 0000:03:00.0 has no virtfn link to 0000:03:00.5"},
		{name: "no such device", selectors: `{"vendors": ["15b3"]}`, pci: "0000:05:00.2", want: "VF 0000:05:00.2: cannot tell whether it is in device-plugin resource"},
		{name: "not a PCI address", selectors: `{"vendors": ["15b3"]}`, pci: "../../etc", want: "not a PCI address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := lab(t)
			if tt.setup != nil {
				tt.setup(s)
			}
			err := pool(t, s.root, tt.selectors).Check(tt.pci)
			if err == nil || errors.Is(err, ErrNotInPool) {
				t.Fatalf("Check(%s) = %v, want a cannot-tell error", tt.pci, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// One selector object that cannot be evaluated does not hide another that
// matches.
func TestCheckOtherObjectMatchesDespiteUnreadable(t *testing.T) {
	s := lab(t)
	s.remove("0000:03:00.5/vendor")
	if err := pool(t, s.root, `[{"vendors": ["15b3"]}, {"pfNames": ["p0#3"]}]`).Check("0000:03:00.5"); err != nil {
		t.Fatalf("Check = %v, want nil", err)
	}
}

// A pool that selects by PCI address alone needs no sysfs (the lab's, and
// a valid production config).
func TestCheckPCIAddressesWithoutSysfs(t *testing.T) {
	p, err := Parse([]byte(`{"resourceList":[{"resourcePrefix":"kai.dev","resourceName":"evpn_vf","selectors":{"pciAddresses":["0000:03:00.2"]}}]}`), "kai.dev/evpn_vf", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check("0000:03:00.2"); err != nil {
		t.Fatalf("listed VF: %v", err)
	}
	if err := p.Check("0000:03:00.3"); !errors.Is(err, ErrNotInPool) {
		t.Fatalf("unlisted VF: %v, want ErrNotInPool", err)
	}
}
