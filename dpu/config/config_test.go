package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

const fullConfig = `
node: server-a
api: {listen: "unix:/run/kai/dpu.sock"}
bgp:
  asn: 65000
  routerID: 198.18.0.11
  neighbors: [{address: 198.18.0.1, asn: 65000}]
vtep: {address: 198.18.0.11}
dataplane: {backend: ovs, ovs: {db: "unix:/var/run/openvswitch/db.sock", bridge: br-kai, datapathType: netdev}}
representors: emulated
networks:
  - {name: blue, vni: 10100}
  - {name: red, vni: 10200, routeTargets: {import: ["65000:10200"], export: ["65000:10200"]}}
  - {name: green, vni: 70000}
`

func TestParseFullConfig(t *testing.T) {
	c, err := Parse([]byte(fullConfig))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Node != "server-a" {
		t.Errorf("Node = %q, want server-a", c.Node)
	}
	if c.API.Listen != "unix:/run/kai/dpu.sock" {
		t.Errorf("API.Listen = %q", c.API.Listen)
	}
	if c.BGP.ASN != 65000 || c.BGP.RouterID != netip.MustParseAddr("198.18.0.11") {
		t.Errorf("BGP = %+v", c.BGP)
	}
	wantPeers := []Neighbor{{Address: netip.MustParseAddr("198.18.0.1"), ASN: 65000}}
	if !slices.Equal(c.BGP.Neighbors, wantPeers) {
		t.Errorf("Neighbors = %+v, want %+v", c.BGP.Neighbors, wantPeers)
	}
	if c.VTEP.Address != netip.MustParseAddr("198.18.0.11") {
		t.Errorf("VTEP.Address = %v", c.VTEP.Address)
	}
	// Explicit values are kept.
	if c.Dataplane.OVS.DatapathType != "netdev" {
		t.Errorf("DatapathType = %q, want netdev (explicit)", c.Dataplane.OVS.DatapathType)
	}
	if c.Representors != "emulated" {
		t.Errorf("Representors = %q, want emulated (explicit)", c.Representors)
	}
	// Defaults.
	for _, d := range []struct {
		field     string
		got, want any
	}{
		{"stateDir", c.StateDir, DefaultStateDir},
		{"stateDir literal", c.StateDir, "/var/lib/kai-dpu"},
		{"vtep.port", c.VTEP.Port, uint16(4789)},
		{"bgp.gracefulRestartSeconds", c.BGP.GracefulRestartSeconds, uint32(120)},
		{"bgp.initialSyncSeconds", c.BGP.InitialSyncSeconds, uint32(30)},
		{"bgp.listenPort", c.BGP.ListenPort, int32(0)},
		{"dataplane.ovs.bridge", c.Dataplane.OVS.Bridge, "br-kai"},
		{"dataplane.ovs.db", c.Dataplane.OVS.DB, "unix:/var/run/openvswitch/db.sock"},
		{"dataplane.ovs.ofctl", c.Dataplane.OVS.OFCtl, "ovs-ofctl"},
	} {
		if d.got != d.want {
			t.Errorf("%s = %v, want %v", d.field, d.got, d.want)
		}
	}
	want := []Network{
		{Name: "blue", VNI: 10100, RD: "198.18.0.11:10100", RouteTargets: RouteTargets{Import: []string{"65000:10100"}, Export: []string{"65000:10100"}}},
		{Name: "red", VNI: 10200, RD: "198.18.0.11:10200", RouteTargets: RouteTargets{Import: []string{"65000:10200"}, Export: []string{"65000:10200"}}},
		// RD local part is VNI mod 65536; the RT keeps the full VNI.
		{Name: "green", VNI: 70000, RD: "198.18.0.11:4464", RouteTargets: RouteTargets{Import: []string{"65000:70000"}, Export: []string{"65000:70000"}}},
	}
	if len(c.Networks) != len(want) {
		t.Fatalf("Networks = %+v, want %d networks", c.Networks, len(want))
	}
	for i, w := range want {
		g := c.Networks[i]
		if g.Name != w.Name || g.VNI != w.VNI || g.RD != w.RD ||
			!slices.Equal(g.RouteTargets.Import, w.RouteTargets.Import) ||
			!slices.Equal(g.RouteTargets.Export, w.RouteTargets.Export) {
			t.Errorf("networks[%d] = %+v, want %+v", i, g, w)
		}
	}
	if n, ok := c.Network("red"); !ok || n.VNI != 10200 {
		t.Errorf("Network(red) = %+v, %v", n, ok)
	}
	if _, ok := c.Network("purple"); ok {
		t.Errorf("Network(purple) found, want not found")
	}
}

