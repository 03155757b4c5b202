package devicepool

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseFindsResource(t *testing.T) {
	const cfg = `{"resourceList": [
		{"resourcePrefix": "kai.dev", "resourceName": "evpn_vf", "selectors": {"pfNames": ["p0"]}},
		{"resourcePrefix": "intel.com", "resourceName": "evpn_vf", "selectors": {"pfNames": ["p1"]}},
		{"resourceName": "legacy", "selectors": {"vendors": ["8086"]}},
		{"resourcePrefix": "nvidia.com", "resourceName": "solo", "selectors": {"devices": ["101e"]}}
	]}`
	tests := []struct {
		name, resource    string
		wantName, wantSel string
		wantErr           string
	}{
		{name: "qualified", resource: "kai.dev/evpn_vf", wantName: "kai.dev/evpn_vf", wantSel: "pfNames [p0]"},
		{name: "other prefix", resource: "intel.com/evpn_vf", wantName: "intel.com/evpn_vf", wantSel: "pfNames [p1]"},
		{name: "bare unique", resource: "solo", wantName: "nvidia.com/solo", wantSel: "devices [101e]"},
		{name: "qualified matches entry without prefix", resource: "kai.dev/legacy", wantName: "kai.dev/legacy", wantSel: "vendors [8086]"},
		{name: "bare ambiguous", resource: "evpn_vf", wantErr: "resource evpn_vf is ambiguous (kai.dev/evpn_vf, intel.com/evpn_vf)"},
		{name: "wrong prefix", resource: "example.com/solo", wantErr: "resource example.com/solo not found in device-plugin config (resources: intel.com/evpn_vf, kai.dev/evpn_vf, legacy, nvidia.com/solo)"},
		{name: "unknown", resource: "kai.dev/nope", wantErr: "not found in device-plugin config (resources: intel.com/evpn_vf,"},
		{name: "empty", resource: "", wantErr: "resource name required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(cfg), tt.resource, "")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) = %v, want error containing %q", tt.resource, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.resource, err)
			}
			if p.resource != tt.wantName {
				t.Errorf("resource = %q, want %q", p.resource, tt.wantName)
			}
			if len(p.selectors) != 1 || p.selectors[0].String() != tt.wantSel {
				t.Errorf("selectors = %v, want [%s]", p.selectors, tt.wantSel)
			}
			if p.sysfsRoot != "/sys" {
				t.Errorf("sysfsRoot = %q, want /sys", p.sysfsRoot)
			}
		})
	}
}

