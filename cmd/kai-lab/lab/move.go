package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/cmd/kai-lab/netlab"
)

// Open continues a lab another kai-lab process brought up, to change its
// pods (kai-lab move). Processes it did not start cannot be restarted.
func Open(dir string) (*Lab, error) {
	s, ok, err := Load(dir)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no lab is running in %s (start one with `kai-lab up`)", dir)
	}
	nl := netlab.Resume(s.Prefix, s.Dir, s.Record)
	nl.OnChange = func(r netlab.Record) {
		s.Record = r
		_ = s.save()
	}
	return &Lab{State: s, nl: nl}, nil
}

// Move is what a pod move did: the MAC's sequence number before and after
// (RFC 7432 section 15) and where the pod is now.
type Move struct {
	Pod, From, To    string
	FromSeq, ToSeq   uint32
	FromVTEP, ToVTEP string
	Took             time.Duration
}

// Move moves a pod, with its MAC and IP, to another server, Kai or legacy,
// make-before-break as a live migration does: the pod comes up on the new
// server while the old one still advertises it, so the new VTEP originates
// the next sequence number and the old one withdraws, then the old
// incarnation is deleted. It returns once every other VTEP follows the new
// location with a higher sequence number.
func (l *Lab) Move(ctx context.Context, pod, to string) (m Move, err error) {
	start := time.Now()
	idx := slices.IndexFunc(l.Pods, func(p Pod) bool { return p.Name == pod })
	if idx < 0 {
		return Move{}, fmt.Errorf("no pod %q", pod)
	}
	old := l.Pods[idx]
	if old.Server == to {
		return Move{}, fmt.Errorf("pod %s is already on %s", pod, to)
	}
	if l.Direct {
		return Move{}, errors.New("moving pods needs host agents (a lab without --direct)")
	}
	fromVTEP, err := l.VTEPOf(old.Server)
	if err != nil {
		return Move{}, err
	}
	toVTEP, err := l.VTEPOf(to)
	if err != nil {
		return Move{}, err
	}
	m = Move{Pod: pod, From: old.Server, To: to, FromVTEP: fromVTEP, ToVTEP: toVTEP}
	if m.FromSeq, err = l.winnerSeq(ctx, old); err != nil {
		return m, err
	}
	unplugged := false
	if old.Legacy {
		// A migrating workload stops at its source as its copy starts
		// at the target. Without that, any frame the old incarnation sends
		// makes the legacy bridge learn the MAC locally again after FRR
		// installed the new remote location, and FRR re-advertises it with
		// a higher sequence: a real duplicate, flapping every VTEP's flow
		// for a second (found by chaos). Not learning from the old port
		// keeps its existing entry until FRR replaces it.
		// It is paused before the copy is plugged: FRR may install the new
		// location as soon as the copy advertises. A failed move resumes it.
		lgNS := l.legacy(old.Server).NS
		if _, err := l.nl.In(lgNS, "bridge", "link", "set", "dev", old.HostLink, "learning", "off"); err != nil {
			return m, fmt.Errorf("pause %s on %s: %w", pod, old.Server, err)
		}
		defer func() {
			if err != nil && !unplugged {
				if _, rerr := l.nl.In(lgNS, "bridge", "link", "set", "dev", old.HostLink, "learning", "on"); rerr != nil {
					err = errors.Join(err, fmt.Errorf("resume %s on %s: %w", pod, old.Server, rerr))
				}
			}
		}()
	}
	np := old
	np.Gen++
	np.Server, np.HostLink = to, ""
	if np.NS, err = l.nl.AddNS(fmt.Sprintf("%s-g%d", pod, np.Gen)); err != nil {
		return m, err
	}
	if srv := l.Server(to); srv != nil {
		err = l.plugKai(srv, &np)
	} else {
		err = l.plugLegacy(&np)
	}
	if err != nil {
		return m, errors.Join(fmt.Errorf("bring %s up on %s: %w", pod, to, err), l.nl.DelNS(np.NS))
	}
	l.Pods[idx] = np
	if err := l.save(); err != nil {
		return m, err
	}
	if m.ToSeq, err = l.waitMoved(ctx, np, toVTEP, m.FromSeq); err != nil {
		return m, err
	}
	if err := l.unplug(old); err != nil {
		return m, fmt.Errorf("remove %s from %s: %w", pod, old.Server, err)
	}
	unplugged = true
	m.Took = time.Since(start)
	return m, l.save()
}

// VTEPOf is the VTEP address of a Kai or legacy server.
func (s *State) VTEPOf(server string) (string, error) {
	if srv := s.Server(server); srv != nil {
		return srv.Addr, nil
	}
	if lg := s.legacy(server); lg != nil {
		return lg.Addr, nil
	}
	return "", fmt.Errorf("no server %q (see `kai-lab status`)", server)
}

// FreeVF is the lowest VF of a Kai server's pool no pod uses.
func (s *State) FreeVF(server string) (uint32, bool) {
	used := map[uint32]bool{}
	for _, p := range s.Pods {
		if p.Server == server && !p.Legacy {
			used[p.VF] = true
		}
	}
	for j := range uint32(s.VFs) {
		if !used[j] {
			return j, true
		}
	}
	return 0, false
}

func (s *State) legacy(name string) *Legacy {
	for i := range s.Legacy {
		if s.Legacy[i].Name == name {
			return &s.Legacy[i]
		}
	}
	return nil
}

