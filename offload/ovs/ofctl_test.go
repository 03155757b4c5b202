package ovs

import (
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/kai-dpu/kai/offload"
)

// Literal `ovs-ofctl -O OpenFlow15 --no-names --no-stats dump-flows br-kai`
// output from OVS 3.1 (no header line).
const dumpNoStats = ` cookie=0x4b00277400000001, priority=100,arp,in_port=10,dl_src=02:00:00:00:0a:01,arp_spa=100.64.1.1 actions=set_field:0->reg1,write_metadata:0x2774,goto_table:20
 cookie=0x4b00277400000001, priority=100,ip,in_port=10,dl_src=02:00:00:00:0a:01,nw_src=100.64.1.1 actions=set_field:0->reg1,write_metadata:0x2774,goto_table:20
 cookie=0x4b00277400000002, priority=100,tun_id=0x2774,in_port=1 actions=set_field:0x2774->metadata,set_field:0x1->reg1,resubmit(,20)
 cookie=0x4b00277400000001, priority=90,in_port=10 actions=drop
 cookie=0x4b00000000000000, priority=0 actions=drop
 cookie=0x4b00277400000003, table=20, priority=100,metadata=0x2774,dl_dst=02:00:00:00:0a:01 actions=output:10
 cookie=0x4b00277400000004, table=20, priority=100,reg1=0,metadata=0x2774,dl_dst=02:00:00:00:0b:01 actions=set_field:0x2774->tun_id,set_field:198.18.0.12->tun_dst,output:1
 cookie=0x4b00277400000005, table=20, priority=50,reg1=0,metadata=0x2774,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:10100
 cookie=0x4b00277400000005, table=20, priority=50,reg1=0x1,metadata=0x2774,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:10101
 cookie=0x4b00000000000000, table=20, priority=0 actions=drop
`

// The same command without --no-stats: a header and stats fields.
const dumpStats = `OFPST_FLOW reply (OF1.5) (xid=0x2):
 cookie=0x4b00277400000001, duration=7.971s, table=0, n_packets=2, n_bytes=84, idle_age=0, priority=100,arp,in_port=10,dl_src=02:00:00:00:0a:01,arp_spa=100.64.1.1 actions=set_field:0->reg1,write_metadata:0x2774,goto_table:20
 cookie=0x4b00277400000004, duration=7.970s, table=20, n_packets=4, n_bytes=336, idle_age=0, priority=100,reg1=0,metadata=0x2774,dl_dst=02:00:00:00:0b:01 actions=set_field:0x2774->tun_id,set_field:198.18.0.12->tun_dst,output:1
 cookie=0x4b00000000000000, duration=8.001s, table=0, n_packets=0, n_bytes=0, idle_age=8, priority=0 actions=drop
`

// Literal `ovs-ofctl -O OpenFlow15 --no-names dump-groups br-kai` output:
// always a header, groups not sorted.
const dumpGroups = `OFPST_GROUP_DESC reply (OF1.5) (xid=0x2):
 group_id=10101,type=all,bucket=bucket_id:0,actions=output:10
 group_id=10100,type=all,bucket=bucket_id:0,actions=output:10,bucket=bucket_id:1,actions=set_field:0x2774->tun_id,set_field:198.18.0.12->tun_dst,output:1
`