func TestParseSelectors(t *testing.T) {
	tests := []struct {
		name, selectors string
		want            []string // selector.String() per object
		wantErr         string
	}{
		{name: "object", selectors: `{"vendors": ["15b3"], "pfNames": ["p0#0-7"]}`, want: []string{"vendors [15b3], pfNames [p0#0-7]"}},
		{name: "array", selectors: `[{"vendors": ["15b3"]}, {"rootDevices": ["0000:03:00.1#0,2-3"]}]`, want: []string{"vendors [15b3]", "rootDevices [0000:03:00.1#0,2-3]"}},
		{name: "missing", selectors: ``, want: []string{"any device"}},
		{name: "null", selectors: `null`, want: []string{"any device"}},
		{name: "all supported keys", selectors: `{"vendors":["15b3"],"devices":["101e"],"drivers":["mlx5_core"],"pciAddresses":["0000:03:00.2"],"pfNames":["p0"],"rootDevices":["0000:03:00.0"]}`,
			want: []string{"vendors [15b3], devices [101e], drivers [mlx5_core], pciAddresses [0000:03:00.2], pfNames [p0], rootDevices [0000:03:00.0]"}},
		{name: "keys case-insensitive like encoding/json", selectors: `{"Vendors": ["15b3"], "PFNames": ["p0"]}`, want: []string{"vendors [15b3], pfNames [p0]"}},
		{name: "empty unsupported keys ignored", selectors: `{"vendors": ["15b3"], "isRdma": false, "linkTypes": [], "vdpaType": ""}`, want: []string{"vendors [15b3]"}},
		{name: "needVhostNet does not filter", selectors: `{"vendors": ["15b3"], "needVhostNet": true}`, want: []string{"vendors [15b3]"}},
		{name: "isRdma", selectors: `{"vendors": ["15b3"], "isRdma": true}`, wantErr: "selectors: unsupported selector(s) isRdma: kai-host cannot evaluate them"},
		{name: "several unsupported, sorted", selectors: `{"linkTypes": ["ether"], "acpiIndexes": ["1"]}`, wantErr: "unsupported selector(s) acpiIndexes, linkTypes"},
		{name: "unsupported in array names index", selectors: `[{"vendors": ["15b3"]}, {"ddpProfiles": ["gtp"]}]`, wantErr: "selectors[1]: unsupported selector(s) ddpProfiles"},
		{name: "typo is not silently ignored", selectors: `{"pfName": ["p0"]}`, wantErr: "unsupported selector(s) pfName"},
		{name: "not a list", selectors: `{"vendors": "15b3"}`, wantErr: "selectors.vendors: want a list of strings"},
		{name: "backwards range", selectors: `{"pfNames": ["p0#5-1"]}`, wantErr: `selectors.pfNames: "p0#5-1": VF range 5-1 is backwards`},
		{name: "bad index", selectors: `{"rootDevices": ["0000:03:00.0#x"]}`, wantErr: `selectors.rootDevices: "0000:03:00.0#x": bad VF index "x"`},
		{name: "empty range", selectors: `{"pfNames": ["p0#"]}`, wantErr: `"p0#": empty VF range`},
		{name: "empty name", selectors: `{"pfNames": ["#1-2"]}`, wantErr: `"#1-2": empty name`},
		{name: "selectors not an object", selectors: `"p0"`, wantErr: "selectors:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := `{"resourceList": [{"resourcePrefix": "kai.dev", "resourceName": "evpn_vf"`
			if tt.selectors != "" {
				cfg += `, "selectors": ` + tt.selectors
			}
			cfg += `}]}`
			p, err := Parse([]byte(cfg), "kai.dev/evpn_vf", "/sys")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse = %v, want error containing %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "resource kai.dev/evpn_vf") {
					t.Errorf("error %q does not name the resource", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var got []string
			for _, s := range p.selectors {
				got = append(got, s.String())
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("selectors = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, cfg, want string }{
		{"not json", `resourceList: []`, "decode device-plugin config"},
		{"accelerator", `{"resourceList": [{"resourceName": "evpn_vf", "deviceType": "accelerator"}]}`, `deviceType "accelerator" not supported`},
		{"aux devices", `{"resourceList": [{"resourceName": "evpn_vf", "deviceType": "auxNetDevice"}]}`, `deviceType "auxNetDevice" not supported`},
		{"no resources", `{}`, "(resources: none)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse([]byte(tt.cfg), "evpn_vf", ""); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

// Another resource's selectors, even ones we cannot evaluate, are not our
// business.
func TestParseIgnoresOtherResources(t *testing.T) {
	cfg := `{"resourceList": [
		{"resourceName": "rdma", "selectors": {"isRdma": true, "linkTypes": ["infiniband"]}},
		{"resourceName": "evpn_vf", "selectors": {"vendors": ["15b3"]}}]}`
	if _, err := Parse([]byte(cfg), "evpn_vf", ""); err != nil {
		t.Fatalf("Parse: %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(`{"resourceList": [{"resourceName": "evpn_vf", "selectors": {"isRdma": true}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, "evpn_vf", dir)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "isRdma") {
		t.Fatalf("Load = %v, want an error naming %s and isRdma", err, path)
	}
	if _, err := Load(filepath.Join(dir, "missing.json"), "evpn_vf", dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, want ErrNotExist", err)
	}
}
