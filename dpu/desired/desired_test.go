package desired

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/kai-dpu/kai/dpu/config"
	"github.com/kai-dpu/kai/dpu/evpn"
	"github.com/kai-dpu/kai/dpu/store"
	"github.com/kai-dpu/kai/offload"
)

// Networks are listed out of VNI order on purpose.
const testConfig = `
node: server-a
api: {listen: "unix:/run/kai/dpu.sock"}
bgp:
  asn: 65000
  routerID: 198.18.0.11
  neighbors: [{address: 198.18.0.1, asn: 65000}]
vtep: {address: 198.18.0.11}
representors: emulated
networks:
  - {name: red, vni: 10200}
  - {name: blue, vni: 10100}
`

const (
	blueRD = "198.18.0.11:10100"
	blueRT = "65000:10100"
	redRD  = "198.18.0.11:10200"
	redRT  = "65000:10200"
	macA   = "02:00:00:00:00:0a"
	macB   = "02:00:00:00:00:0b"
)

var (
	self    = netip.MustParseAddr("198.18.0.11")
	vtepLow = netip.MustParseAddr("198.18.0.2") // lower than self
	vtep21  = netip.MustParseAddr("198.18.0.21")
	vtep22  = netip.MustParseAddr("198.18.0.22")
	vtep3   = netip.MustParseAddr("198.18.0.3") // sorts after .21/.22 as a string, before as an address
)

func testCfg(t *testing.T) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(testConfig))
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	return c
}

func ips(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, x := range s {
		out = append(out, netip.MustParseAddr(x))
	}
	return out
}

func att(id, network, mac, rep string, seq uint32, addrs ...string) store.Attachment {
	return store.Attachment{ID: id, Node: "server-a", Network: network, MAC: mac, Representor: rep, Seq: seq, IPs: ips(addrs...)}
}

func t3(rd, rt string, vtep netip.Addr, vni uint32) evpn.Route {
	return evpn.Route{Type: evpn.InclusiveMulticast, RD: rd, VTEP: vtep, VNI: vni, RTs: []string{rt}, Peer: "198.18.0.1"}
}

func t2(rt string, vtep netip.Addr, mac string, seq uint32) evpn.Route {
	return evpn.Route{Type: evpn.MACIP, RD: vtep.String() + ":1", MAC: mac, VTEP: vtep, VNI: 1, Seq: seq, RTs: []string{rt}, Peer: "198.18.0.1"}
}

func sticky(r evpn.Route) evpn.Route { r.Sticky = true; return r }

func withIP(r evpn.Route, ip string) evpn.Route { r.IP = netip.MustParseAddr(ip); return r }

// localT2 are the type-2 routes Kai must originate for an attachment.
func localT2(rd string, vni uint32, rt, mac string, seq uint32, addrs ...string) []evpn.Route {
	base := evpn.Route{Type: evpn.MACIP, RD: rd, MAC: mac, VTEP: self, VNI: vni, Seq: seq, RTs: []string{rt}}
	out := []evpn.Route{base}
	for _, a := range addrs {
		out = append(out, withIP(base, a))
	}
	return out
}

func localT3() []evpn.Route {
	return []evpn.Route{
		{Type: evpn.InclusiveMulticast, RD: blueRD, VTEP: self, VNI: 10100, RTs: []string{blueRT}},
		{Type: evpn.InclusiveMulticast, RD: redRD, VTEP: self, VNI: 10200, RTs: []string{redRT}},
	}
}

func netByName(t *testing.T, out Output, name string) offload.Network {
	t.Helper()
	for _, n := range out.Dataplane.Networks {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("network %q not in dataplane %+v", name, out.Dataplane.Networks)
	return offload.Network{}
}

func portsEqual(a, b []offload.Port) bool {
	return slices.EqualFunc(a, b, func(x, y offload.Port) bool {
		return x.Name == y.Name && x.Owner == y.Owner && x.MAC == y.MAC && x.Moved == y.Moved && slices.Equal(x.IPs, y.IPs)
	})
}

func routesEqual(a, b []evpn.Route) bool {
	return slices.EqualFunc(a, b, evpn.Route.Equal)
}

func fmtRoutes(rs []evpn.Route) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "\n  %s rts=%v", r, r.RTs)
	}
	return b.String()
}