// plugKai attaches the new incarnation on a Kai server through its CNI
// chain, on a free VF whose MAC the PF admin sets to the pod's.
func (l *Lab) plugKai(srv *Server, p *Pod) error {
	vf, ok := l.FreeVF(srv.Name)
	if !ok {
		return fmt.Errorf("no free VF in %s's pool of %d (bring the lab up with --spare-vfs)", srv.Name, l.VFs)
	}
	p.Legacy = false
	p.VF, p.PCI, p.Rep = vf, vfPCI(int(vf)), fmt.Sprintf("pf0vf%d", vf)
	if _, err := l.nl.In(srv.HostNS, "ip", "link", "set", fmt.Sprintf("vf%d", vf), "address", p.MAC); err != nil {
		return err
	}
	if out, err := l.cniFor(context.Background(), *p, "add", nil); err != nil {
		return fmt.Errorf("CNI ADD: %w: %s", err, out)
	}
	return nil
}

// plugLegacy puts the new incarnation on a legacy server's bridge; the pod
// announces itself so the bridge learns its MAC and FRR advertises it.
func (l *Lab) plugLegacy(p *Pod) error {
	lg := l.legacy(p.Server)
	l.LinkSeq++
	p.Legacy, p.VF, p.PCI, p.Rep = true, 0, "", ""
	p.HostLink = fmt.Sprintf("lm%d", l.LinkSeq)
	if err := linkLegacyPod(l.nl, lg.NS, *p); err != nil {
		return err
	}
	announce(*p)
	return nil
}

// unplug removes an old incarnation: CNI DEL on a Kai server, then its
// namespace (which takes a legacy pod's veth off the bridge).
func (l *Lab) unplug(p Pod) error {
	if !p.Legacy {
		if out, err := l.cniFor(context.Background(), p, "del", nil); err != nil {
			return fmt.Errorf("CNI DEL: %w: %s", err, out)
		}
	}
	return l.nl.DelNS(p.NS)
}

// winnerSeq is the sequence number of p's MAC as the other Kai DPUs see it
// (0 when none knows it).
func (l *Lab) winnerSeq(ctx context.Context, p Pod) (uint32, error) {
	for _, srv := range l.Servers {
		if srv.Name == p.Server {
			continue
		}
		rs, err := l.routes(ctx, &srv)
		if err != nil {
			return 0, err
		}
		for _, r := range rs {
			if r.GetMac() == p.MAC && r.GetWinner() && r.GetType() == "mac-ip" {
				return r.GetSequence(), nil
			}
		}
	}
	return 0, nil
}

func (s *State) routes(ctx context.Context, srv *Server) ([]*kaiv1.Route, error) {
	conn, err := Dial(srv)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := kaiv1.NewInspectClient(conn).ListRoutes(cctx, &kaiv1.ListRoutesRequest{})
	if err != nil {
		return nil, fmt.Errorf("%s: list routes: %w", srv.Name, err)
	}
	return resp.GetRoutes(), nil
}

// waitMoved waits until every VTEP but the new one follows p's MAC to vtep:
// Kai DPUs with a winner at a sequence number above before, legacy VTEPs
// with their bridge FDB entry. It returns the new sequence number.
func (l *Lab) waitMoved(ctx context.Context, p Pod, vtep string, before uint32) (uint32, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		seq, pending, err := l.moved(ctx, p, vtep, before)
		if err == nil && pending == "" {
			return seq, nil
		}
		if err == nil {
			err = errors.New(pending)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, fmt.Errorf("%s's MAC %s did not converge to %s: %w", p.Name, p.MAC, vtep, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (l *Lab) moved(ctx context.Context, p Pod, vtep string, before uint32) (seq uint32, pending string, err error) {
	for _, srv := range l.Servers {
		if srv.Name == p.Server {
			continue
		}
		rs, err := l.routes(ctx, &srv)
		if err != nil {
			return 0, "", err
		}
		i := slices.IndexFunc(rs, func(r *kaiv1.Route) bool {
			return r.GetMac() == p.MAC && r.GetWinner() && r.GetType() == "mac-ip" && r.GetIp() == ""
		})
		switch {
		case i < 0:
			return 0, fmt.Sprintf("%s has no route for it", srv.Name), nil
		case rs[i].GetVtep() != vtep:
			return 0, fmt.Sprintf("%s follows %s (seq %d)", srv.Name, rs[i].GetVtep(), rs[i].GetSequence()), nil
		case int32(rs[i].GetSequence()-before) <= 0:
			return 0, fmt.Sprintf("%s: seq %d is not above %d", srv.Name, rs[i].GetSequence(), before), nil
		}
		seq = rs[i].GetSequence()
	}
	for _, lg := range l.Legacy {
		if lg.Name == p.Server {
			continue
		}
		dst, err := legacyFDB(lg, p)
		if err != nil {
			return 0, "", err
		}
		if dst != vtep {
			return 0, fmt.Sprintf("%s's FDB sends it to %q", lg.Name, dst), nil
		}
	}
	return seq, "", nil
}

// legacyFDB is where a legacy VTEP's kernel FDB sends p's MAC ("" if
// nowhere).
func legacyFDB(lg Legacy, p Pod) (string, error) {
	out, err := netlab.Sh("ip", "netns", "exec", lg.NS, "bridge", "-j", "fdb", "show", "dev", "vx-"+p.Network)
	if err != nil {
		return "", err
	}
	var entries []struct {
		MAC string `json:"mac"`
		Dst string `json:"dst"`
	}
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		return "", fmt.Errorf("%s: bridge fdb: %w", lg.Name, err)
	}
	for _, e := range entries {
		if strings.EqualFold(e.MAC, p.MAC) && e.Dst != "" {
			return e.Dst, nil
		}
	}
	return "", nil
}
