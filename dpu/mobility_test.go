package dpu_test

// MAC mobility across Kai DPUs with real BGP (RFC 7432 section 15): a MAC
// moves from server1 to server2 and back; every VTEP must follow, sequence
// numbers must increase, and the old location must withdraw.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/cmd/kai-lab/lab"
	"github.com/kai-dpu/kai/cmd/kai-lab/labtest"
	"github.com/kai-dpu/kai/cmd/kai-lab/netlab"
)

func TestMACMobility(t *testing.T) {
	labtest.RequirePrivileged(t, "ovs-vsctl", "ovs-ofctl")
	l := upLab(t, 2, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s1, s2 := &l.Servers[0], &l.Servers[1]
	c1, c2 := clients(t, s1), clients(t, s2)
	// A spare VF on each DPU: the moved workload's new (and old) home.
	for _, srv := range []*lab.Server{s1, s2} {
		if _, err := netlab.Sh("ip", "link", "add", "pf0vf9", "netns", srv.NS, "type", "veth", "peer", "name", "x9", "netns", srv.NS); err != nil {
			t.Fatal(err)
		}
		for _, dev := range []string{"pf0vf9", "x9"} {
			if _, err := netlab.Sh("ip", "netns", "exec", srv.NS, "ip", "link", "set", dev, "up"); err != nil {
				t.Fatal(err)
			}
		}
	}
	const mac, ip = "02:00:00:00:99:01", "100.64.9.1"
	att := func(srv *lab.Server, id string) *kaiv1.Attachment {
		return &kaiv1.Attachment{Id: id, Node: srv.Node, Network: "blue", Mac: mac, Ips: []string{ip},
			Pod: &kaiv1.Pod{Namespace: "default", Name: "mover", Uid: id}, Vf: &kaiv1.VF{VfIndex: 9}}
	}
	// seqAt returns the sequence of srv's own type-2 MAC route for mac, as
	// seen by the other DPU (0 and false if it has none).
	seqAt := func(viewer apiClients, vtep string) (uint32, bool, error) {
		rs, err := viewer.insp.ListRoutes(ctx, &kaiv1.ListRoutesRequest{Network: "blue"})
		if err != nil {
			return 0, false, err
		}
		for _, r := range rs.GetRoutes() {
			if r.GetMac() == mac && r.GetIp() == "" && r.GetVtep() == vtep {
				return r.GetSequence(), true, nil
			}
		}
		return 0, false, nil
	}
	flowTo := func(srv *lab.Server, vtep string) error {
		out, err := srv.Ofctl("dump-flows", "table=20")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "dl_dst="+mac) {
				if vtep == "" && strings.Contains(line, "tun_dst") {
					return fmt.Errorf("%s sends %s to the tunnel: %s", srv.Name, mac, line)
				}
				if vtep != "" && !strings.Contains(line, "set_field:"+vtep+"->tun_dst") {
					return fmt.Errorf("%s does not send %s to %s: %s", srv.Name, mac, vtep, line)
				}
				return nil
			}
		}
		return fmt.Errorf("%s has no flow for %s", srv.Name, mac)
	}

	// 1. First appearance at server1: no mobility community (sequence 0).
	if _, err := c1.att.Attach(ctx, &kaiv1.AttachRequest{Attachment: att(s1, "mover-1")}); err != nil {
		t.Fatal(err)
	}
	labtest.Eventually(t, 15*time.Second, "server2 to learn the MAC at server1", func() error {
		if seq, ok, err := seqAt(c2, s1.Addr); err != nil || !ok || seq != 0 {
			return fmt.Errorf("seq %d present %v err %w", seq, ok, err)
		}
		return flowTo(s2, s1.Addr)
	})

	// 2. It moves to server2 while server1 still advertises it: server2
	// originates sequence 1 and wins everywhere; server1 withdraws its own
	// route, reports the move and forwards to server2.
	resp, err := c2.att.Attach(ctx, &kaiv1.AttachRequest{Attachment: att(s2, "mover-2")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetAttachment().GetStatus().GetPhase() != kaiv1.Phase_PHASE_READY {
		t.Fatalf("the new location is not Ready: %v", resp.GetAttachment().GetStatus())
	}
	labtest.Eventually(t, 15*time.Second, "server1 to follow the move", func() error {
		if seq, ok, err := seqAt(c1, s2.Addr); err != nil || !ok || seq != 1 {
			return fmt.Errorf("server1 sees server2's route with seq %d (present %v, %w), want 1", seq, ok, err)
		}
		if _, ok, _ := seqAt(c2, s1.Addr); ok {
			return fmt.Errorf("server1 still advertises the MAC")
		}
		return flowTo(s1, s2.Addr)
	})
	if err := flowTo(s2, ""); err != nil {
		t.Fatalf("server2 must deliver locally: %v", err)
	}
	list, err := c1.att.List(ctx, &kaiv1.ListRequest{Node: s1.Node})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list.GetAttachments() {
		if a.GetId() == "mover-1" && (a.GetStatus().GetPhase() != kaiv1.Phase_PHASE_ERROR || !strings.Contains(a.GetStatus().GetReason(), "moved to VTEP "+s2.Addr)) {
			t.Fatalf("the old location's attachment: %v, want Error naming the move", a.GetStatus())
		}
	}

	// 3. The old pod goes away; then the workload moves back to server1
	// as a new attachment: sequence 2, server2 withdraws.
	if _, err := c1.att.Detach(ctx, &kaiv1.DetachRequest{Id: "mover-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.att.Attach(ctx, &kaiv1.AttachRequest{Attachment: att(s1, "mover-3")}); err != nil {
		t.Fatal(err)
	}
	labtest.Eventually(t, 15*time.Second, "server2 to follow the move back", func() error {
		if seq, ok, err := seqAt(c2, s1.Addr); err != nil || !ok || seq != 2 {
			return fmt.Errorf("server2 sees server1's route with seq %d (present %v, %w), want 2", seq, ok, err)
		}
		if _, ok, _ := seqAt(c1, s2.Addr); ok {
			return fmt.Errorf("server2 still advertises the MAC")
		}
		return flowTo(s2, s1.Addr)
	})
}
