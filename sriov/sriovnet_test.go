package sriov

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/k8snetworkplumbingwg/sriovnet"
	utilfs "github.com/k8snetworkplumbingwg/sriovnet/pkg/utils/filesystem"
)

// fakeNetdev is one /sys/class/net entry as sriovnet.GetVfRepresentorDPU
// sees it: it reads only phys_switch_id (must be non-empty: switchdev) and
// phys_port_name of every entry.
type fakeNetdev struct {
	name, portName, switchID string
}

// useFakeSysfs points sriovnet at a fake sysfs holding devs.
//
// sriovnet reads sysfs through its package-level utilfs.Fs and offers no
// other way in; swapping it is sriovnet's own test seam. The swap is
// process-global, so tests using it must not call t.Parallel.
func useFakeSysfs(t *testing.T, devs []fakeNetdev) {
	t.Helper()
	fakeFs, teardown, err := utilfs.NewFakeFs(filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	saved := utilfs.Fs
	utilfs.Fs = fakeFs
	t.Cleanup(func() {
		utilfs.Fs = saved
		teardown()
	})

	if err := fakeFs.MkdirAll(sriovnet.NetSysDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		dir := filepath.Join(sriovnet.NetSysDir, d.name)
		if err := fakeFs.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for file, content := range map[string]string{"phys_port_name": d.portName, "phys_switch_id": d.switchID} {
			if content == "" {
				continue
			}
			if err := fakeFs.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

const switchID = "c2cfc60003a1420c"

func TestSriovnetRepresentor(t *testing.T) {
	tests := []struct {
		name     string
		devs     []fakeNetdev
		noSysfs  bool
		vf       VF
		want     string
		notFound bool
	}{
		{
			name: "controller port name",
			devs: []fakeNetdev{{"eth0", "c1pf0vf0", switchID}, {"eth3", "c1pf0vf3", switchID}},
			vf:   VF{PFIndex: 0, VFIndex: 3},
			want: "eth3",
		},
		{
			name: "legacy port name, netdev named after it",
			devs: []fakeNetdev{{"pf0vf2", "pf0vf2", switchID}, {"pf0vf3", "pf0vf3", switchID}},
			vf:   VF{PFIndex: 0, VFIndex: 3},
			want: "pf0vf3",
		},
		{
			name: "controller form wins over local VF",
			devs: []fakeNetdev{{"eth1", "pf0vf3", switchID}, {"eth2", "c1pf0vf3", switchID}},
			vf:   VF{PFIndex: 0, VFIndex: 3},
			want: "eth2",
		},
		{
			name: "pf1, trailing newline as in real sysfs",
			devs: []fakeNetdev{{"eth5", "c1pf1vf5\n", switchID + "\n"}},
			vf:   VF{PFIndex: 1, VFIndex: 5},
			want: "eth5",
		},
		{
			name:     "matched by phys_port_name, not netdev name",
			devs:     []fakeNetdev{{"pf0vf3", "c1pf0vf9", switchID}},
			vf:       VF{PFIndex: 0, VFIndex: 3},
			notFound: true,
		},
		{
			name:     "not switchdev (no phys_switch_id)",
			devs:     []fakeNetdev{{"eth3", "c1pf0vf3", ""}},
			vf:       VF{PFIndex: 0, VFIndex: 3},
			notFound: true,
		},
		{
			name:     "other VFs only",
			devs:     []fakeNetdev{{"eth0", "c1pf0vf0", switchID}, {"eth1", "c1pf1vf3", switchID}},
			vf:       VF{PFIndex: 0, VFIndex: 3},
			notFound: true,
		},
		{
			// sriovnet swallows the ReadDir error and reports not-found.
			name:     "no /sys/class/net at all",
			noSysfs:  true,
			vf:       VF{PFIndex: 0, VFIndex: 3},
			notFound: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			useFakeSysfs(t, tt.devs)
			if tt.noSysfs {
				if err := utilfs.Fs.RemoveAll("/sys"); err != nil {
					t.Fatal(err)
				}
			}

			got, err := NewSriovnet().Representor(tt.vf)
			if tt.notFound {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Representor(%v) = %q, %v; want ErrNotFound", tt.vf, got, err)
				}
				if !errors.Is(err, sriovnet.ErrRepresentorNotFound) {
					t.Errorf("sriovnet's error dropped from chain: %v", err)
				}
				if !strings.Contains(err.Error(), tt.vf.String()) {
					t.Errorf("error %q does not name VF %s", err, tt.vf)
				}
				return
			}
			if err != nil {
				t.Fatalf("Representor(%v): %v", tt.vf, err)
			}
			if got != tt.want {
				t.Fatalf("Representor(%v) = %q, want %q", tt.vf, got, tt.want)
			}
		})
	}
}

// PF indexes sriovnet cannot handle are rejected before sysfs is read, and
// are not reported as ErrNotFound: retrying would never help.
func TestSriovnetRejectsPFIndex(t *testing.T) {
	useFakeSysfs(t, []fakeNetdev{{"eth0", "c1pf2vf0", switchID}})
	for _, pf := range []uint32{2, 7, 1 << 31} {
		vf := VF{PFIndex: pf, VFIndex: 0}
		got, err := NewSriovnet().Representor(vf)
		if err == nil {
			t.Fatalf("Representor(%v) = %q, want error", vf, got)
		}
		if errors.Is(err, ErrNotFound) {
			t.Errorf("Representor(%v): %v is ErrNotFound, want a validation error", vf, err)
		}
		if !strings.Contains(err.Error(), "0 or 1") {
			t.Errorf("error %q does not say which PF indexes are allowed", err)
		}
	}
}

func TestMapSriovnetError(t *testing.T) {
	other := errors.New("boom")
	vf := VF{PFIndex: 1, VFIndex: 4}
	tests := []struct {
		name     string
		in       error
		notFound bool
	}{
		{"representor not found", fmt.Errorf("failed to get VF representor for pfID: 1, vfIndex: 4: %w", sriovnet.ErrRepresentorNotFound), true},
		{"device not found", fmt.Errorf("x: %w", sriovnet.ErrDeviceNotFound), true},
		{"bare sentinel", sriovnet.ErrRepresentorNotFound, true},
		{"multiple representors", sriovnet.ErrMultipleRepresentorsFound, false},
		{"other", other, false},
		{"pfID validation", errors.New("unexpected pfID(2). It should be 0 or 1"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mapSriovnetError(vf, tt.in)
			if got := errors.Is(err, ErrNotFound); got != tt.notFound {
				t.Fatalf("errors.Is(%v, ErrNotFound) = %v, want %v", err, got, tt.notFound)
			}
			if !errors.Is(err, tt.in) {
				t.Errorf("original error dropped from chain: %v", err)
			}
			if !strings.Contains(err.Error(), vf.String()) {
				t.Errorf("error %q does not name VF %s", err, vf)
			}
		})
	}
}
