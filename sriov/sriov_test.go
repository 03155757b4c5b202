package sriov

import (
	"slices"
	"testing"
)

func TestRepresentorNames(t *testing.T) {
	tests := []struct {
		name string
		vf   VF
		want []string
	}{
		{"pf0 vf3", VF{PFIndex: 0, VFIndex: 3}, []string{"c1pf0vf3", "pf0vf3"}},
		{"pf1 vf0", VF{PFIndex: 1, VFIndex: 0}, []string{"c1pf1vf0", "pf1vf0"}},
		{"two-digit vf", VF{PFIndex: 0, VFIndex: 127}, []string{"c1pf0vf127", "pf0vf127"}},
		{"pci addresses ignored", VF{PFIndex: 1, VFIndex: 2, PCIAddress: "0000:3b:00.4", PFPCIAddress: "0000:3b:00.1"}, []string{"c1pf1vf2", "pf1vf2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RepresentorNames(tt.vf); !slices.Equal(got, tt.want) {
				t.Fatalf("RepresentorNames(%+v) = %q, want %q", tt.vf, got, tt.want)
			}
		})
	}
}

func TestVFString(t *testing.T) {
	tests := []struct {
		vf   VF
		want string
	}{
		{VF{PFIndex: 0, VFIndex: 3}, "pf0vf3"},
		{VF{PFIndex: 1, VFIndex: 7, PCIAddress: "0000:3b:00.4"}, "pf1vf7 (pci 0000:3b:00.4)"},
	}
	for _, tt := range tests {
		if got := tt.vf.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.vf, got, tt.want)
		}
	}
}