// checkInvariants asserts what must hold for any output.
func checkInvariants(t *testing.T, cfg *config.Config, out Output) {
	t.Helper()
	if out.Dataplane.VTEP != self || out.Dataplane.VXLANPort != 4789 {
		t.Errorf("dataplane VTEP/port = %v/%d, want %v/4789", out.Dataplane.VTEP, out.Dataplane.VXLANPort, self)
	}
	if out.Problems == nil {
		t.Errorf("Problems is nil, want an empty map when there are none")
	}
	if len(out.Dataplane.Networks) != len(cfg.Networks) {
		t.Errorf("dataplane has %d networks, config %d", len(out.Dataplane.Networks), len(cfg.Networks))
	}
	if !slices.IsSortedFunc(out.Dataplane.Networks, func(a, b offload.Network) int { return int(a.VNI) - int(b.VNI) }) {
		t.Errorf("networks not sorted by VNI: %+v", out.Dataplane.Networks)
	}
	if !sort.SliceIsSorted(out.Routes, func(i, j int) bool { return out.Routes[i].Key() < out.Routes[j].Key() }) {
		t.Errorf("routes not sorted by key:%s", fmtRoutes(out.Routes))
	}
	for _, n := range out.Dataplane.Networks {
		if !sort.SliceIsSorted(n.Ports, func(i, j int) bool { return n.Ports[i].Name < n.Ports[j].Name }) {
			t.Errorf("%s: ports not sorted: %+v", n.Name, n.Ports)
		}
		if !sort.SliceIsSorted(n.Remote, func(i, j int) bool { return n.Remote[i].MAC < n.Remote[j].MAC }) {
			t.Errorf("%s: remote not sorted: %+v", n.Name, n.Remote)
		}
		if !slices.IsSortedFunc(n.Flood, netip.Addr.Compare) {
			t.Errorf("%s: flood not sorted: %v", n.Name, n.Flood)
		}
		if slices.Contains(n.Flood, self) {
			t.Errorf("%s: flood contains our own VTEP", n.Name)
		}
	}
}