func TestParseFlowsNoStats(t *testing.T) {
	got, err := parseFlows(dumpNoStats)
	if err != nil {
		t.Fatal(err)
	}
	const (
		accept = "set_field:0->reg1,write_metadata:0x2774,goto_table:20"
		bum    = "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00"
	)
	want := []dumpedFlow{
		{Cookie: 0x4b00277400000001, Table: 0, Priority: 100, Match: "arp,in_port=10,dl_src=02:00:00:00:0a:01,arp_spa=100.64.1.1", Actions: accept},
		{Cookie: 0x4b00277400000001, Table: 0, Priority: 100, Match: "ip,in_port=10,dl_src=02:00:00:00:0a:01,nw_src=100.64.1.1", Actions: accept},
		{Cookie: 0x4b00277400000002, Table: 0, Priority: 100, Match: "tun_id=0x2774,in_port=1", Actions: "set_field:0x2774->metadata,set_field:0x1->reg1,resubmit(,20)"},
		{Cookie: 0x4b00277400000001, Table: 0, Priority: 90, Match: "in_port=10", Actions: "drop"},
		{Cookie: 0x4b00000000000000, Table: 0, Priority: 0, Match: "", Actions: "drop"},
		{Cookie: 0x4b00277400000003, Table: 20, Priority: 100, Match: "metadata=0x2774,dl_dst=02:00:00:00:0a:01", Actions: "output:10"},
		{Cookie: 0x4b00277400000004, Table: 20, Priority: 100, Match: "reg1=0,metadata=0x2774,dl_dst=02:00:00:00:0b:01", Actions: "set_field:0x2774->tun_id,set_field:198.18.0.12->tun_dst,output:1"},
		{Cookie: 0x4b00277400000005, Table: 20, Priority: 50, Match: "reg1=0,metadata=0x2774," + bum, Actions: "group:10100"},
		{Cookie: 0x4b00277400000005, Table: 20, Priority: 50, Match: "reg1=0x1,metadata=0x2774," + bum, Actions: "group:10101"},
		{Cookie: 0x4b00000000000000, Table: 20, Priority: 0, Match: "", Actions: "drop"},
	}
	if len(got) != len(want) {
		t.Fatalf("parsed %d flows, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("flow %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestParseFlowsStats(t *testing.T) {
	got, err := parseFlows(dumpStats)
	if err != nil {
		t.Fatal(err)
	}
	want := []dumpedFlow{
		{Cookie: 0x4b00277400000001, Table: 0, Priority: 100, Packets: 2,
			Match: "arp,in_port=10,dl_src=02:00:00:00:0a:01,arp_spa=100.64.1.1", Actions: "set_field:0->reg1,write_metadata:0x2774,goto_table:20"},
		{Cookie: 0x4b00277400000004, Table: 20, Priority: 100, Packets: 4,
			Match: "reg1=0,metadata=0x2774,dl_dst=02:00:00:00:0b:01", Actions: "set_field:0x2774->tun_id,set_field:198.18.0.12->tun_dst,output:1"},
		{Cookie: 0x4b00000000000000, Table: 0, Priority: 0, Packets: 0, Match: "", Actions: "drop"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseFlows with stats:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseFlowsEdgeCases(t *testing.T) {
	for _, c := range []struct {
		name    string
		in      string
		want    int
		wantErr bool
	}{
		{"empty output (filter matched nothing)", "", 0, false},
		{"header only", "OFPST_FLOW reply (OF1.5) (xid=0x2):\n", 0, false},
		{"blank lines", "\n\n \n", 0, false},
		{"no actions", " cookie=0x4b00000000000001, priority=0\n", 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseFlows(c.in)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, c.wantErr)
			}
			if len(got) != c.want {
				t.Errorf("parsed %d flows, want %d", len(got), c.want)
			}
		})
	}
}

func TestParseGroups(t *testing.T) {
	got, err := parseGroups(dumpGroups)
	if err != nil {
		t.Fatal(err)
	}
	want := []dumpedGroup{
		{ID: 10100, Type: "all", Buckets: []string{"output:10", "set_field:10100->tun_id,set_field:198.18.0.12->tun_dst,output:1"}},
		{ID: 10101, Type: "all", Buckets: []string{"output:10"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseGroups:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseGroupsVariants(t *testing.T) {
	for _, c := range []struct {
		name    string
		in      string
		want    []dumpedGroup
		wantErr bool
	}{
		{"header only", "OFPST_GROUP_DESC reply (OF1.5) (xid=0x2):\n", nil, false},
		{"OpenFlow13 buckets without ids", "OFPST_GROUP_DESC reply (OF1.3) (xid=0x2):\n group_id=10100,type=all,bucket=actions=output:10,bucket=actions=set_field:0x2774->tun_id,set_field:198.18.0.12->tun_dst,output:1\n",
			[]dumpedGroup{{ID: 10100, Type: "all", Buckets: []string{"output:10", "set_field:10100->tun_id,set_field:198.18.0.12->tun_dst,output:1"}}}, false},
		{"explicit bucket ids", " group_id=7,type=all,bucket=bucket_id:7,actions=output:12\n",
			[]dumpedGroup{{ID: 7, Type: "all", Buckets: []string{"output:12"}}}, false},
		{"no buckets", " group_id=16787316,type=all\n", []dumpedGroup{{ID: 16787316, Type: "all"}}, false},
		{"non-Kai id and type", " group_id=2130706432,type=select,bucket=bucket_id:0,actions=output:3\n",
			[]dumpedGroup{{ID: 0x7f000000, Type: "select", Buckets: []string{"output:3"}}}, false},
		{"three groups unsorted", " group_id=30,type=all\n group_id=10,type=all\n group_id=20,type=all\n",
			[]dumpedGroup{{ID: 10, Type: "all"}, {ID: 20, Type: "all"}, {ID: 30, Type: "all"}}, false},
		{"bad id", " group_id=abc,type=all\n", nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseGroups(c.in)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, c.wantErr)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestNormalizeActions(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"set_field:0x2774->tun_id", "set_field:10100->tun_id"},
		{"set_field:10100->tun_id", "set_field:10100->tun_id"},
		{"set_field:0x1->reg1", "set_field:1->reg1"},
		{"set_field:0->reg1", "set_field:0->reg1"},
		{"set_field:198.18.0.12->tun_dst", "set_field:198.18.0.12->tun_dst"},
		{"set_field:02:00:00:00:0a:01->eth_dst", "set_field:02:00:00:00:0a:01->eth_dst"},
		{"set_field:0x1/0xf->reg2", "set_field:0x1/0xf->reg2"},
		{"set_field:0x2774/0xffff->metadata", "set_field:0x2774/0xffff->metadata"},
		{"set_field:0x2774->tun_id,set_field:198.18.0.12->tun_dst,output:1", "set_field:10100->tun_id,set_field:198.18.0.12->tun_dst,output:1"},
		{"set_field:0x2774->metadata,set_field:0x1->reg1,resubmit(,20)", "set_field:10100->metadata,set_field:1->reg1,resubmit(,20)"},
		{"write_metadata:0x2774,goto_table:20", "write_metadata:0x2774,goto_table:20"},
		{"output:10", "output:10"},
		{"drop", "drop"},
		{"", ""},
		// Too wide for uint64: left alone rather than mangled.
		{"set_field:0x1ffffffffffffffffff->xxreg0", "set_field:0x1ffffffffffffffffff->xxreg0"},
	} {
		if got := normalizeActions(c.in); got != c.want {
			t.Errorf("normalizeActions(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// diffState has two networks so stale/foreign objects can be tested.
func diffProgram(t *testing.T) Program {
	t.Helper()
	s := testState()
	s.Networks = append(s.Networks, offload.Network{
		Name: "red", VNI: 10300,
		Ports:  []offload.Port{{Name: "pf0vf2", Owner: "att-c", MAC: "02:00:00:00:0c:01"}},
		Remote: []offload.RemoteMAC{{MAC: "02:00:00:00:0c:02", VTEP: netip.MustParseAddr("198.18.0.14")}},
		Flood:  []netip.Addr{netip.MustParseAddr("198.18.0.14")},
	})
	ports := testPorts()
	ports["pf0vf2"] = 12
	return mustRender(t, s, ports)
}

var reDecimalSetField = regexp.MustCompile(`set_field:(\d+)->`)

// ovsForm prints actions the way OVS dumps them: numeric set_field values in hex.
func ovsForm(actions string) string {
	return reDecimalSetField.ReplaceAllStringFunc(actions, func(m string) string {
		n, _ := strconv.ParseUint(reDecimalSetField.FindStringSubmatch(m)[1], 10, 64)
		if n == 0 {
			return m
		}
		return fmt.Sprintf("set_field:%#x->", n)
	})
}

// readBack builds what dump-flows/dump-groups would show for prog, going
// through the real parsers with OVS's textual forms.
func readBack(t *testing.T, prog Program) ([]dumpedFlow, []dumpedGroup) {
	t.Helper()
	var fl, gl strings.Builder
	fl.WriteString("OFPST_FLOW reply (OF1.5) (xid=0x2):\n")
	for _, f := range prog.Flows {
		fmt.Fprintf(&fl, " cookie=%#x, duration=1.000s, table=%d, n_packets=0, n_bytes=0, idle_age=1, priority=%d", f.Cookie, f.Table, f.Priority)
		if f.Match != "" {
			fmt.Fprintf(&fl, ",%s", f.Match)
		}
		fmt.Fprintf(&fl, " actions=%s\n", ovsForm(f.Actions))
	}
	gl.WriteString("OFPST_GROUP_DESC reply (OF1.5) (xid=0x2):\n")
	// OVS does not sort groups: print them in reverse.
	for i := len(prog.Groups) - 1; i >= 0; i-- {
		g := prog.Groups[i]
		fmt.Fprintf(&gl, " group_id=%d,type=all", g.ID)
		for j, b := range g.Buckets {
			fmt.Fprintf(&gl, ",bucket=bucket_id:%d,actions=%s", j, ovsForm(b))
		}
		gl.WriteString("\n")
	}
	flows, err := parseFlows(fl.String())
	if err != nil {
		t.Fatal(err)
	}
	groups, err := parseGroups(gl.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(flows) != len(prog.Flows) || len(groups) != len(prog.Groups) {
		t.Fatalf("read-back has %d flows/%d groups, program %d/%d", len(flows), len(groups), len(prog.Flows), len(prog.Groups))
	}
	return flows, groups
}

func TestOVSFormHelper(t *testing.T) {
	// Guard the test helper itself: it must produce OVS's hex form.
	if got := ovsForm("set_field:10100->tun_id,set_field:198.18.0.12->tun_dst,output:1"); got != "set_field:0x2774->tun_id,set_field:198.18.0.12->tun_dst,output:1" {
		t.Fatalf("ovsForm = %q", got)
	}
}

func TestDiffEmptyReadBack(t *testing.T) {
	prog := diffProgram(t)
	lines := Diff(prog, nil, nil)
	if want := len(prog.Groups) + len(prog.Flows); len(lines) != want {
		t.Fatalf("%d lines, want %d", len(lines), want)
	}
	for i, g := range prog.Groups {
		if want := "group add " + g.Spec(); lines[i] != want {
			t.Errorf("line %d = %q, want %q", i, lines[i], want)
		}
	}
	for i, f := range prog.Flows {
		if got := lines[len(prog.Groups)+i]; got != f.AddLine() {
			t.Errorf("line %d = %q, want %q", len(prog.Groups)+i, got, f.AddLine())
		}
	}
	for _, l := range lines {
		if strings.Contains(l, "delete") || strings.Contains(l, "modify") {
			t.Errorf("unexpected line on an empty bridge: %q", l)
		}
	}
}

func TestDiffIdempotent(t *testing.T) {
	prog := diffProgram(t)
	flows, groups := readBack(t, prog)
	if lines := Diff(prog, flows, groups); len(lines) != 0 {
		t.Errorf("read-back equal to the program gives %d lines:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	// A non-Kai group on the bridge does not disturb that.
	groups = append(groups, dumpedGroup{ID: 0x7f000000, Type: "all", Buckets: []string{"output:3"}})
	if lines := Diff(prog, flows, groups); len(lines) != 0 {
		t.Errorf("foreign group caused changes: %q", lines)
	}
}

func TestDiffChanges(t *testing.T) {
	prog := diffProgram(t)
	const staleCookie = 0x4b0027740000beef
	redTunnel := uint32(10300 | 1<<24)

	find := func(pred func(Flow) bool) Flow {
		for _, f := range prog.Flows {
			if pred(f) {
				return f
			}
		}
		t.Fatal("no such flow in the program")
		return Flow{}
	}
	remoteFlow := find(func(f Flow) bool { return f.Table == tableL2 && f.Match == "reg1=10100,reg0=0,dl_dst="+macRemote })

	for _, c := range []struct {
		name string
		// edit changes a faithful read-back of prog.
		edit func(fs []dumpedFlow, gs []dumpedGroup) ([]dumpedFlow, []dumpedGroup)
		want []string
	}{
		{
			name: "stale cookie is deleted",
			edit: func(fs []dumpedFlow, gs []dumpedGroup) ([]dumpedFlow, []dumpedGroup) {
				return append(fs, dumpedFlow{Cookie: staleCookie, Table: 20, Priority: 100, Match: "reg1=10100,dl_dst=02:00:00:00:0a:99", Actions: "output:13"}), gs
			},
			want: []string{"flow delete cookie=0x4b0027740000beef/-1"},
		},
		{
			name: "missing flow is added before stale ones are deleted",
			edit: func(fs []dumpedFlow, gs []dumpedGroup) ([]dumpedFlow, []dumpedGroup) {
				var out []dumpedFlow
				for _, f := range fs {
					if f.Cookie != remoteFlow.Cookie {
						out = append(out, f)
					}
				}
				return append(out, dumpedFlow{Cookie: staleCookie}), gs
			},
			want: []string{remoteFlow.AddLine(), "flow delete cookie=0x4b0027740000beef/-1"},
		},
		{
			name: "cookie present twice is replaced atomically",
			edit: func(fs []dumpedFlow, gs []dumpedGroup) ([]dumpedFlow, []dumpedGroup) {
				return append(fs, dumpedFlow{Cookie: remoteFlow.Cookie, Table: 20, Priority: 100, Match: "reg1=10100,reg0=0,dl_dst=02:00:00:00:0b:77"}), gs
			},
			want: []string{fmt.Sprintf("flow delete cookie=%#x/-1", remoteFlow.Cookie), remoteFlow.AddLine()},
		},
		{
			name: "stale Kai groups are deleted last, foreign groups never",
			edit: func(fs []dumpedFlow, gs []dumpedGroup) ([]dumpedFlow, []dumpedGroup) {
				gs = append(gs,
					dumpedGroup{ID: 10200 | 1<<24, Type: "all", Buckets: []string{"output:20"}},
					dumpedGroup{ID: 0x7f000000, Type: "all", Buckets: []string{"output:3"}},
					dumpedGroup{ID: 10200, Type: "all", Buckets: []string{"output:20"}},
				)
				return append(fs, dumpedFlow{Cookie: staleCookie}), gs
			},
			want: []string{
				"flow delete cookie=0x4b0027740000beef/-1",
				"group delete group_id=10200",
				fmt.Sprintf("group delete group_id=%d", 10200|1<<24),
			},
		},
		{
			name: "changed bucket is modified in place",
			edit: func(fs []dumpedFlow, gs []dumpedGroup) ([]dumpedFlow, []dumpedGroup) {
				for i := range gs {
					if gs[i].ID == 10100 {
						gs[i].Buckets = gs[i].Buckets[:len(gs[i].Buckets)-1]
					}
				}
				return fs, gs
			},
			want: []string{"group modify " + prog.Groups[0].Spec()},
		},
		{
			name: "wrong group type is modified",
			edit: func(fs []dumpedFlow, gs []dumpedGroup) ([]dumpedFlow, []dumpedGroup) {
				for i := range gs {
					if gs[i].ID == redTunnel {
						gs[i].Type = "select"
					}
				}
				return fs, gs
			},
			want: []string{"group modify " + groupSpec(t, prog, redTunnel)},
		},
		{
			name: "missing group is added before flows",
			edit: func(fs []dumpedFlow, gs []dumpedGroup) ([]dumpedFlow, []dumpedGroup) {
				var out []dumpedGroup
				for _, g := range gs {
					if g.ID != redTunnel {
						out = append(out, g)
					}
				}
				var outF []dumpedFlow
				for _, f := range fs {
					if f.Cookie != remoteFlow.Cookie {
						outF = append(outF, f)
					}
				}
				return outF, out
			},
			want: []string{"group add " + groupSpec(t, prog, redTunnel), remoteFlow.AddLine()},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs, gs := readBack(t, prog)
			fs, gs = c.edit(fs, gs)
			got := Diff(prog, fs, gs)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Diff:\n got %q\nwant %q", got, c.want)
			}
			for _, l := range got {
				if strings.Contains(l, "2130706432") || strings.Contains(l, "0x7f000000") {
					t.Errorf("touches the foreign group: %q", l)
				}
			}
		})
	}
}

func groupSpec(t *testing.T, prog Program, id uint32) string {
	t.Helper()
	for _, g := range prog.Groups {
		if g.ID == id {
			return g.Spec()
		}
	}
	t.Fatalf("no group %d in program", id)
	return ""
}

func TestDiffConvergesAfterApplyingLines(t *testing.T) {
	// Apply a Diff to a simulated bridge by hand and check the next Diff is
	// empty: flow adds replace by cookie, deletes remove by cookie.
	old := mustRender(t, testState(), testPorts())
	s := testState()
	s.Networks[0].Remote[0].VTEP = netip.MustParseAddr("198.18.0.13")
	s.Networks[0].Flood = s.Networks[0].Flood[1:]
	prog := mustRender(t, s, testPorts())

	fs, gs := readBack(t, old)
	lines := Diff(prog, fs, gs)
	var adds, dels, gmods int
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "flow add "):
			adds++
		case strings.HasPrefix(l, "flow delete "):
			dels++
		case strings.HasPrefix(l, "group modify group_id=10100,"):
			gmods++
		default:
			t.Errorf("unexpected line %q", l)
		}
	}
	if adds != 1 || dels != 1 || gmods != 1 {
		t.Fatalf("want 1 add, 1 delete, 1 group modify; got %d/%d/%d:\n%s", adds, dels, gmods, strings.Join(lines, "\n"))
	}
	fs, gs = readBack(t, prog)
	if again := Diff(prog, fs, gs); len(again) != 0 {
		t.Errorf("not converged: %q", again)
	}
}

func TestIsKaiGroup(t *testing.T) {
	for _, c := range []struct {
		id   uint32
		want bool
	}{
		{10100, true},
		{10100 | 1<<24, true},
		{1<<24 - 1, true},
		{1<<25 - 1, true},
		{1 << 25, false},
		{0x7f000000, false},
		{0xfffffff0, false},
	} {
		if got := isKaiGroup(c.id); got != c.want {
			t.Errorf("isKaiGroup(%#x) = %v, want %v", c.id, got, c.want)
		}
	}
}
