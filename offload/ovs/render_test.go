package ovs

import (
	"flag"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kai-dpu/kai/offload"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const (
	testVNI   = 10100
	macA      = "02:00:00:00:0a:01"
	macB      = "02:00:00:00:0a:02"
	macRemote = "02:00:00:00:0b:01"
	vxlanOF   = 1
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// testState is one network (VNI 10100) with two local ports, one remote
// MAC and two flood VTEPs.
func testState() offload.State {
	return offload.State{
		VTEP:      addr("198.18.0.11"),
		VXLANPort: 4789,
		Networks: []offload.Network{{
			Name: "blue",
			VNI:  testVNI,
			Ports: []offload.Port{
				{Name: "pf0vf0", Owner: "att-a", MAC: macA, IPs: []netip.Addr{addr("100.64.1.1")}},
				{Name: "pf0vf1", Owner: "att-b", MAC: macB, IPs: []netip.Addr{addr("100.64.1.2"), addr("100.64.1.22")}},
			},
			Remote: []offload.RemoteMAC{{MAC: macRemote, VTEP: addr("198.18.0.12")}},
			Flood:  []netip.Addr{addr("198.18.0.12"), addr("198.18.0.13")},
		}},
	}
}

func testPorts() Ports {
	return Ports{vxlanPortName: vxlanOF, "pf0vf0": 10, "pf0vf1": 11}
}

func mustRender(t *testing.T, s offload.State, ports Ports) Program {
	t.Helper()
	p, err := Render(s, ports, vxlanPortName)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return p
}

// flowKey identifies a flow by what OpenFlow identifies it by.
type flowKey struct {
	table uint8
	prio  uint16
	match string
}

func byKey(t *testing.T, p Program) map[flowKey]Flow {
	t.Helper()
	m := map[flowKey]Flow{}
	for _, f := range p.Flows {
		k := flowKey{f.Table, f.Priority, f.Match}
		if _, dup := m[k]; dup {
			t.Fatalf("two flows with table=%d priority=%d match %q", f.Table, f.Priority, f.Match)
		}
		m[k] = f
	}
	return m
}

// findMatch returns the flows of table with exactly this match, any priority.
func findMatch(p Program, table uint8, match string) []Flow {
	var out []Flow
	for _, f := range p.Flows {
		if f.Table == table && f.Match == match {
			out = append(out, f)
		}
	}
	return out
}

func tunnelActions(vni uint32, vtep string) string {
	return fmt.Sprintf("set_field:%d->tun_id,set_field:%s->tun_dst,output:%d", vni, vtep, vxlanOF)
}

func TestRenderFlows(t *testing.T) {
	p := mustRender(t, testState(), testPorts())
	flows := byKey(t, p)
	accept := "set_field:10100->reg1,goto_table:20"
	srcA := "in_port=10,dl_src=" + macA
	srcB := "in_port=11,dl_src=" + macB

	want := []struct {
		name    string
		table   uint8
		match   string
		actions string
		vni     uint32
		owner   string
	}{
		{"table-0 miss", tableClassify, "", "drop", 0, "kai"},
		{"table-20 miss", tableL2, "", "drop", 0, "kai"},
		{"tunnel classify", tableClassify, "in_port=1,tun_id=10100", "set_field:10100->reg1,set_field:1->reg0,goto_table:20", testVNI, "network:blue"},
		{"port A mac accept", tableClassify, srcA, accept, testVNI, "attachment:att-a"},
		{"port A ip allow", tableClassify, srcA + ",ip,nw_src=100.64.1.1", accept, testVNI, "attachment:att-a"},
		{"port A arp allow", tableClassify, srcA + ",arp,arp_spa=100.64.1.1,arp_sha=" + macA, accept, testVNI, "attachment:att-a"},
		{"port A ip drop", tableClassify, srcA + ",ip", "drop", testVNI, "attachment:att-a"},
		{"port A arp drop", tableClassify, srcA + ",arp", "drop", testVNI, "attachment:att-a"},
		{"port A ipv6 drop", tableClassify, srcA + ",ipv6", "drop", testVNI, "attachment:att-a"},
		{"port A link-local allow", tableClassify, srcA + ",ipv6,ipv6_src=fe80::/10", accept, testVNI, "attachment:att-a"},
		{"port B mac accept", tableClassify, srcB, accept, testVNI, "attachment:att-b"},
		{"port B ip allow 1", tableClassify, srcB + ",ip,nw_src=100.64.1.2", accept, testVNI, "attachment:att-b"},
		{"port B ip allow 2", tableClassify, srcB + ",ip,nw_src=100.64.1.22", accept, testVNI, "attachment:att-b"},
		{"port B arp allow 1", tableClassify, srcB + ",arp,arp_spa=100.64.1.2,arp_sha=" + macB, accept, testVNI, "attachment:att-b"},
		{"port B arp allow 2", tableClassify, srcB + ",arp,arp_spa=100.64.1.22,arp_sha=" + macB, accept, testVNI, "attachment:att-b"},
		{"port B ip drop", tableClassify, srcB + ",ip", "drop", testVNI, "attachment:att-b"},
		{"port B arp drop", tableClassify, srcB + ",arp", "drop", testVNI, "attachment:att-b"},
		{"local MAC A", tableL2, "reg1=10100,dl_dst=" + macA, "output:10", testVNI, "attachment:att-a"},
		{"local MAC B", tableL2, "reg1=10100,dl_dst=" + macB, "output:11", testVNI, "attachment:att-b"},
		{"remote MAC", tableL2, "reg1=10100,reg0=0,dl_dst=" + macRemote, "set_field:10100->tun_id,set_field:198.18.0.12->tun_dst,output:1", testVNI, "remote:198.18.0.12"},
		{"BUM from local", tableL2, "reg1=10100,reg0=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00", "group:10100", testVNI, "network:blue"},
		{"BUM from tunnel", tableL2, "reg1=10100,reg0=1,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00", fmt.Sprintf("group:%d", testVNI|1<<24), testVNI, "network:blue"},
	}
	for _, w := range want {
		got := findMatch(p, w.table, w.match)
		if len(got) != 1 {
			t.Errorf("%s: %d flows in table %d with match %q, want 1", w.name, len(got), w.table, w.match)
			continue
		}
		f := got[0]
		if f.Actions != w.actions {
			t.Errorf("%s: actions %q, want %q", w.name, f.Actions, w.actions)
		}
		if f.VNI != w.vni {
			t.Errorf("%s: VNI %d, want %d", w.name, f.VNI, w.vni)
		}
		if f.Owner != w.owner {
			t.Errorf("%s: owner %q, want %q", w.name, f.Owner, w.owner)
		}
	}
	// 2 misses + tunnel + port A (accept, 3 drops, ip, arp, fe80, unicast)
	// + port B (accept, 3 drops, 2 ip, 2 arp, fe80, unicast) + remote + 2 BUM.
	if got, wantN := len(p.Flows), 2+1+8+10+1+2; got != wantN {
		t.Errorf("rendered %d flows, want %d", got, wantN)
	}
	if len(flows) != len(p.Flows) {
		t.Errorf("flows are not unique by table/priority/match")
	}

	// Table-miss flows have the lowest priority.
	for _, w := range want[:2] {
		if f := findMatch(p, w.table, "")[0]; f.Priority != 0 {
			t.Errorf("%s: priority %d, want 0", w.name, f.Priority)
		}
	}
	// Anti-spoofing: the address allow-lists beat the per-port protocol
	// drops, which beat the plain MAC accept.
	prio := func(table uint8, match string) uint16 {
		fs := findMatch(p, table, match)
		if len(fs) != 1 {
			t.Fatalf("no single flow for %q", match)
		}
		return fs[0].Priority
	}
	for _, c := range []struct{ allow, drop string }{
		{srcA + ",ip,nw_src=100.64.1.1", srcA + ",ip"},
		{srcA + ",arp,arp_spa=100.64.1.1,arp_sha=" + macA, srcA + ",arp"},
		{srcA + ",ipv6,ipv6_src=fe80::/10", srcA + ",ipv6"},
		{srcB + ",ip,nw_src=100.64.1.22", srcB + ",ip"},
	} {
		a, d := prio(tableClassify, c.allow), prio(tableClassify, c.drop)
		if a <= d {
			t.Errorf("allow %q priority %d is not above drop %q priority %d", c.allow, a, c.drop, d)
		}
		if m := prio(tableClassify, srcA); d <= m {
			t.Errorf("drop %q priority %d is not above the MAC accept priority %d", c.drop, d, m)
		}
	}
	// Flood traffic must lose against known unicast MACs.
	if b, u := prio(tableL2, "reg1=10100,reg0=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00"), prio(tableL2, "reg1=10100,reg0=0,dl_dst="+macRemote); b >= u {
		t.Errorf("BUM priority %d is not below unicast priority %d", b, u)
	}
	// Flows are sorted by cookie.
	for i := 1; i < len(p.Flows); i++ {
		if p.Flows[i-1].Cookie >= p.Flows[i].Cookie {
			t.Errorf("flows not sorted by cookie at %d: %#x >= %#x", i, p.Flows[i-1].Cookie, p.Flows[i].Cookie)
		}
	}
}

func TestRenderGroups(t *testing.T) {
	p := mustRender(t, testState(), testPorts())
	want := []Group{
		{ID: testVNI, VNI: testVNI, Buckets: []string{
			"output:10", "output:11",
			tunnelActions(testVNI, "198.18.0.12"),
			tunnelActions(testVNI, "198.18.0.13"),
		}},
		{ID: testVNI | 1<<24, VNI: testVNI, Buckets: []string{"output:10", "output:11"}},
	}
	if !reflect.DeepEqual(p.Groups, want) {
		t.Fatalf("groups:\n got %+v\nwant %+v", p.Groups, want)
	}
	wantSpec := "group_id=10100,type=all,bucket=bucket_id:0,actions=output:10,bucket=bucket_id:1,actions=output:11," +
		"bucket=bucket_id:2,actions=set_field:10100->tun_id,set_field:198.18.0.12->tun_dst,output:1," +
		"bucket=bucket_id:3,actions=set_field:10100->tun_id,set_field:198.18.0.13->tun_dst,output:1"
	if got := p.Groups[0].Spec(); got != wantSpec {
		t.Errorf("Spec:\n got %s\nwant %s", got, wantSpec)
	}
	if got, w := p.Groups[1].Spec(), "group_id=16787316,type=all,bucket=bucket_id:0,actions=output:10,bucket=bucket_id:1,actions=output:11"; got != w {
		t.Errorf("tunnel group Spec:\n got %s\nwant %s", got, w)
	}
}

func TestRenderGolden(t *testing.T) {
	p := mustRender(t, testState(), testPorts())
	var b strings.Builder
	for _, g := range p.Groups {
		fmt.Fprintf(&b, "group add %s\n", g.Spec())
	}
	for _, f := range p.Flows {
		fmt.Fprintf(&b, "%s\n", f.AddLine())
	}
	golden := filepath.Join("testdata", t.Name()+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("rendered program differs from %s (run with -update if intended):\n--- got\n%s--- want\n%s", golden, got, want)
	}
}

func TestRenderPortWithoutIPs(t *testing.T) {
	s := testState()
	s.Networks[0].Ports[0].IPs = nil
	p := mustRender(t, s, testPorts())
	var table0 []Flow
	for _, f := range p.Flows {
		if f.Table == tableClassify && strings.HasPrefix(f.Match, "in_port=10,") {
			table0 = append(table0, f)
		}
	}
	if len(table0) != 1 {
		t.Fatalf("port without IPs has %d table-0 flows, want only the MAC accept: %+v", len(table0), table0)
	}
	if f := table0[0]; f.Match != "in_port=10,dl_src="+macA || f.Actions != "set_field:10100->reg1,goto_table:20" {
		t.Errorf("MAC accept flow = %q actions %q", f.Match, f.Actions)
	}
	// The other port keeps its anti-spoofing.
	if len(findMatch(p, tableClassify, "in_port=11,dl_src="+macB+",ip")) != 1 {
		t.Errorf("port with IPs lost its ip drop flow")
	}
	// Unicast to the port is unaffected.
	if len(findMatch(p, tableL2, "reg1=10100,dl_dst="+macA)) != 1 {
		t.Errorf("port without IPs has no table-20 unicast flow")
	}
}

func TestRenderIPv6Port(t *testing.T) {
	s := testState()
	s.Networks[0].Ports[0].IPs = []netip.Addr{addr("fd00::1")}
	p := mustRender(t, s, testPorts())
	src := "in_port=10,dl_src=" + macA
	for _, m := range []string{src + ",ip", src + ",arp", src + ",ipv6"} {
		if fs := findMatch(p, tableClassify, m); len(fs) != 1 || fs[0].Actions != "drop" {
			t.Errorf("want one drop flow %q, got %+v", m, fs)
		}
	}
	for _, m := range []string{src + ",ipv6,ipv6_src=fd00::1", src + ",ipv6,ipv6_src=fe80::/10"} {
		if fs := findMatch(p, tableClassify, m); len(fs) != 1 || fs[0].Priority != prioAllow {
			t.Errorf("want one allow flow %q, got %+v", m, fs)
		}
	}
	for _, f := range p.Flows {
		if strings.HasPrefix(f.Match, src+",ip,nw_src=") || strings.HasPrefix(f.Match, src+",arp,arp_spa=") {
			t.Errorf("IPv6-only port has IPv4 allow flow %q", f.Match)
		}
	}
}

func TestRenderMovedPort(t *testing.T) {
	s := testState()
	s.Networks[0].Ports[0].Moved = true
	s.Networks[0].Remote = append([]offload.RemoteMAC{{MAC: macA, VTEP: addr("198.18.0.13")}}, s.Networks[0].Remote...)
	p := mustRender(t, s, testPorts())
	for _, f := range p.Flows {
		if f.Table == tableL2 && f.Actions == "output:10" {
			t.Errorf("moved port still has a table-20 unicast flow: %q", f.Match)
		}
	}
	if fs := findMatch(p, tableL2, "reg1=10100,reg0=0,dl_dst="+macA); len(fs) != 1 || fs[0].Actions != tunnelActions(testVNI, "198.18.0.13") {
		t.Errorf("moved MAC should follow the remote VTEP, got %+v", fs)
	}
	// Still attached: anti-spoofing and flooding include it.
	if len(findMatch(p, tableClassify, "in_port=10,dl_src="+macA)) != 1 {
		t.Errorf("moved port lost its ingress accept flow")
	}
	for _, g := range p.Groups {
		if len(g.Buckets) == 0 || g.Buckets[0] != "output:10" {
			t.Errorf("group %d does not flood to the moved port: %v", g.ID, g.Buckets)
		}
	}
	// The other port is unaffected.
	if len(findMatch(p, tableL2, "reg1=10100,dl_dst="+macB)) != 1 {
		t.Errorf("other port lost its unicast flow")
	}
}

func TestRenderCookies(t *testing.T) {
	p := mustRender(t, testState(), testPorts())
	seen := map[uint64]string{}
	for _, f := range p.Flows {
		if other, dup := seen[f.Cookie]; dup {
			t.Errorf("cookie %#x used by %q and %q", f.Cookie, other, f.spec())
		}
		seen[f.Cookie] = f.spec()
		if !IsKaiCookie(f.Cookie) || f.Cookie>>56 != 0x4B {
			t.Errorf("cookie %#x of %q lacks the 0x4B tag", f.Cookie, f.spec())
		}
		wantVNI := uint32(testVNI)
		if f.Priority == prioTableMiss && f.Match == "" {
			wantVNI = 0
		}
		if got := CookieVNI(f.Cookie); got != wantVNI || f.VNI != wantVNI {
			t.Errorf("flow %q: CookieVNI %d, VNI %d, want %d", f.spec(), got, f.VNI, wantVNI)
		}
		if !strings.HasPrefix(f.AddLine(), fmt.Sprintf("flow add cookie=%#x,table=%d,priority=%d,", f.Cookie, f.Table, f.Priority)) {
			t.Errorf("AddLine %q does not carry cookie, table and priority", f.AddLine())
		}
	}
	for _, c := range []struct {
		cookie uint64
		kai    bool
		vni    uint32
	}{
		{0x4b00277400000001, true, 10100},
		{0x4b00000000000000, true, 0},
		{0x4bffffff12345678, true, 1<<24 - 1},
		{0x0, false, 0},
		{0x4c00277400000001, false, 10100},
	} {
		if got := IsKaiCookie(c.cookie); got != c.kai {
			t.Errorf("IsKaiCookie(%#x) = %v, want %v", c.cookie, got, c.kai)
		}
		if got := CookieVNI(c.cookie); got != c.vni {
			t.Errorf("CookieVNI(%#x) = %d, want %d", c.cookie, got, c.vni)
		}
	}
}

func TestRenderDeterministic(t *testing.T) {
	a := mustRender(t, testState(), testPorts())
	for i := 0; i < 5; i++ {
		b := mustRender(t, testState(), testPorts())
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("render %d differs from the first", i)
		}
	}
}