func TestCompute(t *testing.T) {
	type netWant struct {
		ports  []offload.Port
		remote []offload.RemoteMAC
		flood  []netip.Addr
	}
	for _, tc := range []struct {
		name     string
		atts     []store.Attachment
		learned  []evpn.Route
		blue     netWant
		red      netWant
		routes   []evpn.Route      // in any order; nil means only the two type-3 routes
		problems map[string]string // id -> substring
	}{
		{
			name: "empty: one type-3 per network, empty networks",
		},
		{
			name: "one attachment with two IPs",
			atts: []store.Attachment{att("a1", "blue", macA, "pf0vf1", 3, "10.0.0.1", "2001:db8::1")},
			blue: netWant{ports: []offload.Port{{Name: "pf0vf1", Owner: "a1", MAC: macA, IPs: ips("10.0.0.1", "2001:db8::1")}}},
			routes: append(localT3(),
				localT2(blueRD, 10100, blueRT, macA, 3, "10.0.0.1", "2001:db8::1")...),
		},
		{
			name: "attachments in both networks, ports sorted by representor",
			atts: []store.Attachment{
				att("z", "blue", macB, "pf0vf9", 0),
				att("y", "blue", macA, "pf0vf1", 0, "10.0.0.1"),
				att("x", "red", macA, "pf0vf2", 1),
			},
			blue: netWant{ports: []offload.Port{
				{Name: "pf0vf1", Owner: "y", MAC: macA, IPs: ips("10.0.0.1")},
				{Name: "pf0vf9", Owner: "z", MAC: macB},
			}},
			red: netWant{ports: []offload.Port{{Name: "pf0vf2", Owner: "x", MAC: macA}}},
			routes: slices.Concat(localT3(),
				localT2(blueRD, 10100, blueRT, macA, 0, "10.0.0.1"),
				localT2(blueRD, 10100, blueRT, macB, 0),
				localT2(redRD, 10200, redRT, macA, 1)),
		},
		{
			name: "type-3 flood list: own RT imported, foreign RT and own VTEP ignored",
			learned: []evpn.Route{
				t3("198.18.0.21:10100", blueRT, vtep21, 10100),
				t3("198.18.0.3:10100", blueRT, vtep3, 10100),
				t3("198.18.0.21:9", "65000:99999", vtep21, 9),
				t3("198.18.0.22:9", "65000:99999", vtep22, 9),
				t3(blueRD, blueRT, self, 10100),
				t3("198.18.0.22:10200", redRT, vtep22, 10200),
				// The same VTEP via a second route reflector appears once.
				t3("198.18.0.21:10100", blueRT, vtep21, 10100),
			},
			blue: netWant{flood: []netip.Addr{vtep3, vtep21}},
			red:  netWant{flood: []netip.Addr{vtep22}},
		},
		{
			name:    "type-2 for an unknown MAC becomes a remote entry",
			learned: []evpn.Route{t2(blueRT, vtep21, macA, 0), withIP(t2(blueRT, vtep21, macA, 0), "10.0.0.5")},
			blue:    netWant{remote: []offload.RemoteMAC{{MAC: macA, VTEP: vtep21}}},
		},
		{
			name:    "type-2 with a foreign RT is ignored",
			learned: []evpn.Route{t2("65000:99999", vtep21, macA, 0)},
		},
		{
			name:    "higher sequence wins over lower VTEP",
			learned: []evpn.Route{t2(blueRT, vtep21, macA, 1), t2(blueRT, vtep22, macA, 2)},
			blue:    netWant{remote: []offload.RemoteMAC{{MAC: macA, VTEP: vtep22}}},
		},
		{
			name:    "equal sequence: lowest VTEP address wins (not lowest string)",
			learned: []evpn.Route{t2(blueRT, vtep22, macA, 5), t2(blueRT, vtep3, macA, 5), t2(blueRT, vtep21, macA, 5)},
			blue:    netWant{remote: []offload.RemoteMAC{{MAC: macA, VTEP: vtep3}}},
		},
		{
			name:    "sticky beats higher sequence",
			learned: []evpn.Route{t2(blueRT, vtep21, macA, 7), sticky(t2(blueRT, vtep22, macA, 0))},
			blue:    netWant{remote: []offload.RemoteMAC{{MAC: macA, VTEP: vtep22}}},
		},
		{
			name: "a VTEP's claim is its highest sequence across its routes",
			learned: []evpn.Route{
				t2(blueRT, vtep22, macA, 1),
				withIP(t2(blueRT, vtep22, macA, 3), "10.0.0.5"),
				t2(blueRT, vtep21, macA, 2),
			},
			blue: netWant{remote: []offload.RemoteMAC{{MAC: macA, VTEP: vtep22}}},
		},
		{
			name: "several remote MACs sorted by MAC",
			learned: []evpn.Route{
				t2(blueRT, vtep22, macB, 0),
				t2(blueRT, vtep21, macA, 0),
			},
			blue: netWant{remote: []offload.RemoteMAC{{MAC: macA, VTEP: vtep21}, {MAC: macB, VTEP: vtep22}}},
		},
		{
			name:     "MAC move: remote seq 1 beats local seq 0",
			atts:     []store.Attachment{att("a1", "blue", macA, "pf0vf1", 0, "10.0.0.1")},
			learned:  []evpn.Route{t2(blueRT, vtep21, macA, 1)},
			blue:     netWant{ports: []offload.Port{{Name: "pf0vf1", Owner: "a1", MAC: macA, IPs: ips("10.0.0.1"), Moved: true}}, remote: []offload.RemoteMAC{{MAC: macA, VTEP: vtep21}}},
			problems: map[string]string{"a1": "moved"},
		},
		{
			name:    "local seq 2 beats remote seq 1",
			atts:    []store.Attachment{att("a1", "blue", macA, "pf0vf1", 2, "10.0.0.1")},
			learned: []evpn.Route{t2(blueRT, vtep21, macA, 1)},
			blue:    netWant{ports: []offload.Port{{Name: "pf0vf1", Owner: "a1", MAC: macA, IPs: ips("10.0.0.1")}}},
			routes:  append(localT3(), localT2(blueRD, 10100, blueRT, macA, 2, "10.0.0.1")...),
		},
		{
			name:     "remote sticky beats local",
			atts:     []store.Attachment{att("a1", "blue", macA, "pf0vf1", 9)},
			learned:  []evpn.Route{sticky(t2(blueRT, vtep21, macA, 0))},
			blue:     netWant{ports: []offload.Port{{Name: "pf0vf1", Owner: "a1", MAC: macA, Moved: true}}, remote: []offload.RemoteMAC{{MAC: macA, VTEP: vtep21}}},
			problems: map[string]string{"a1": "198.18.0.21"},
		},
		{
			name:    "equal sequence with a higher remote VTEP: local wins",
			atts:    []store.Attachment{att("a1", "blue", macA, "pf0vf1", 4)},
			learned: []evpn.Route{t2(blueRT, vtep21, macA, 4)},
			blue:    netWant{ports: []offload.Port{{Name: "pf0vf1", Owner: "a1", MAC: macA}}},
			routes:  append(localT3(), localT2(blueRD, 10100, blueRT, macA, 4)...),
		},
		{
			name:     "equal sequence with a lower remote VTEP: remote wins (RFC 7432 15.1 tie-break)",
			atts:     []store.Attachment{att("a1", "blue", macA, "pf0vf1", 4)},
			learned:  []evpn.Route{t2(blueRT, vtepLow, macA, 4)},
			blue:     netWant{ports: []offload.Port{{Name: "pf0vf1", Owner: "a1", MAC: macA, Moved: true}}, remote: []offload.RemoteMAC{{MAC: macA, VTEP: vtepLow}}},
			problems: map[string]string{"a1": "198.18.0.2"},
		},
		{
			name:     "attachment to an unconfigured network",
			atts:     []store.Attachment{att("g1", "green", macA, "pf0vf1", 0, "10.0.0.1"), att("b1", "blue", macB, "pf0vf2", 0)},
			blue:     netWant{ports: []offload.Port{{Name: "pf0vf2", Owner: "b1", MAC: macB}}},
			routes:   append(localT3(), localT2(blueRD, 10100, blueRT, macB, 0)...),
			problems: map[string]string{"g1": `network "green" is not configured`},
		},
		{
			name:    "same MAC in two networks does not interact",
			atts:    []store.Attachment{att("a1", "blue", macA, "pf0vf1", 0)},
			learned: []evpn.Route{t2(redRT, vtep21, macA, 5)},
			blue:    netWant{ports: []offload.Port{{Name: "pf0vf1", Owner: "a1", MAC: macA}}},
			red:     netWant{remote: []offload.RemoteMAC{{MAC: macA, VTEP: vtep21}}},
			routes:  append(localT3(), localT2(blueRD, 10100, blueRT, macA, 0)...),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testCfg(t)
			out := Compute(Input{Config: cfg, Attachments: tc.atts, Learned: tc.learned})
			checkInvariants(t, cfg, out)

			if got := len(out.Dataplane.Networks); got != 2 {
				t.Fatalf("dataplane has %d networks, want 2", got)
			}
			for i, w := range []struct {
				name string
				vni  uint32
				nw   netWant
			}{{"blue", 10100, tc.blue}, {"red", 10200, tc.red}} {
				n := out.Dataplane.Networks[i]
				if n.Name != w.name || n.VNI != w.vni {
					t.Errorf("networks[%d] = %s/%d, want %s/%d", i, n.Name, n.VNI, w.name, w.vni)
				}
				if !portsEqual(n.Ports, w.nw.ports) {
					t.Errorf("%s ports = %+v, want %+v", n.Name, n.Ports, w.nw.ports)
				}
				if !slices.Equal(n.Remote, w.nw.remote) {
					t.Errorf("%s remote = %+v, want %+v", n.Name, n.Remote, w.nw.remote)
				}
				if !slices.Equal(n.Flood, w.nw.flood) {
					t.Errorf("%s flood = %v, want %v", n.Name, n.Flood, w.nw.flood)
				}
			}

			want := tc.routes
			if want == nil {
				want = localT3()
			}
			want = slices.Clone(want)
			sort.Slice(want, func(i, j int) bool { return want[i].Key() < want[j].Key() })
			if !routesEqual(out.Routes, want) {
				t.Errorf("routes:%s\nwant:%s", fmtRoutes(out.Routes), fmtRoutes(want))
			}

			if len(out.Problems) != len(tc.problems) {
				t.Errorf("problems = %v, want keys of %v", out.Problems, tc.problems)
			}
			for id, sub := range tc.problems {
				if got, ok := out.Problems[id]; !ok || !strings.Contains(got, sub) {
					t.Errorf("problems[%q] = %q (present %v), want it to contain %q", id, got, ok, sub)
				}
			}
		})
	}
}

