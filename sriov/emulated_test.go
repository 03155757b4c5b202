package sriov

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEmulatedRepresentor(t *testing.T) {
	tests := []struct {
		name     string
		entries  []string // dirs under the fake sys/class/net
		symlinks []string // symlinks (as in real sysfs) under it
		vf       VF
		want     string
		notFound bool
	}{
		{name: "legacy name", entries: []string{"pf0vf3", "pf0vf2"}, vf: VF{PFIndex: 0, VFIndex: 3}, want: "pf0vf3"},
		{name: "controller name", entries: []string{"c1pf1vf0"}, vf: VF{PFIndex: 1, VFIndex: 0}, want: "c1pf1vf0"},
		{name: "controller name preferred", entries: []string{"pf0vf3", "c1pf0vf3"}, vf: VF{PFIndex: 0, VFIndex: 3}, want: "c1pf0vf3"},
		{name: "sysfs symlink entry", symlinks: []string{"pf0vf1"}, vf: VF{PFIndex: 0, VFIndex: 1}, want: "pf0vf1"},
		{name: "pf index above 1 allowed in the lab", entries: []string{"pf2vf0"}, vf: VF{PFIndex: 2, VFIndex: 0}, want: "pf2vf0"},
		{name: "other vf only", entries: []string{"pf0vf1", "c1pf1vf3"}, vf: VF{PFIndex: 0, VFIndex: 3}, notFound: true},
		{name: "empty", vf: VF{PFIndex: 0, VFIndex: 0}, notFound: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, e := range tt.entries {
				if err := os.Mkdir(filepath.Join(dir, e), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, l := range tt.symlinks {
				if err := os.Symlink("../../devices/virtual/net/"+l, filepath.Join(dir, l)); err != nil {
					t.Fatal(err)
				}
			}

			got, err := NewEmulated(dir).Representor(tt.vf)
			if tt.notFound {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Representor(%v) = %q, %v; want ErrNotFound", tt.vf, got, err)
				}
				for _, n := range append(RepresentorNames(tt.vf), tt.vf.String()) {
					if !strings.Contains(err.Error(), n) {
						t.Errorf("error %q does not mention %q", err, n)
					}
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

// A sysfs that cannot be read must not look like a missing VF: callers
// retry on ErrNotFound but should surface this.
func TestEmulatedUnreadableIsNotNotFound(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := NewEmulated(file).Representor(VF{VFIndex: 1})
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want a non-ErrNotFound error", err)
	}
}

func TestNewEmulatedDefault(t *testing.T) {
	if got := NewEmulated("").sysClassNet; got != "/sys/class/net" {
		t.Fatalf("default sysClassNet = %q", got)
	}
}