func TestRenderCookieChangesOnlyForChangedFlow(t *testing.T) {
	before := mustRender(t, testState(), testPorts())
	s := testState()
	s.Networks[0].Remote[0].VTEP = addr("198.18.0.13")
	after := mustRender(t, s, testPorts())

	b, a := byKey(t, before), byKey(t, after)
	if len(a) != len(b) {
		t.Fatalf("flow count changed: %d -> %d", len(b), len(a))
	}
	remoteKey := flowKey{tableL2, prioUnicast, "reg1=10100,reg0=0,dl_dst=" + macRemote}
	var changed []flowKey
	for k, fb := range b {
		fa, ok := a[k]
		if !ok {
			t.Errorf("flow %+v disappeared", k)
			continue
		}
		if fa.Cookie != fb.Cookie {
			changed = append(changed, k)
		}
	}
	if len(changed) != 1 || changed[0] != remoteKey {
		t.Fatalf("changed cookies for %+v, want only %+v", changed, remoteKey)
	}
	if got := a[remoteKey].Actions; got != tunnelActions(testVNI, "198.18.0.13") {
		t.Errorf("remote flow actions %q", got)
	}
	if CookieVNI(a[remoteKey].Cookie) != testVNI {
		t.Errorf("changed cookie %#x lost its VNI", a[remoteKey].Cookie)
	}
}