func TestComputeMovedAttachmentDetails(t *testing.T) {
	cfg := testCfg(t)
	out := Compute(Input{
		Config:      cfg,
		Attachments: []store.Attachment{att("a1", "blue", macA, "pf0vf1", 0, "10.0.0.1")},
		Learned:     []evpn.Route{t2(blueRT, vtep21, macA, 1)},
	})
	for _, r := range out.Routes {
		if r.Type == evpn.MACIP {
			t.Errorf("type-2 originated for a MAC that moved away: %s", r)
		}
	}
	p := out.Problems["a1"]
	for _, w := range []string{"moved", macA, "198.18.0.21"} {
		if !strings.Contains(p, w) {
			t.Errorf("problem %q does not mention %q", p, w)
		}
	}
	// The moved port stays attached (anti-spoofing still applies).
	blue := netByName(t, out, "blue")
	if len(blue.Ports) != 1 || !blue.Ports[0].Moved || blue.Ports[0].Owner != "a1" {
		t.Errorf("blue ports = %+v, want the moved port of a1", blue.Ports)
	}
}

// FRR #10468: once the higher-sequence route is withdrawn, the remaining
// lower-sequence route must be installed, not left stale or dropped.
func TestComputeFallsBackAfterWithdraw(t *testing.T) {
	cfg := testCfg(t)
	high := t2(blueRT, vtep21, macA, 2)
	low := t2(blueRT, vtep22, macA, 1)

	for _, step := range []struct {
		name    string
		learned []evpn.Route
		want    []offload.RemoteMAC
	}{
		{"both present", []evpn.Route{low, high}, []offload.RemoteMAC{{MAC: macA, VTEP: vtep21}}},
		{"higher withdrawn", []evpn.Route{low}, []offload.RemoteMAC{{MAC: macA, VTEP: vtep22}}},
		{"all withdrawn", nil, nil},
	} {
		out := Compute(Input{Config: cfg, Learned: step.learned})
		if got := netByName(t, out, "blue").Remote; !slices.Equal(got, step.want) {
			t.Errorf("%s: blue remote = %+v, want %+v", step.name, got, step.want)
		}
	}

	// Same with a local attachment that had lost the MAC: after the winner
	// withdraws, the remaining remote (seq 1 > local 0) still wins.
	atts := []store.Attachment{att("a1", "blue", macA, "pf0vf1", 0)}
	out := Compute(Input{Config: cfg, Attachments: atts, Learned: []evpn.Route{low}})
	blue := netByName(t, out, "blue")
	if !slices.Equal(blue.Remote, []offload.RemoteMAC{{MAC: macA, VTEP: vtep22}}) || len(blue.Ports) != 1 || !blue.Ports[0].Moved {
		t.Errorf("local seq 0 vs remaining remote seq 1: blue = %+v", blue)
	}
}

