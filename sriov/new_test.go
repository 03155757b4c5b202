package sriov

import (
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	tests := []struct {
		mode    string
		wantErr bool
		check   func(Resolver) bool
	}{
		{mode: ModeEmulated, check: func(r Resolver) bool { e, ok := r.(*Emulated); return ok && e.sysClassNet == DefaultSysClassNet }},
		{mode: ModeSriovnet, check: func(r Resolver) bool { _, ok := r.(*Sriovnet); return ok }},
		{mode: "", wantErr: true},
		{mode: "Sriovnet", wantErr: true},
		{mode: "bluefield", wantErr: true},
	}
	for _, tt := range tests {
		t.Run("mode="+tt.mode, func(t *testing.T) {
			r, err := New(tt.mode)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("New(%q) = %T, want error", tt.mode, r)
				}
				for _, allowed := range []string{ModeEmulated, ModeSriovnet} {
					if !strings.Contains(err.Error(), allowed) {
						t.Errorf("error %q does not name allowed mode %q", err, allowed)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q): %v", tt.mode, err)
			}
			if !tt.check(r) {
				t.Fatalf("New(%q) returned unexpected resolver %#v", tt.mode, r)
			}
		})
	}
}