func TestRenderMissingPort(t *testing.T) {
	for _, c := range []struct {
		name  string
		ports Ports
		want  string
	}{
		{"representor", Ports{vxlanPortName: 1, "pf0vf0": 10}, `"pf0vf1"`},
		{"vxlan port", Ports{"pf0vf0": 10, "pf0vf1": 11}, `"` + vxlanPortName + `"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := Render(testState(), c.ports, vxlanPortName)
			if err == nil {
				t.Fatalf("Render succeeded with %d flows, want an error", len(p.Flows))
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not name %s", err, c.want)
			}
			if len(p.Flows) != 0 || len(p.Groups) != 0 {
				t.Errorf("partial program returned with the error: %d flows, %d groups", len(p.Flows), len(p.Groups))
			}
		})
	}
	if _, err := Render(testState(), Ports{vxlanPortName: 1, "pf0vf0": 10}, vxlanPortName); err == nil || !strings.Contains(err.Error(), "att-b") {
		t.Errorf("error %v does not name the owning attachment att-b", err)
	}
}

func TestRenderEmptyState(t *testing.T) {
	p := mustRender(t, offload.State{}, Ports{vxlanPortName: 1})
	if len(p.Groups) != 0 {
		t.Errorf("groups for no networks: %+v", p.Groups)
	}
	if len(p.Flows) != 2 {
		t.Fatalf("want only the two table-miss flows, got %+v", p.Flows)
	}
	for _, f := range p.Flows {
		if f.Actions != "drop" || f.Priority != 0 || f.Match != "" {
			t.Errorf("unexpected flow %q", f.spec())
		}
	}
}

func TestRenderManyRemoteMACsUniqueCookies(t *testing.T) {
	s := testState()
	// Two networks, so the same MAC text appears under two VNIs too.
	n2 := offload.Network{Name: "red", VNI: 10200}
	for i := 0; i < 2000; i++ {
		mac := fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)
		vtep := netip.AddrFrom4([4]byte{198, 18, byte(1 + i%7), byte(i % 250)})
		s.Networks[0].Remote = append(s.Networks[0].Remote, offload.RemoteMAC{MAC: mac, VTEP: vtep})
		n2.Remote = append(n2.Remote, offload.RemoteMAC{MAC: mac, VTEP: vtep})
	}
	s.Networks = append(s.Networks, n2)
	p := mustRender(t, s, testPorts())
	seen := make(map[uint64]bool, len(p.Flows))
	for _, f := range p.Flows {
		if seen[f.Cookie] {
			t.Fatalf("duplicate cookie %#x", f.Cookie)
		}
		seen[f.Cookie] = true
		if CookieVNI(f.Cookie) != f.VNI {
			t.Fatalf("cookie %#x has VNI %d, flow has %d", f.Cookie, CookieVNI(f.Cookie), f.VNI)
		}
	}
	if len(p.Flows) < 4000 {
		t.Errorf("only %d flows rendered for 4000 remote MACs", len(p.Flows))
	}
}

func TestAssignCookiesCollision(t *testing.T) {
	// A cookie depends on its flow alone: identical text shares a cookie
	// (whatever else is rendered), and Diff resolves the sharing by count.
	// These two remote-MAC flows collide under FNV-32a.
	mk := func(mac string) Flow {
		return Flow{VNI: 10100, Table: 20, Priority: 100, Match: "reg1=10100,reg0=0,dl_dst=" + mac,
			Actions: "set_field:10100->tun_id,set_field:198.18.0.12->tun_dst,output:1"}
	}
	x, y := mk("02:00:00:07:f8:9c"), mk("02:00:00:08:a9:10")
	both := []Flow{x, y}
	assignCookies(both)
	if both[0].Cookie != both[1].Cookie {
		t.Skipf("fixture no longer collides (%#x vs %#x); pick a new colliding pair", both[0].Cookie, both[1].Cookie)
	}
	only := []Flow{y}
	assignCookies(only)
	if only[0].Cookie != both[1].Cookie {
		t.Fatalf("cookie of a flow changed with its neighbours: %#x then %#x", both[1].Cookie, only[0].Cookie)
	}
	for _, f := range both {
		if !IsKaiCookie(f.Cookie) || CookieVNI(f.Cookie) != f.VNI {
			t.Errorf("cookie %#x lacks tag or VNI %d", f.Cookie, f.VNI)
		}
	}
	// Programmed: x and y. Wanted: y only. The cookie's count differs, so
	// both go and y comes back, in one bundle: the stale x cannot survive.
	read := []dumpedFlow{
		{Cookie: both[0].Cookie, Table: 20, Priority: 100, Match: both[0].Match},
		{Cookie: both[1].Cookie, Table: 20, Priority: 100, Match: both[1].Match},
	}
	got := Diff(Program{Flows: only}, read, nil)
	want := []string{fmt.Sprintf("flow delete cookie=%#x/-1", only[0].Cookie), only[0].AddLine()}
	if !slices.Equal(got, want) {
		t.Fatalf("Diff = %q, want %q", got, want)
	}
	// And the reverse: wanting both while only y is programmed re-adds both.
	got = Diff(Program{Flows: both}, read[1:], nil)
	if len(got) != 3 || !strings.HasPrefix(got[0], "flow delete") {
		t.Fatalf("Diff = %q, want delete + 2 adds", got)
	}
}

// Cookies must not change between versions: a restarted kai-dpu would
// otherwise replace every programmed flow. This is the original
// definition (FNV-1a of the formatted spec).
func TestCookieHashIsStable(t *testing.T) {
	s := benchState(2, 20, "198.18.0.12")
	p, err := Render(s, Ports{vxlanPortName: 1, "pf0vf0": 2, "pf0vf1": 3}, vxlanPortName)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range p.Flows {
		m := f.Match
		if m != "" {
			m += ","
		}
		h := fnv.New32a()
		fmt.Fprintf(h, "table=%d,priority=%d,%sactions=%s", f.Table, f.Priority, m, f.Actions)
		if want := cookieTag | uint64(f.VNI&0xffffff)<<32 | uint64(h.Sum32()); f.Cookie != want {
			t.Fatalf("cookie of %s is %#x, want %#x", f.spec(), f.Cookie, want)
		}
	}
}