func TestComputeDeterministic(t *testing.T) {
	cfg := testCfg(t)
	atts := []store.Attachment{
		att("a1", "blue", macA, "pf0vf1", 0, "10.0.0.1"),
		att("a2", "blue", macB, "pf0vf2", 3),
		att("a3", "red", macA, "pf0vf3", 1, "10.1.0.1", "10.1.0.2"),
		att("a4", "red", "02:00:00:00:00:0c", "pf0vf4", 0),
		att("a5", "green", "02:00:00:00:00:0d", "pf0vf5", 0),
	}
	learned := []evpn.Route{
		t3("198.18.0.21:10100", blueRT, vtep21, 10100),
		t3("198.18.0.22:10100", blueRT, vtep22, 10100),
		t3("198.18.0.3:10200", redRT, vtep3, 10200),
		t2(blueRT, vtep21, macA, 1),
		t2(blueRT, vtep22, macA, 1),
		t2(blueRT, vtep21, macB, 2),
		t2(redRT, vtep3, "02:00:00:00:00:0c", 0),
		t2(redRT, vtep22, "02:00:00:00:00:0e", 0),
		t2(redRT, vtep21, "02:00:00:00:00:0e", 0),
		t2(blueRT, vtep3, "02:00:00:00:00:0f", 2),
		sticky(t2(blueRT, vtep22, "02:00:00:00:00:0f", 0)),
	}
	attsCopy := slices.Clone(atts)
	a := Compute(Input{Config: cfg, Attachments: atts, Learned: learned})
	if !reflect.DeepEqual(atts, attsCopy) {
		t.Errorf("Compute reordered or modified its input attachments")
	}
	rAtts, rLearned := slices.Clone(atts), slices.Clone(learned)
	slices.Reverse(rAtts)
	slices.Reverse(rLearned)
	for i := 0; i < 5; i++ { // several runs to shake out map-order dependence
		b := Compute(Input{Config: cfg, Attachments: rAtts, Learned: rLearned})
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("Compute differs on reordered input:\n%+v\n%+v", a, b)
		}
	}
	checkInvariants(t, cfg, a)
	// Sanity: the input exercised the interesting paths.
	if len(a.Problems) != 3 { // a1 (moved), a4 (tie, .3 < .11), a5 (unknown network)
		t.Errorf("problems = %v, want a1, a4, a5", a.Problems)
	}
}

