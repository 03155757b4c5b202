package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/cmd/kai-lab/lab"
	"github.com/kai-dpu/kai/dpu/config"
	"github.com/kai-dpu/kai/dpu/desired"
	"github.com/kai-dpu/kai/dpu/evpn"
	"github.com/kai-dpu/kai/dpu/store"
	"github.com/kai-dpu/kai/offload/ovs"
)

// checker verifies a lab against its own record, independently of what
// kai-dpu believes: for every DPU it computes the desired state from the
// DPU's RIB and stored attachments (the same pure function kai-dpu uses)
// and diffs it against the flows read back from OVS.
type checker struct {
	lab      *lab.Lab
	backends map[string]*ovs.Backend
	cfgs     map[string]*config.Config
}

func newChecker(ctx context.Context, l *lab.Lab, log *slog.Logger) (*checker, error) {
	c := &checker{lab: l, backends: map[string]*ovs.Backend{}, cfgs: map[string]*config.Config{}}
	for _, srv := range l.Servers {
		cfg, err := config.Load(srv.Config)
		if err != nil {
			return nil, err
		}
		oc := cfg.Dataplane.OVS
		b, err := ovs.New(ctx, ovs.Config{DB: oc.DB, Bridge: oc.Bridge, DatapathType: oc.DatapathType, OFCtl: oc.OFCtl, RunDir: oc.RunDir}, log)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("%s: %w", srv.Name, err)
		}
		c.backends[srv.Name], c.cfgs[srv.Name] = b, cfg
	}
	return c, nil
}

func (c *checker) close() {
	for _, b := range c.backends {
		_ = b.Close()
	}
}

// control checks the control plane and the programmed flows of every DPU;
// the first problem found is returned.
func (c *checker) control(ctx context.Context) error {
	for _, srv := range c.lab.Servers {
		if err := c.server(ctx, srv); err != nil {
			return fmt.Errorf("%s: %w", srv.Name, err)
		}
	}
	return nil
}

func (c *checker) server(ctx context.Context, srv lab.Server) error {
	conn, err := lab.Dial(&srv)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	insp := kaiv1.NewInspectClient(conn)
	info, err := insp.GetInfo(cctx, &kaiv1.GetInfoRequest{})
	if err != nil {
		return fmt.Errorf("kai-dpu: %w", err)
	}
	for _, p := range info.GetPeers() {
		if p.GetState() != "ESTABLISHED" {
			return fmt.Errorf("BGP session with %s is %s", p.GetAddress(), p.GetState())
		}
	}
	routes, err := insp.ListRoutes(cctx, &kaiv1.ListRoutesRequest{})
	if err != nil {
		return err
	}
	if err := c.remoteMACs(srv, routes.GetRoutes()); err != nil {
		return err
	}
	list, err := kaiv1.NewAttachmentsClient(conn).List(cctx, &kaiv1.ListRequest{})
	if err != nil {
		return err
	}
	if err := c.attachments(srv, list.GetAttachments()); err != nil {
		return err
	}
	// The desired state from the RIB and the stored attachments.
	st, _, err := store.Open(srv.StateDir)
	if err != nil {
		return err
	}
	learned, err := toRoutes(routes.GetRoutes())
	if err != nil {
		return err
	}
	want := desired.Compute(desired.Input{Config: c.cfgs[srv.Name], Attachments: st.List(""), Learned: learned})
	diff, err := c.backends[srv.Name].Verify(cctx, want.Dataplane)
	if err != nil {
		return err
	}
	if len(diff) > 0 {
		return &flowMismatch{lines: diff}
	}
	return nil
}

// flowMismatch is the exact difference between the programmed flows and
// the desired state, as the OpenFlow changes that would fix it.
type flowMismatch struct{ lines []string }