func TestParseDefaultsWhenOmitted(t *testing.T) {
	c, err := Parse([]byte(`
node: n1
api: {listen: "127.0.0.1:50051", insecure: true}
bgp: {asn: 4200000001, routerID: 10.0.0.1}
vtep: {address: 10.0.0.1}
networks: [{name: blue, vni: 100}]
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	for _, d := range []struct {
		field     string
		got, want any
	}{
		{"representors", c.Representors, "sriovnet"},
		{"dataplane.backend", c.Dataplane.Backend, "ovs"},
		{"dataplane.ovs.datapathType", c.Dataplane.OVS.DatapathType, "system"},
		{"dataplane.ovs.bridge", c.Dataplane.OVS.Bridge, "br-kai"},
		{"dataplane.ovs.db", c.Dataplane.OVS.DB, DefaultOVSDB},
		{"vtep.port", c.VTEP.Port, uint16(DefaultVXLANPort)},
		{"bgp.gracefulRestartSeconds", c.BGP.GracefulRestartSeconds, uint32(DefaultGracefulRestart)},
		{"bgp.initialSyncSeconds", c.BGP.InitialSyncSeconds, uint32(DefaultInitialSyncSeconds)},
		{"stateDir", c.StateDir, DefaultStateDir},
		{"networks[0].rd", c.Networks[0].RD, "10.0.0.1:100"},
		// 4200000001 mod 65536 = 59905 (4-byte ASN folded like FRR).
		{"networks[0].routeTargets.import", strings.Join(c.Networks[0].RouteTargets.Import, ","), "59905:100"},
		{"networks[0].routeTargets.export", strings.Join(c.Networks[0].RouteTargets.Export, ","), "59905:100"},
	} {
		if d.got != d.want {
			t.Errorf("%s = %v, want %v", d.field, d.got, d.want)
		}
	}
}

func TestParseExplicitValuesKept(t *testing.T) {
	c, err := Parse([]byte(`
node: n1
stateDir: /tmp/kai
api: {listen: "unix:/x.sock"}
bgp: {asn: 65001, routerID: 10.0.0.1, listenPort: -1, gracefulRestartSeconds: 5, initialSyncSeconds: 7}
vtep: {address: 10.0.0.2, port: 8472}
dataplane: {ovs: {db: "tcp:127.0.0.1:6640", bridge: br0, ofctl: /usr/bin/ovs-ofctl}}
networks:
  - {name: a, vni: 1, rd: "10.0.0.9:7", routeTargets: {import: ["1:1", "2:2"], export: ["3:3"]}}
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	n := c.Networks[0]
	if c.StateDir != "/tmp/kai" || c.BGP.ListenPort != -1 || c.BGP.GracefulRestartSeconds != 5 ||
		c.BGP.InitialSyncSeconds != 7 || c.VTEP.Port != 8472 || c.Dataplane.OVS.DB != "tcp:127.0.0.1:6640" ||
		c.Dataplane.OVS.Bridge != "br0" || c.Dataplane.OVS.OFCtl != "/usr/bin/ovs-ofctl" {
		t.Errorf("explicit values overwritten: %+v", c)
	}
	if n.RD != "10.0.0.9:7" || !slices.Equal(n.RouteTargets.Import, []string{"1:1", "2:2"}) ||
		!slices.Equal(n.RouteTargets.Export, []string{"3:3"}) {
		t.Errorf("network = %+v, explicit rd/RTs overwritten", n)
	}
}

// doc builds a config from a valid minimal one, replacing (or, with "",
// omitting) whole top-level sections.
func doc(over map[string]string) []byte {
	base := []struct{ key, val string }{
		{"node", "node: server-a"},
		{"api", `api: {listen: "unix:/run/kai/dpu.sock"}`},
		{"bgp", "bgp:\n  asn: 65000\n  routerID: 198.18.0.11\n  neighbors: [{address: 198.18.0.1, asn: 65000}]"},
		{"vtep", "vtep: {address: 198.18.0.11}"},
		{"dataplane", ""},
		{"representors", "representors: emulated"},
		{"networks", "networks:\n  - {name: blue, vni: 10100}"},
	}
	var b strings.Builder
	for _, s := range base {
		v := s.val
		if o, ok := over[s.key]; ok {
			v = o
		}
		if v != "" {
			b.WriteString(v)
			b.WriteString("\n")
		}
	}
	return []byte(b.String())
}

func TestParseValidVariants(t *testing.T) {
	for _, tc := range []struct {
		name string
		over map[string]string
	}{
		{"minimal template", nil},
		{"listener disabled", map[string]string{"bgp": "bgp: {asn: 65000, routerID: 198.18.0.11, listenPort: -1}"}},
		{"listen port 65535", map[string]string{"bgp": "bgp: {asn: 65000, routerID: 198.18.0.11, listenPort: 65535}"}},
		{"no neighbors", map[string]string{"bgp": "bgp: {asn: 65000, routerID: 198.18.0.11}"}},
		{"two neighbors", map[string]string{"bgp": "bgp: {asn: 65000, routerID: 198.18.0.11, neighbors: [{address: 198.18.0.1, asn: 65000}, {address: 198.18.0.2, asn: 65001, port: 1179}]}"}},
		{"no networks", map[string]string{"networks": ""}},
		{"bridge of 15 chars", map[string]string{"dataplane": "dataplane: {ovs: {bridge: br-kai-15-chars}}"}},
		{"mutual TLS API with hosts", map[string]string{"api": `api: {listen: "198.18.1.2:50051", tls: {ca: /etc/kai/ca.crt, cert: /etc/kai/dpu.crt, key: /etc/kai/dpu.key}, socket: "unix:/run/kai/dpu.sock"}`, "networks": "networks: [{name: blue, vni: 1}]\nhosts: [{node: server-a, networks: [blue], pfs: [0]}]"}},
		{"tcp db", map[string]string{"dataplane": `dataplane: {ovs: {db: "tcp:127.0.0.1:6640"}}`}},
		{"representors sriovnet", map[string]string{"representors": "representors: sriovnet"}},
		{"max vni", map[string]string{"networks": "networks: [{name: blue, vni: 16777215}]"}},
		{"name with digits and dash", map[string]string{"networks": "networks: [{name: net-1, vni: 1}]"}},
		{"63-char name", map[string]string{"networks": "networks: [{name: " + strings.Repeat("a", 63) + ", vni: 1}]"}},
		{"colliding default rd resolved explicitly", map[string]string{"networks": `networks: [{name: a, vni: 1}, {name: b, vni: 65537, rd: "198.18.0.11:2"}]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse(doc(tc.over)); err != nil {
				t.Fatalf("Parse: %v\nconfig:\n%s", err, doc(tc.over))
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const bgpOK = "asn: 65000, routerID: 198.18.0.11"
	for _, tc := range []struct {
		name string
		over map[string]string
		want []string // substrings the error must contain
	}{
		{"missing node", map[string]string{"node": ""}, []string{"node: required"}},
		{"missing api.listen", map[string]string{"api": "api: {}"}, []string{"api.listen: required"}},
		{"duplicate detection on every move", map[string]string{"representors": "representors: emulated\nmacMobility: {duplicateMoves: 1}"}, []string{"macMobility.duplicateMoves: must be at least 2"}},
		{"TCP API without TLS", map[string]string{"api": `api: {listen: "198.18.1.2:50051"}`}, []string{"api.tls.ca: required for a TCP listener", "api.tls.cert: required", "api.tls.key: required"}},
		{"TCP API without port", map[string]string{"api": `api: {listen: "198.18.1.2", insecure: true}`}, []string{`api.listen: want "host:port"`}},
		{"insecure with TLS", map[string]string{"api": `api: {listen: "198.18.1.2:1", insecure: true, tls: {ca: a, cert: b, key: c}}`}, []string{"api.insecure: cannot be combined with api.tls"}},
		{"TLS on a unix socket", map[string]string{"api": `api: {listen: "unix:/x", tls: {ca: a, cert: b, key: c}}`}, []string{"api.tls: not used on a unix socket"}},
		{"operator socket not unix", map[string]string{"api": `api: {listen: "unix:/x", socket: "/run/x"}`}, []string{`api.socket: must be "unix:/path"`}},
		{"host without node", map[string]string{"networks": "networks: [{name: blue, vni: 1}]\nhosts: [{networks: [blue]}]"}, []string{"hosts[0].node: required"}},
		{"duplicate host", map[string]string{"networks": "networks: [{name: blue, vni: 1}]\nhosts: [{node: a}, {node: a}]"}, []string{`hosts[1].node: "a" already listed as hosts[0]`}},
		{"host on unknown network", map[string]string{"networks": "networks: [{name: blue, vni: 1}]\nhosts: [{node: a, networks: [green]}]"}, []string{`hosts[0].networks[0]: no network named "green"`}},
		{"asn 0", map[string]string{"bgp": "bgp: {asn: 0, routerID: 198.18.0.11}"}, []string{"bgp.asn: required and must be non-zero"}},
		{"asn missing", map[string]string{"bgp": "bgp: {routerID: 198.18.0.11}"}, []string{"bgp.asn: required"}},
		{"routerID IPv6", map[string]string{"bgp": `bgp: {asn: 65000, routerID: "::1"}`}, []string{`bgp.routerID: must be an IPv4 address, got "::1"`}},
		{"routerID missing", map[string]string{"bgp": "bgp: {asn: 65000}"}, []string{`bgp.routerID: must be an IPv4 address, got ""`}},
		{"listenPort -2", map[string]string{"bgp": "bgp: {" + bgpOK + ", listenPort: -2}"}, []string{"bgp.listenPort:", "got -2"}},
		{"listenPort 65536", map[string]string{"bgp": "bgp: {" + bgpOK + ", listenPort: 65536}"}, []string{"bgp.listenPort:", "got 65536"}},
		{"neighbor without address", map[string]string{"bgp": "bgp: {" + bgpOK + ", neighbors: [{asn: 65000}]}"}, []string{"bgp.neighbors[0].address: required"}},
		{"duplicate neighbor", map[string]string{"bgp": "bgp: {" + bgpOK + ", neighbors: [{address: 198.18.0.1, asn: 65000}, {address: 198.18.0.1, asn: 65001}]}"},
			[]string{"bgp.neighbors[1].address: duplicate neighbor 198.18.0.1"}},
		{"neighbor asn 0", map[string]string{"bgp": "bgp: {" + bgpOK + ", neighbors: [{address: 198.18.0.1, asn: 0}]}"}, []string{"bgp.neighbors[0].asn: required"}},
		{"second neighbor asn missing", map[string]string{"bgp": "bgp: {" + bgpOK + ", neighbors: [{address: 198.18.0.1, asn: 1}, {address: 198.18.0.2}]}"}, []string{"bgp.neighbors[1].asn: required"}},
		{"vtep.address missing", map[string]string{"vtep": "vtep: {port: 4789}"}, []string{`vtep.address: must be an IPv4 address, got ""`}},
		{"vtep.address IPv6", map[string]string{"vtep": `vtep: {address: "2001:db8::1"}`}, []string{`vtep.address: must be an IPv4 address, got "2001:db8::1"`}},
		{"representors foo", map[string]string{"representors": "representors: foo"}, []string{`representors: must be sriovnet or emulated, got "foo"`}},
		{"backend tc", map[string]string{"dataplane": "dataplane: {backend: tc}"}, []string{`dataplane.backend: must be ovs, got "tc"`}},
		{"ovs.db without scheme", map[string]string{"dataplane": "dataplane: {ovs: {db: /var/run/x}}"}, []string{`dataplane.ovs.db: must start with unix: or tcp: (ssl: is not supported yet), got "/var/run/x"`}},
		{"ovs.db over ssl", map[string]string{"dataplane": `dataplane: {ovs: {db: "ssl:10.0.0.1:6640"}}`}, []string{"ssl: is not supported yet"}},
		{"bridge name 16 chars", map[string]string{"dataplane": "dataplane: {ovs: {bridge: br-kai-16-chars-}}"}, []string{"dataplane.ovs.bridge: must be a valid interface name", `"br-kai-16-chars-"`}},
		{"bridge name with slash", map[string]string{"dataplane": "dataplane: {ovs: {bridge: br/0}}"}, []string{"dataplane.ovs.bridge:"}},
		{"datapathType dpdk", map[string]string{"dataplane": "dataplane: {ovs: {datapathType: dpdk}}"}, []string{`dataplane.ovs.datapathType: must be system or netdev, got "dpdk"`}},
		{"network name uppercase", map[string]string{"networks": "networks: [{name: Blue, vni: 1}]"}, []string{"networks[0].name: must be 1-63 lowercase", `got "Blue"`}},
		{"network name empty", map[string]string{"networks": "networks: [{vni: 1}]"}, []string{"networks[0].name: must be 1-63", `got ""`}},
		{"network name 64 chars", map[string]string{"networks": "networks: [{name: " + strings.Repeat("a", 64) + ", vni: 1}]"}, []string{"networks[0].name: must be 1-63"}},
		{"network name underscore", map[string]string{"networks": "networks: [{name: a_b, vni: 1}]"}, []string{"networks[0].name:"}},
		{"duplicate network name", map[string]string{"networks": "networks: [{name: blue, vni: 1}, {name: red, vni: 2}, {name: blue, vni: 3}]"},
			[]string{`networks[2].name: "blue" already used by networks[0]`}},
		{"vni 0", map[string]string{"networks": "networks: [{name: blue, vni: 10}, {name: red, vni: 0}]"}, []string{"networks[1].vni: must be 1..16777215, got 0"}},
		{"vni missing", map[string]string{"networks": "networks: [{name: blue}]"}, []string{"networks[0].vni: must be 1..16777215, got 0"}},
		{"vni 16777216", map[string]string{"networks": "networks: [{name: blue, vni: 16777216}]"}, []string{"networks[0].vni: must be 1..16777215, got 16777216"}},
		{"duplicate vni", map[string]string{"networks": `networks: [{name: blue, vni: 7, rd: "1.1.1.1:1"}, {name: red, vni: 7, rd: "1.1.1.1:2"}]`},
			[]string{"networks[1].vni: 7 already used by networks[0]"}},
		{"bad rd", map[string]string{"networks": `networks: [{name: blue, vni: 1, rd: "x"}]`}, []string{`networks[0].rd: route distinguisher "x" must be IPv4:number`}},
		{"rd with IPv6", map[string]string{"networks": `networks: [{name: blue, vni: 1, rd: "fe80:1"}]`}, []string{`networks[0].rd: route distinguisher "fe80:1" must start with an IPv4 address`}},
		{"rd number too big", map[string]string{"networks": `networks: [{name: blue, vni: 1, rd: "1.2.3.4:65536"}]`}, []string{`networks[0].rd: route distinguisher "1.2.3.4:65536": number must be 0..65535`}},
		{"default rd collision", map[string]string{"networks": "networks: [{name: a, vni: 1}, {name: b, vni: 65537}]"},
			[]string{"networks[1].rd: 198.18.0.11:1 already used by networks[0]", "set rd explicitly"}},
		{"explicit rd collides with default", map[string]string{"networks": `networks: [{name: a, vni: 5}, {name: b, vni: 6, rd: "198.18.0.11:5"}]`},
			[]string{"networks[1].rd: 198.18.0.11:5 already used by networks[0]"}},
		{"import rt without colon", map[string]string{"networks": `networks: [{name: blue, vni: 1, routeTargets: {import: ["65000"]}}]`},
			[]string{`networks[0].routeTargets.import[0]: route target "65000" must be AS:number`}},
		{"export rt without colon", map[string]string{"networks": `networks: [{name: blue, vni: 1, routeTargets: {export: ["65000:1", "65000"]}}]`},
			[]string{`networks[0].routeTargets.export[1]: route target "65000" must be AS:number`}},
		{"rt with 4-byte AS", map[string]string{"networks": `networks: [{name: blue, vni: 1, routeTargets: {import: ["65536:1"]}}]`},
			[]string{`networks[0].routeTargets.import[0]: route target "65536:1": AS must be 0..65535`}},
		{"rt local part too big", map[string]string{"networks": `networks: [{name: blue, vni: 1, routeTargets: {export: ["1:4294967296"]}}]`},
			[]string{`networks[0].routeTargets.export[0]: route target "1:4294967296": number must be 0..4294967295`}},
		{"unknown nested field", map[string]string{"bgp": "bgp: {asnn: 1, " + bgpOK + "}"}, []string{"decode config", `"asnn"`}},
		{"unknown top-level field", map[string]string{"representors": "representor: emulated"}, []string{"decode config", `"representor"`}},
		{"unknown network field", map[string]string{"networks": "networks: [{name: blue, vni: 1, vlan: 3}]"}, []string{"decode config", `"vlan"`}},
		{"wrong type", map[string]string{"networks": "networks: [{name: blue, vni: abc}]"}, []string{"decode config"}},
		{"negative vni", map[string]string{"networks": "networks: [{name: blue, vni: -1}]"}, []string{"decode config"}},
		{"bad IP", map[string]string{"vtep": "vtep: {address: 300.1.1.1}"}, []string{"decode config"}},
		{"invalid YAML", map[string]string{"node": "node: [unterminated"}, []string{"decode config"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := doc(tc.over)
			c, err := Parse(data)
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want error containing %q\nconfig:\n%s", c, tc.want, data)
			}
			if c != nil {
				t.Errorf("Parse returned a config together with error %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseReportsAllErrors(t *testing.T) {
	data := doc(map[string]string{
		"node":         "",
		"representors": "representors: foo",
		"networks":     "networks: [{name: blue, vni: 0}]",
	})
	_, err := Parse(data)
	if err == nil {
		t.Fatal("Parse succeeded, want errors")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "invalid config: ") {
		t.Errorf("error %q does not start with %q", msg, "invalid config: ")
	}
	for _, w := range []string{"node: required", `representors: must be sriovnet or emulated, got "foo"`, "networks[0].vni: must be 1..16777215, got 0"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q\ndoes not contain %q", msg, w)
		}
	}
	// One error per line, exactly the three problems.
	if n := strings.Count(msg, "\n") + 1; n != 3 {
		t.Errorf("error has %d lines, want 3:\n%s", n, msg)
	}
}

func TestValidateSingleProblemIsSingleError(t *testing.T) {
	// A one-field mistake yields exactly one error line, naming that field.
	for _, tc := range []struct {
		name  string
		over  map[string]string
		field string
	}{
		{"datapath", map[string]string{"dataplane": "dataplane: {ovs: {datapathType: dpdk}}"}, "dataplane.ovs.datapathType:"},
		{"vni", map[string]string{"networks": "networks: [{name: blue, vni: 16777216}]"}, "networks[0].vni:"},
		{"neighbor", map[string]string{"bgp": "bgp: {asn: 1, routerID: 1.1.1.1, neighbors: [{address: 2.2.2.2}]}"}, "bgp.neighbors[0].asn:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(doc(tc.over))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || !strings.Contains(msg, tc.field) {
				t.Errorf("error %q: want a single error naming %s", msg, tc.field)
			}
		})
	}
}

func TestParseRD(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want RD
	}{
		{"198.18.0.11:10100", RD{IP: netip.MustParseAddr("198.18.0.11"), Local: 10100}},
		{"0.0.0.0:0", RD{IP: netip.MustParseAddr("0.0.0.0"), Local: 0}},
		{"255.255.255.255:65535", RD{IP: netip.MustParseAddr("255.255.255.255"), Local: 65535}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRD(tc.in)
			if err != nil {
				t.Fatalf("ParseRD(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("ParseRD(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			if s := got.String(); s != tc.in {
				t.Errorf("String() = %q, want %q", s, tc.in)
			}
			again, err := ParseRD(got.String())
			if err != nil || again != got {
				t.Errorf("round trip: ParseRD(%q) = %+v, %v", got.String(), again, err)
			}
		})
	}
	for _, in := range []string{"", "x", "1.2.3.4", "1.2.3.4:", ":1", "1.2.3.4:65536", "1.2.3.4:-1", "1.2.3.4:a",
		"1.2.3:1", "fe80::1:1", "::ffff:1.2.3.4:1", "host:1", "1.2.3.4:1:2"} {
		t.Run("reject "+in, func(t *testing.T) {
			if got, err := ParseRD(in); err == nil {
				t.Errorf("ParseRD(%q) = %+v, want error", in, got)
			} else if !strings.Contains(err.Error(), "route distinguisher") {
				t.Errorf("ParseRD(%q) error %q does not say route distinguisher", in, err)
			}
		})
	}
}

func TestParseRT(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want RT
	}{
		{"65000:10200", RT{AS: 65000, Local: 10200}},
		{"0:0", RT{}},
		{"65535:4294967295", RT{AS: 65535, Local: 4294967295}},
		{"1:16777215", RT{AS: 1, Local: 16777215}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRT(tc.in)
			if err != nil {
				t.Fatalf("ParseRT(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("ParseRT(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			if s := got.String(); s != tc.in {
				t.Errorf("String() = %q, want %q", s, tc.in)
			}
			again, err := ParseRT(got.String())
			if err != nil || again != got {
				t.Errorf("round trip: ParseRT(%q) = %+v, %v", got.String(), again, err)
			}
		})
	}
	for _, in := range []string{"", "65000", "65000:", ":1", "65536:1", "-1:1", "a:1", "1:a", "1:-1", "1:4294967296",
		"1.2.3.4:1", "1:2:3"} {
		t.Run("reject "+in, func(t *testing.T) {
			if got, err := ParseRT(in); err == nil {
				t.Errorf("ParseRT(%q) = %+v, want error", in, got)
			} else if !strings.Contains(err.Error(), "route target") {
				t.Errorf("ParseRT(%q) error %q does not say route target", in, err)
			}
		})
	}
}

func TestParseNormalizesCommunities(t *testing.T) {
	base := `node: n
api: {listen: "unix:/x"}
bgp: {asn: 65000, routerID: 198.18.0.11}
vtep: {address: 198.18.0.11}
`
	c, err := Parse([]byte(base + `networks: [{name: blue, vni: 10100, rd: "198.18.0.11:0100", routeTargets: {import: ["65000:010100"], export: ["065000:10100"]}}]`))
	if err != nil {
		t.Fatal(err)
	}
	n := c.Networks[0]
	if n.RD != "198.18.0.11:100" || n.RouteTargets.Import[0] != "65000:10100" || n.RouteTargets.Export[0] != "65000:10100" {
		t.Fatalf("not normalized: rd %q import %v export %v", n.RD, n.RouteTargets.Import, n.RouteTargets.Export)
	}
	_, err = Parse([]byte(base + `networks: [{name: a, vni: 1, rd: "198.18.0.11:01"}, {name: b, vni: 2, rd: "198.18.0.11:1"}]`))
	if err == nil || !strings.Contains(err.Error(), "networks[1].rd: 198.18.0.11:1 already used by networks[0]") {
		t.Fatalf("RDs equal by value must collide, got %v", err)
	}
}