func TestSeqFor(t *testing.T) {
	cfg := testCfg(t)
	for _, tc := range []struct {
		name    string
		network string
		learned []evpn.Route
		want    uint32
	}{
		{"no remote claim", "blue", nil, 0},
		{"only other MACs", "blue", []evpn.Route{t2(blueRT, vtep21, macB, 7)}, 0},
		{"remote seq 4", "blue", []evpn.Route{t2(blueRT, vtep21, macA, 4)}, 5},
		{"remote without mobility community", "blue", []evpn.Route{t2(blueRT, vtep21, macA, 0)}, 1},
		{"highest of several remotes", "blue", []evpn.Route{t2(blueRT, vtep21, macA, 4), t2(blueRT, vtep22, macA, 9), withIP(t2(blueRT, vtep3, macA, 2), "10.0.0.1")}, 10},
		{"route in another network's RT ignored", "blue", []evpn.Route{t2(redRT, vtep21, macA, 4)}, 0},
		{"route in this network's RT counted", "red", []evpn.Route{t2(redRT, vtep21, macA, 4)}, 5},
		{"type-3 ignored", "blue", []evpn.Route{t3("198.18.0.21:10100", blueRT, vtep21, 10100)}, 0},
		{"unknown network", "green", []evpn.Route{t2(blueRT, vtep21, macA, 4)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SeqFor(cfg, tc.network, macA, tc.learned); got != tc.want {
				t.Errorf("SeqFor = %d, want %d", got, tc.want)
			}
		})
	}
}

// An attachment originated with SeqFor wins back a MAC the fabric holds.
func TestSeqForWinsMove(t *testing.T) {
	cfg := testCfg(t)
	learned := []evpn.Route{t2(blueRT, vtep21, macA, 4), t2(blueRT, vtepLow, macA, 4)}
	seq := SeqFor(cfg, "blue", macA, learned)
	out := Compute(Input{Config: cfg, Attachments: []store.Attachment{att("a1", "blue", macA, "pf0vf1", seq)}, Learned: learned})
	blue := netByName(t, out, "blue")
	if len(blue.Remote) != 0 || len(blue.Ports) != 1 || blue.Ports[0].Moved {
		t.Errorf("with seq %d local should win: blue = %+v", seq, blue)
	}
	if len(out.Problems) != 0 {
		t.Errorf("problems = %v, want none", out.Problems)
	}
}

func TestComputeIgnoresIPv6VTEPs(t *testing.T) {
	cfg, err := config.Parse([]byte(`node: n
api: {listen: "unix:/x"}
bgp: {asn: 65000, routerID: 198.18.0.11}
vtep: {address: 198.18.0.11}
networks: [{name: blue, vni: 10100}]
`))
	if err != nil {
		t.Fatal(err)
	}
	v6 := netip.MustParseAddr("2001:db8::12")
	out := Compute(Input{Config: cfg, Learned: []evpn.Route{
		{Type: evpn.MACIP, RD: "198.18.0.12:1", MAC: "02:00:00:00:0b:01", VTEP: v6, VNI: 10100, RTs: []string{"65000:10100"}},
		{Type: evpn.InclusiveMulticast, RD: "198.18.0.12:1", VTEP: v6, VNI: 10100, RTs: []string{"65000:10100"}},
	}})
	if n := out.Dataplane.Networks[0]; len(n.Remote) != 0 || len(n.Flood) != 0 {
		t.Fatalf("IPv6 VTEP reached the IPv4 VXLAN dataplane: %+v", n)
	}
}

