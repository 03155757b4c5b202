package identity

import (
	"errors"
	"strings"
	"testing"

	"github.com/kai-dpu/kai/host/config"
	"github.com/kai-dpu/kai/sriov"
)

func TestEmulatedResolve(t *testing.T) {
	e := NewEmulated([]config.EmulatedVF{
		{PCI: "0000:03:00.2", PF: 0, VF: 0, PFPCI: "0000:03:00.0"},
		{PCI: "0000:0A:00.3", PF: 1, VF: 7},
	})
	tests := []struct {
		name, pci string
		want      sriov.VF
		unknown   bool
	}{
		{name: "first", pci: "0000:03:00.2", want: sriov.VF{PFIndex: 0, VFIndex: 0, PFPCIAddress: "0000:03:00.0", PCIAddress: "0000:03:00.2"}},
		{name: "table upper case", pci: "0000:0a:00.3", want: sriov.VF{PFIndex: 1, VFIndex: 7, PCIAddress: "0000:0a:00.3"}},
		{name: "query upper case", pci: "0000:0A:00.3", want: sriov.VF{PFIndex: 1, VFIndex: 7, PCIAddress: "0000:0a:00.3"}},
		{name: "not in table", pci: "0000:03:00.4", unknown: true},
		{name: "malformed", pci: "eth0", unknown: true},
		{name: "empty", pci: "", unknown: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.Resolve(tt.pci)
			if tt.unknown {
				if !errors.Is(err, ErrUnknownVF) {
					t.Fatalf("Resolve(%q) = %v, %v; want ErrUnknownVF", tt.pci, got, err)
				}
				if !strings.Contains(err.Error(), tt.pci) {
					t.Errorf("error %q does not name %q", err, tt.pci)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tt.pci, err)
			}
			if got != tt.want {
				t.Fatalf("Resolve(%q) = %+v, want %+v", tt.pci, got, tt.want)
			}
		})
	}
}

// The resolver must not see later changes to the config slice.
func TestEmulatedCopiesTable(t *testing.T) {
	vfs := []config.EmulatedVF{{PCI: "0000:03:00.2", VF: 1}}
	e := NewEmulated(vfs)
	vfs[0].VF = 9
	if got, err := e.Resolve("0000:03:00.2"); err != nil || got.VFIndex != 1 {
		t.Fatalf("Resolve = %+v, %v; want VF index 1", got, err)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		mode    string
		wantErr bool
		check   func(Resolver) bool
	}{
		{mode: "sriov", check: func(r Resolver) bool { _, ok := r.(*Sriov); return ok }},
		{mode: "emulated", check: func(r Resolver) bool { _, ok := r.(*Emulated); return ok }},
		{mode: "", wantErr: true},
		{mode: "sriovnet", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			r, err := New(config.Identity{Mode: tt.mode, VFs: []config.EmulatedVF{{PCI: "0000:03:00.2"}}})
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "unknown mode") {
					t.Fatalf("New(%q) = %T, %v; want unknown mode error", tt.mode, r, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q): %v", tt.mode, err)
			}
			if !tt.check(r) {
				t.Fatalf("New(%q) = %T", tt.mode, r)
			}
		})
	}
}
