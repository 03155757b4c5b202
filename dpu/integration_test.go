package dpu_test

// End-to-end test with real packets: two DPU namespaces, each with its own
// ovsdb-server/ovs-vswitchd (userspace datapath) and kai-dpu, a GoBGP route
// reflector in a fabric namespace, and two emulated VFs per DPU (veth pairs
// whose DPU end is named like a BlueField representor) attached over gRPC.
// Needs root, iproute2, openvswitch-switch, iputils-ping and ethtool.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	protobuf "google.golang.org/protobuf/proto"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/cmd/kai-lab/netlab"
)

const (
	rrAddr = "198.18.0.1"
	asn    = 65000
)

type pod struct {
	name, ns, dpu, network, mac, ip, rep string
	vf                                   uint32
}

type dpu struct {
	name, addr, hw string
	ovs            *netlab.OVS
	ns, cfgPath    string
	sock           string
	proc           *netlab.Proc
	conn           *grpc.ClientConn
	att            kaiv1.AttachmentsClient
	insp           kaiv1.InspectClient
}

func requirePrivileged(t *testing.T) {
	t.Helper()
	need := func(why string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("integration test cannot run in CI: %s", why)
		}
		t.Skip("skipping integration test: " + why)
	}
	if os.Geteuid() != 0 {
		need("needs root (network namespaces, veths, OVS); run `sudo make test`")
	}
	for _, bin := range []string{"ip", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ping", "ethtool"} {
		if _, err := exec.LookPath(bin); err != nil {
			need(fmt.Sprintf("%s not found; apt-get install iproute2 openvswitch-switch iputils-ping ethtool", bin))
		}
	}
}

func buildBinaries(t *testing.T, dir string) {
	t.Helper()
	for _, cmd := range []string{"kai-dpu", "kai-lab"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, cmd), "github.com/kai-dpu/kai/cmd/"+cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("build %s: %v\n%s", cmd, err, out)
		}
	}
}

// checker lets a (string, error) call be checked inline: ck.ok(lab.In(...)).
type checker struct{ t *testing.T }