// A frozen MAC stays where it was frozen whatever its routes say, even
// once that location withdraws (RFC 7432 section 15.1).
func TestComputeFrozenMACs(t *testing.T) {
	cfg := testCfg(t)
	t2 := func(vtep netip.Addr, mac string, seq uint32) evpn.Route {
		return evpn.Route{Type: evpn.MACIP, RD: vtep.String() + ":1", MAC: mac, VTEP: vtep, VNI: 10100, Seq: seq, RTs: []string{blueRT}}
	}
	remoteAt := func(out Output, mac string) netip.Addr {
		for _, n := range out.Dataplane.Networks {
			for _, r := range n.Remote {
				if n.Name == "blue" && r.MAC == mac {
					return r.VTEP
				}
			}
		}
		return netip.Addr{}
	}
	frozenAt := func(v netip.Addr) map[MACKey]Frozen {
		return map[MACKey]Frozen{{Network: "blue", MAC: macA}: {VTEP: v, Reason: "duplicate"}}
	}
	// Higher sequence elsewhere is ignored.
	out := Compute(Input{Config: cfg, Learned: []evpn.Route{t2(vtep21, macA, 3), t2(vtep22, macA, 4)}, Frozen: frozenAt(vtep21)})
	if got := remoteAt(out, macA); got != vtep21 {
		t.Fatalf("frozen at %s, dataplane sends to %s", vtep21, got)
	}
	// The frozen location withdrew: still pinned.
	out = Compute(Input{Config: cfg, Learned: []evpn.Route{t2(vtep22, macA, 5)}, Frozen: frozenAt(vtep21)})
	if got := remoteAt(out, macA); got != vtep21 {
		t.Fatalf("frozen at a withdrawn %s, dataplane sends to %s", vtep21, got)
	}
	// Frozen here: the local attachment keeps the MAC (and says why).
	a := att("a", "blue", macA, "pf0vf0", 0)
	out = Compute(Input{Config: cfg, Attachments: []store.Attachment{a}, Learned: []evpn.Route{t2(vtep22, macA, 9)}, Frozen: frozenAt(self)})
	if got := remoteAt(out, macA); got.IsValid() {
		t.Fatalf("frozen locally, dataplane sends to %s", got)
	}
	if out.Problems["a"] != "duplicate" {
		t.Fatalf("local attachment of a frozen MAC: problem %q, want the freeze reason", out.Problems["a"])
	}
	// Other MACs are unaffected.
	out = Compute(Input{Config: cfg, Learned: []evpn.Route{t2(vtep21, macB, 1), t2(vtep22, macB, 2)}, Frozen: frozenAt(vtep21)})
	if got := remoteAt(out, macB); got != vtep22 {
		t.Fatalf("an unfrozen MAC must follow the winner %s, got %s", vtep22, got)
	}
}

// BenchmarkCompute10k is the controller's share of a one-route reconcile
// at 10k learned MACs (the OVS share is offload/ovs's BenchmarkApply).
func BenchmarkCompute10k(b *testing.B) {
	c, err := config.Parse([]byte(testConfig))
	if err != nil {
		b.Fatal(err)
	}
	var learned []evpn.Route
	for i := range 10000 {
		learned = append(learned, evpn.Route{Type: evpn.MACIP, RD: fmt.Sprintf("198.18.1.%d:10100", i%10+1),
			MAC: fmt.Sprintf("02:01:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff), VTEP: netip.AddrFrom4([4]byte{198, 18, 1, byte(i%10 + 1)}),
			VNI: 10100, RTs: []string{blueRT}})
	}
	in := Input{Config: c, Learned: learned}
	b.ReportAllocs()
	for b.Loop() {
		Compute(in)
	}
}