func (m *flowMismatch) Error() string {
	shown := m.lines[:min(len(m.lines), 30)]
	more := ""
	if len(m.lines) > len(shown) {
		more = fmt.Sprintf("\n    ... and %d more", len(m.lines)-len(shown))
	}
	return fmt.Sprintf("programmed flows differ from the desired state by %d changes:\n    %s%s", len(m.lines), strings.Join(shown, "\n    "), more)
}

// remoteMACs checks that the DPU follows every pod elsewhere to its VTEP.
func (c *checker) remoteMACs(srv lab.Server, routes []*kaiv1.Route) error {
	follows := map[string]string{}
	for _, r := range routes {
		if !r.GetLocal() && r.GetWinner() && r.GetType() == "mac-ip" && r.GetIp() == "" {
			follows[r.GetMac()] = r.GetVtep()
		}
	}
	for _, p := range c.lab.Pods {
		if p.Server == srv.Name {
			continue
		}
		want, err := c.lab.VTEPOf(p.Server)
		if err != nil {
			return err
		}
		if got, ok := follows[p.MAC]; !ok {
			return fmt.Errorf("remote MAC %s (%s on %s) is missing", p.MAC, p.Name, p.Server)
		} else if got != want {
			return fmt.Errorf("remote MAC %s (%s) points at %s, want %s (%s)", p.MAC, p.Name, got, want, p.Server)
		}
	}
	return nil
}

// attachments checks the DPU holds exactly its pods' attachments, Ready.
func (c *checker) attachments(srv lab.Server, atts []*kaiv1.Attachment) error {
	want := map[string]bool{}
	for _, p := range c.lab.Pods {
		if p.Server == srv.Name && !p.Legacy {
			want[p.MAC] = true
		}
	}
	for _, a := range atts {
		if !want[a.GetMac()] {
			return fmt.Errorf("attachment %s (MAC %s) should not be there", a.GetId(), a.GetMac())
		}
		if ph := a.GetStatus().GetPhase(); ph != kaiv1.Phase_PHASE_READY {
			return fmt.Errorf("attachment %s is %s: %s", a.GetId(), ph, a.GetStatus().GetReason())
		}
		delete(want, a.GetMac())
	}
	for mac := range want {
		return fmt.Errorf("pod with MAC %s has no attachment", mac)
	}
	return nil
}

// toRoutes converts the learned routes of ListRoutes back to the speaker's.
func toRoutes(rs []*kaiv1.Route) ([]evpn.Route, error) {
	var out []evpn.Route
	for _, r := range rs {
		if r.GetLocal() {
			continue
		}
		er := evpn.Route{RD: r.GetRouteDistinguisher(), MAC: r.GetMac(), VNI: r.GetVni(), Seq: r.GetSequence(),
			Sticky: r.GetSticky(), RTs: r.GetRouteTargets(), Peer: r.GetSource()}
		switch r.GetType() {
		case evpn.MACIP.String():
			er.Type = evpn.MACIP
		case evpn.InclusiveMulticast.String():
			er.Type = evpn.InclusiveMulticast
		default:
			return nil, fmt.Errorf("route type %q", r.GetType())
		}
		var err error
		if er.VTEP, err = netip.ParseAddr(r.GetVtep()); err != nil {
			return nil, fmt.Errorf("route %s: %w", r.GetRouteDistinguisher(), err)
		}
		if r.GetIp() != "" {
			if er.IP, err = netip.ParseAddr(r.GetIp()); err != nil {
				return nil, err
			}
		}
		out = append(out, er)
	}
	return out, nil
}

// pings checks the ping matrix: same network reaches, other networks not.
func pings(ctx context.Context, s *lab.State) error {
	var bad []string
	for _, r := range s.PingMatrix(ctx) {
		if r.Got != r.Want {
			what := "cannot reach"
			if r.Got {
				what = "LEAKS to"
			}
			bad = append(bad, fmt.Sprintf("%s %s %s", r.From, what, r.To))
		}
	}
	if len(bad) > 0 {
		return errors.New("ping matrix: " + strings.Join(bad, ", "))
	}
	return nil
}