func (c checker) ok(out string, err error) string {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestTwoDPUsL2EVPN(t *testing.T) {
	requirePrivileged(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	buildBinaries(t, bin)
	lab, err := netlab.New(fmt.Sprintf("kit%d", os.Getpid()%100000), filepath.Join(dir, "lab"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if keep := os.Getenv("KAI_KEEP_LOGS"); keep != "" {
				_ = exec.Command("cp", "-r", lab.Dir, keep).Run()
			}
			for _, name := range []string{"dpuA-kai-dpu", "dpuB-kai-dpu", "rr"} {
				if data, err := os.ReadFile(filepath.Join(lab.Dir, name+".log")); err == nil {
					t.Logf("--- %s log (tail) ---\n%s", name, tail(string(data), 4000))
				}
			}
		}
		if err := lab.Close(); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})

	// Fabric: a bridge joining the DPU uplinks, and the route reflector.
	fab := checker{t}.ok(lab.AddNS("fab"))
	checker{t}.ok(lab.In(fab, "ip", "link", "add", "br0", "mtu", "1600", "type", "bridge"))
	checker{t}.ok(lab.In(fab, "ip", "addr", "add", rrAddr+"/24", "dev", "br0"))
	checker{t}.ok(lab.In(fab, "ip", "link", "set", "br0", "up"))
	checker{t}.ok(lab.In(fab, "ethtool", "-K", "br0", "tx", "off"))

	dpus := []*dpu{
		{name: "dpuA", addr: "198.18.0.11", hw: "02:18:00:00:00:11"},
		{name: "dpuB", addr: "198.18.0.12", hw: "02:18:00:00:00:12"},
	}
	pods := []*pod{
		{name: "podA1", dpu: "dpuA", network: "blue", mac: "02:00:00:00:0a:01", ip: "100.64.1.1", vf: 0},
		{name: "podA2", dpu: "dpuA", network: "red", mac: "02:00:00:00:0a:02", ip: "100.64.1.3", vf: 1},
		{name: "podB1", dpu: "dpuB", network: "blue", mac: "02:00:00:00:0b:01", ip: "100.64.1.2", vf: 0},
		{name: "podB2", dpu: "dpuB", network: "red", mac: "02:00:00:00:0b:02", ip: "100.64.1.4", vf: 1},
	}
	if _, err := lab.Start(fab, "rr", nil, filepath.Join(bin, "kai-lab"), "reflector",
		"--router-id", rrAddr, "--asn", fmt.Sprint(asn), "--clients", dpus[0].addr+","+dpus[1].addr); err != nil {
		t.Fatal(err)
	}
	for _, d := range dpus {
		d.ns = checker{t}.ok(lab.AddNS(d.name))
		if err := lab.Veth(d.ns, "up0", fab, "fab"+d.name[3:], 1600); err != nil {
			t.Fatal(err)
		}
		checker{t}.ok(lab.In(fab, "ip", "link", "set", "fab"+d.name[3:], "master", "br0"))
		// Segments entering a userspace datapath must carry full checksums.
		checker{t}.ok(lab.In(fab, "ethtool", "-K", "fab"+d.name[3:], "tx", "off"))
		if d.ovs, err = lab.StartOVS(d.ns, d.name+"-ovs"); err != nil {
			t.Fatal(err)
		}
		if err := d.ovs.Underlay("up0", d.addr+"/24", d.hw, 1600); err != nil {
			t.Fatal(err)
		}
	}
	byName := map[string]*dpu{}
	for _, d := range dpus {
		byName[d.name] = d
	}
	for _, p := range pods {
		p.ns = checker{t}.ok(lab.AddNS(p.name))
		p.rep = fmt.Sprintf("pf0vf%d", p.vf)
		if err := lab.Veth(byName[p.dpu].ns, p.rep, p.ns, "eth0", 1500); err != nil {
			t.Fatal(err)
		}
		checker{t}.ok(lab.In(p.ns, "ip", "link", "set", "eth0", "address", p.mac))
		checker{t}.ok(lab.In(p.ns, "ip", "addr", "add", p.ip+"/24", "dev", "eth0"))
		// Packets enter the userspace datapath through AF_PACKET with
		// partial checksums; real VFs have no such problem.
		checker{t}.ok(lab.In(p.ns, "ethtool", "-K", "eth0", "tx", "off"))
	}
	for _, d := range dpus {
		startDPU(t, lab, bin, dir, d)
	}
	t.Cleanup(func() {
		for _, d := range dpus {
			d.conn.Close()
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for _, p := range pods {
		d := byName[p.dpu]
		resp, err := d.att.Attach(ctx, &kaiv1.AttachRequest{Attachment: attachment(p)})
		if err != nil {
			t.Fatalf("attach %s: %v", p.name, err)
		}
		if got := resp.GetAttachment().GetStatus(); got.GetPhase() != kaiv1.Phase_PHASE_READY || got.GetRepresentor() != p.rep {
			t.Fatalf("attach %s: status %v, want Ready on %s", p.name, got, p.rep)
		}
	}
	pA1, pA2, pB1, pB2 := pods[0], pods[1], pods[2], pods[3]
	A, B := dpus[0], dpus[1]

	t.Run("ping within a network across DPUs", func(t *testing.T) {
		eventually(t, 30*time.Second, "podA1 -> podB1", func() error { return ping(lab, pA1, pB1.ip, 1) })
		eventually(t, 30*time.Second, "podB2 -> podA2", func() error { return ping(lab, pB2, pA2.ip, 1) })
		checker{t}.ok("", ping(lab, pB1, pA1.ip, 3))
	})
	t.Run("no ping across networks", func(t *testing.T) {
		if err := ping(lab, pA1, pB2.ip, 3); err == nil {
			t.Fatal("blue podA1 reached red podB2")
		}
		if err := ping(lab, pA1, pA2.ip, 3); err == nil {
			t.Fatal("blue podA1 reached red podA2 on the same DPU")
		}
	})
	t.Run("bad attach input changes nothing", func(t *testing.T) {
		before := cookies(t, A)
		beforeList, _ := A.att.List(ctx, &kaiv1.ListRequest{})
		good := attachment(pA1)
		for _, tc := range []struct {
			name string
			mut  func(a *kaiv1.Attachment)
			code codes.Code
		}{
			{"malformed MAC", func(a *kaiv1.Attachment) { a.Id, a.Mac = "x1", "02:00:zz" }, codes.InvalidArgument},
			{"malformed IP", func(a *kaiv1.Attachment) { a.Id, a.Ips = "x2", []string{"100.64.1.300"} }, codes.InvalidArgument},
			{"malformed id", func(a *kaiv1.Attachment) { a.Id = "has space" }, codes.InvalidArgument},
			{"unknown network", func(a *kaiv1.Attachment) { a.Id, a.Network = "x3", "green" }, codes.NotFound},
			{"VF without representor", func(a *kaiv1.Attachment) { a.Id, a.Vf.VfIndex, a.Mac = "x4", 7, "02:00:00:00:0a:77" }, codes.NotFound},
			{"VF attached under another id", func(a *kaiv1.Attachment) { a.Id, a.Mac = "x5", "02:00:00:00:0a:55" }, codes.AlreadyExists},
			{"MAC in use in the network", func(a *kaiv1.Attachment) { a.Id, a.Vf.VfIndex, a.Network = "x6", 1, "blue" }, codes.FailedPrecondition},
		} {
			a := clone(good)
			tc.mut(a)
			_, err := A.att.Attach(ctx, &kaiv1.AttachRequest{Attachment: a})
			if status.Code(err) != tc.code {
				t.Errorf("%s: got %v, want code %s", tc.name, err, tc.code)
			}
		}
		afterList, _ := A.att.List(ctx, &kaiv1.ListRequest{})
		if len(afterList.GetAttachments()) != len(beforeList.GetAttachments()) {
			t.Errorf("rejected attaches changed the attachments: %d -> %d", len(beforeList.GetAttachments()), len(afterList.GetAttachments()))
		}
		if after := cookies(t, A); !slices.Equal(before, after) {
			t.Errorf("rejected attaches changed the flows:\nbefore %x\nafter  %x", before, after)
		}
	})
	t.Run("spoofed source is dropped", func(t *testing.T) {
		checker{t}.ok(lab.In(pA1.ns, "ip", "link", "set", "eth0", "address", "02:00:00:00:0a:99"))
		err := ping(lab, pA1, pB1.ip, 3)
		checker{t}.ok(lab.In(pA1.ns, "ip", "link", "set", "eth0", "address", pA1.mac))
		if err == nil {
			t.Fatal("frames with a spoofed source MAC reached podB1")
		}
		checker{t}.ok(lab.In(pA1.ns, "ip", "addr", "add", "100.64.1.99/24", "dev", "eth0"))
		_, err = lab.In(pA1.ns, "ping", "-c", "3", "-W", "1", "-i", "0.2", "-I", "100.64.1.99", pB1.ip)
		checker{t}.ok(lab.In(pA1.ns, "ip", "addr", "del", "100.64.1.99/24", "dev", "eth0"))
		if err == nil {
			t.Fatal("packets with a spoofed source IP reached podB1")
		}
		eventually(t, 10*time.Second, "podA1 -> podB1 after restoring its MAC", func() error { return ping(lab, pA1, pB1.ip, 1) })
	})
	t.Run("restart of kai-dpu loses no ping", func(t *testing.T) {
		before := cookies(t, A)
		pinger, err := lab.Start(pA1.ns, "ping-restart", nil, "ping", "-i", "0.1", "-c", "100", "-W", "1", pB1.ip)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		A.proc.Stop(10 * time.Second)
		startDPU(t, lab, bin, dir, A)
		eventually(t, 30*time.Second, "kai-dpu A to report its attachments Ready", func() error {
			l, err := A.att.List(ctx, &kaiv1.ListRequest{})
			if err != nil {
				return err
			}
			for _, a := range l.GetAttachments() {
				if a.GetStatus().GetPhase() != kaiv1.Phase_PHASE_READY {
					return fmt.Errorf("%s is %s", a.GetId(), a.GetStatus().GetPhase())
				}
			}
			return nil
		})
		for !pinger.Exited() {
			time.Sleep(100 * time.Millisecond)
		}
		out := pinger.Tail(400)
		if !strings.Contains(out, "100 packets transmitted, 100 received") {
			t.Fatalf("ping across the kai-dpu restart lost packets:\n%s", out)
		}
		after := cookies(t, A)
		if !slices.Equal(before, after) {
			t.Fatalf("flows changed across the restart:\nbefore %x\nafter  %x", before, after)
		}
		assertNoDuplicateFlows(t, A)
	})
	t.Run("detach withdraws the route and removes the flows", func(t *testing.T) {
		id := attachment(pA1).GetId()
		if _, err := A.att.Detach(ctx, &kaiv1.DetachRequest{Id: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := A.att.Detach(ctx, &kaiv1.DetachRequest{Id: id}); err != nil {
			t.Fatalf("second detach must succeed: %v", err)
		}
		eventually(t, 15*time.Second, "podA1's route to be withdrawn at dpuB", func() error {
			rs, err := B.insp.ListRoutes(ctx, &kaiv1.ListRoutesRequest{})
			if err != nil {
				return err
			}
			for _, r := range rs.GetRoutes() {
				if r.GetMac() == pA1.mac {
					return fmt.Errorf("dpuB still has %v", r)
				}
			}
			return nil
		})
		eventually(t, 15*time.Second, "dpuB's flows to forget podA1", func() error {
			out, err := B.ovs.Ofctl("dump-flows", "br-kai")
			if err != nil {
				return err
			}
			if strings.Contains(out, pA1.mac) {
				return fmt.Errorf("dpuB still has a flow for %s:\n%s", pA1.mac, out)
			}
			return nil
		})
		out := checker{t}.ok(A.ovs.Ofctl("dump-flows", "br-kai"))
		if strings.Contains(out, pA1.mac) {
			t.Fatalf("dpuA still has flows for the detached MAC:\n%s", out)
		}
		if err := ping(lab, pB1, pA1.ip, 2); err == nil {
			t.Fatal("podB1 still reaches the detached podA1")
		}
		checker{t}.ok("", ping(lab, pB2, pA2.ip, 2))
	})
}

func startDPU(t *testing.T, lab *netlab.Lab, bin, dir string, d *dpu) {
	t.Helper()
	d.sock = filepath.Join(dir, d.name+".sock")
	d.cfgPath = filepath.Join(dir, d.name+".yaml")
	cfg := fmt.Sprintf(`node: server-%s
stateDir: %s
api: {listen: "unix:%s"}
bgp:
  asn: %d
  routerID: %s
  neighbors: [{address: %s, asn: %d}]
  initialSyncSeconds: 10
vtep: {address: %s}
dataplane:
  backend: ovs
  ovs: {db: "unix:%s", runDir: %s, bridge: br-kai, datapathType: netdev}
representors: emulated
networks:
  - {name: blue, vni: 10100}
  - {name: red, vni: 10200}
`, d.name, filepath.Join(dir, d.name+"-state"), d.sock, asn, d.addr, rrAddr, asn, d.addr, d.ovs.DBSocket(), d.ovs.RunDir())
	if err := os.WriteFile(d.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	d.proc, err = lab.Start(d.ns, d.name+"-kai-dpu", nil, filepath.Join(bin, "kai-dpu"), "--config", d.cfgPath, "--log-level", "debug")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("unix:"+d.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	if d.conn != nil {
		d.conn.Close()
	}
	d.conn = conn
	d.att, d.insp = kaiv1.NewAttachmentsClient(conn), kaiv1.NewInspectClient(conn)
	eventually(t, 30*time.Second, d.name+" API", func() error {
		if d.proc.Exited() {
			t.Fatalf("kai-dpu %s exited:\n%s", d.name, d.proc.Tail(3000))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := d.insp.GetInfo(ctx, &kaiv1.GetInfoRequest{})
		return err
	})
}

func attachment(p *pod) *kaiv1.Attachment {
	return &kaiv1.Attachment{
		Id: "server-" + p.dpu + "/" + p.name + "-uid/net1", Node: "server-" + p.dpu, Network: p.network,
		Pod: &kaiv1.Pod{Namespace: "default", Name: p.name, Uid: p.name + "-uid"},
		Vf:  &kaiv1.VF{PfIndex: 0, VfIndex: p.vf, PciAddress: fmt.Sprintf("0000:03:00.%d", p.vf+2)},
		Mac: p.mac, Ips: []string{p.ip},
	}
}

func clone(a *kaiv1.Attachment) *kaiv1.Attachment {
	return protobuf.Clone(a).(*kaiv1.Attachment)
}

func ping(lab *netlab.Lab, from *pod, ip string, n int) error {
	_, err := lab.In(from.ns, "ping", "-c", fmt.Sprint(n), "-W", "1", "-i", "0.2", ip)
	return err
}

var reCookie = regexp.MustCompile(`cookie=(0x[0-9a-f]+)`)

// cookies returns the sorted cookies of the DPU's Kai flows.
func cookies(t *testing.T, d *dpu) []string {
	t.Helper()
	out := checker{t}.ok(d.ovs.Ofctl("dump-flows", "br-kai", "cookie=0x4b00000000000000/0xff00000000000000"))
	var cs []string
	for _, m := range reCookie.FindAllStringSubmatch(out, -1) {
		cs = append(cs, m[1])
	}
	slices.Sort(cs)
	return cs
}

// assertNoDuplicateFlows: each cookie names one flow, so a repeated cookie
// is a flow programmed twice.
func assertNoDuplicateFlows(t *testing.T, d *dpu) {
	t.Helper()
	cs := cookies(t, d)
	if u := slices.Compact(slices.Clone(cs)); len(u) != len(cs) {
		t.Fatalf("%s has duplicate flows: %d flows, %d distinct cookies", d.name, len(cs), len(u))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
