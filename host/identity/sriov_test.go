package identity

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/k8snetworkplumbingwg/sriovnet"
	utilfs "github.com/k8snetworkplumbingwg/sriovnet/pkg/utils/filesystem"

	"github.com/kai-dpu/kai/sriov"
)

// fakeSysfs builds /sys/bus/pci/devices in a fake root, with links relative
// as the kernel makes them: <vf>/physfn -> ../<pf>, <pf>/virtfnN -> ../<vf>.
type fakeSysfs struct {
	t    *testing.T
	root string // real directory standing for "/"
}

// useFakeSysfs points sriovnet's utilfs.Fs at a fake root for this test.
// The swap is process-global (sriovnet's own seam), so these tests must not
// call t.Parallel.
func useFakeSysfs(t *testing.T) *fakeSysfs {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	fakeFs, teardown, err := utilfs.NewFakeFs(root)
	if err != nil {
		t.Fatal(err)
	}
	saved := utilfs.Fs
	utilfs.Fs = fakeFs
	t.Cleanup(func() {
		utilfs.Fs = saved
		teardown()
	})
	f := &fakeSysfs{t: t, root: root}
	f.mkdir("")
	return f
}

func (f *fakeSysfs) path(rel string) string {
	return filepath.Join(f.root, sriovnet.PciSysDir, rel)
}

func (f *fakeSysfs) mkdir(rel string) {
	f.t.Helper()
	if err := os.MkdirAll(f.path(rel), 0o755); err != nil {
		f.t.Fatal(err)
	}
}

// symlink creates a relative link with os.Symlink: the fake Fs's Symlink
// would rebase "../x" outside its root and refuse it.
func (f *fakeSysfs) symlink(target, rel string) {
	f.t.Helper()
	if err := os.Symlink(target, f.path(rel)); err != nil {
		f.t.Fatal(err)
	}
}

// pf creates a PF and its VFs: vfs[i] is the PCI address of virtfn i.
func (f *fakeSysfs) pf(pf string, vfs ...string) {
	f.mkdir(pf)
	for i, vf := range vfs {
		f.mkdir(vf)
		f.symlink("../"+pf, filepath.Join(vf, "physfn"))
		f.symlink("../"+vf, filepath.Join(pf, "virtfn"+strconv.Itoa(i)))
	}
}

// twelveVFs returns VF addresses 0000:03:00.2 .. 0000:03:01.5 as a real
// ConnectX/BlueField lays them out (functions 2-7 of device 00, then 01).
func twelveVFs(bus string) []string {
	var out []string
	for i := 0; i < 12; i++ {
		n := i + 2
		out = append(out, "0000:"+bus+":0"+strconv.Itoa(n/8)+"."+strconv.Itoa(n%8))
	}
	return out
}

func TestSriovResolve(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fakeSysfs)
		pci   string
		want  sriov.VF
	}{
		{
			name:  "pf0 vf0",
			setup: func(f *fakeSysfs) { f.pf("0000:03:00.0", twelveVFs("03")...) },
			pci:   "0000:03:00.2",
			want:  sriov.VF{PFIndex: 0, PFPCIAddress: "0000:03:00.0", VFIndex: 0, PCIAddress: "0000:03:00.2"},
		},
		{
			// virtfn1 must not be taken for virtfn10/11 or the reverse.
			name:  "two-digit VF index",
			setup: func(f *fakeSysfs) { f.pf("0000:03:00.0", twelveVFs("03")...) },
			pci:   "0000:03:01.3",
			want:  sriov.VF{PFIndex: 0, PFPCIAddress: "0000:03:00.0", VFIndex: 9, PCIAddress: "0000:03:01.3"},
		},
		{
			name: "pf1 is PCI function 1",
			setup: func(f *fakeSysfs) {
				f.pf("0000:03:00.0", "0000:03:00.2")
				f.pf("0000:03:00.1", "0000:03:08.2", "0000:03:08.3")
			},
			pci:  "0000:03:08.3",
			want: sriov.VF{PFIndex: 1, PFPCIAddress: "0000:03:00.1", VFIndex: 1, PCIAddress: "0000:03:08.3"},
		},
		{
			name:  "upper-case deviceID",
			setup: func(f *fakeSysfs) { f.pf("0000:0a:00.0", "0000:0a:00.2") },
			pci:   "0000:0A:00.2",
			want:  sriov.VF{PFIndex: 0, PFPCIAddress: "0000:0a:00.0", VFIndex: 0, PCIAddress: "0000:0a:00.2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := useFakeSysfs(t)
			tt.setup(f)
			got, err := NewSriov().Resolve(tt.pci)
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tt.pci, err)
			}
			if got != tt.want {
				t.Fatalf("Resolve(%q) = %+v, want %+v", tt.pci, got, tt.want)
			}
		})
	}
}

func TestSriovResolveErrors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(f *fakeSysfs)
		pci     string
		unknown bool   // want ErrUnknownVF
		want    string // substring of the error
	}{
		{
			name:    "malformed address",
			setup:   func(f *fakeSysfs) {},
			pci:     "../../0000:03:00.2",
			unknown: true,
			want:    "not a PCI address",
		},
		{
			name:    "no such device",
			setup:   func(f *fakeSysfs) { f.pf("0000:03:00.0", "0000:03:00.2") },
			pci:     "0000:03:00.5",
			unknown: true,
			want:    "no such PCI device",
		},
		{
			name:    "a PF is not a VF",
			setup:   func(f *fakeSysfs) { f.pf("0000:03:00.0", "0000:03:00.2") },
			pci:     "0000:03:00.0",
			unknown: true,
			want:    "without physfn",
		},
		{
			name: "physfn to garbage",
			setup: func(f *fakeSysfs) {
				f.mkdir("0000:03:00.2")
				f.symlink("../not-a-pf", "0000:03:00.2/physfn")
			},
			pci:  "0000:03:00.2",
			want: `physfn points to "not-a-pf"`,
		},
		{
			name: "PF lost its virtfn link",
			setup: func(f *fakeSysfs) {
				f.pf("0000:03:00.0", "0000:03:00.2")
				if err := os.Remove(f.path("0000:03:00.0/virtfn0")); err != nil {
					t.Fatal(err)
				}
			},
			pci:  "0000:03:00.2",
			want: "PF 0000:03:00.0 has no virtfn link to it",
		},
		{
			name: "dangling physfn",
			setup: func(f *fakeSysfs) {
				f.mkdir("0000:03:00.2")
				f.symlink("../0000:03:00.0", "0000:03:00.2/physfn")
			},
			pci:  "0000:03:00.2",
			want: "list PF 0000:03:00.0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := useFakeSysfs(t)
			tt.setup(f)
			got, err := NewSriov().Resolve(tt.pci)
			if err == nil {
				t.Fatalf("Resolve(%q) = %+v, want error", tt.pci, got)
			}
			if errors.Is(err, ErrUnknownVF) != tt.unknown {
				t.Errorf("errors.Is(%v, ErrUnknownVF) = %v, want %v", err, !tt.unknown, tt.unknown)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}
