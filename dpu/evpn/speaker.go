package evpn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// Neighbor is an l2vpn-evpn peer.
type Neighbor struct {
	Address netip.Addr
	ASN     uint32
	Port    uint16
	// LocalAddress sources the session (optional).
	LocalAddress netip.Addr
}

// SpeakerConfig configures a Speaker.
type SpeakerConfig struct {
	ASN      uint32
	RouterID netip.Addr
	// ListenPort: 0 for 179, -1 for no listener.
	ListenPort int32
	// VTEP is our own tunnel address; routes with it as next hop are ours.
	VTEP netip.Addr
	// GracefulRestartSeconds is advertised to peers so they keep our routes
	// while kai-dpu restarts (RFC 4724).
	GracefulRestartSeconds uint32
	// Restarting sets the Restart State bit: we come back with forwarding
	// state preserved and peers must keep our routes until our End-of-RIB.
	Restarting bool
	// RouteReflector makes every neighbor a route-reflector client (lab/test RR).
	RouteReflector bool
	// Passive waits for neighbors to connect. A GoBGP graceful-restart
	// helper drops a restarting peer's stale routes as soon as any new
	// session attempt fails (its FSM goes back to Idle), and two active
	// sides collide right after a restart; a passive reflector avoids that.
	Passive bool
}

// PeerState is a neighbor's session as GoBGP reports it.
type PeerState struct {
	Address  string
	ASN      uint32
	State    string
	Received uint64
	Accepted uint64
}

// Speaker wraps an embedded GoBGP server. It keeps the set of learned
// routes (best path per BGP destination) and diffs the routes Kai wants to
// originate against what it already advertises.
type Speaker struct {
	cfg SpeakerConfig
	log *slog.Logger
	bgp *server.BgpServer

	mu      sync.Mutex
	learned map[string]Route // by route key
	// learnedView is learned sorted, shared by Learned's callers (so never
	// modified in place). Changes since it was built wait in viewEdits
	// (key -> route, nil for a withdraw) and are merged into a new view
	// by the next Learned: a one-route pass copies the view instead of
	// sorting every route again. Too many edits drop the view (nil).
	learnedView []Route
	viewEdits   map[string]*Route
	local       map[string]Route // originated, by route key
	neighbors   map[netip.Addr]Neighbor
	eor         map[string]bool // neighbor address -> End-of-RIB seen since (re)connect
	changed     chan struct{}
	cancel      context.CancelFunc
	started     bool
}

// NewSpeaker creates a speaker; Start runs it.
func NewSpeaker(cfg SpeakerConfig, log *slog.Logger) *Speaker {
	return &Speaker{
		cfg:       cfg,
		log:       log,
		bgp:       server.NewBgpServer(server.LoggerOption(newGoBGPLogger(log))),
		learned:   map[string]Route{},
		local:     map[string]Route{},
		neighbors: map[netip.Addr]Neighbor{},
		eor:       map[string]bool{},
		changed:   make(chan struct{}, 1),
	}
}

// Changed is signalled (coalesced) whenever learned routes or sessions change.
func (s *Speaker) Changed() <-chan struct{} { return s.changed }

func (s *Speaker) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Start starts BGP, originates the initial routes before any session comes
// up (so a restarting speaker re-advertises everything before End-of-RIB),
// then watches learned routes and adds the neighbors.
func (s *Speaker) Start(ctx context.Context, initial []Route, neighbors []Neighbor) error {
	go s.bgp.Serve()
	port := s.cfg.ListenPort
	if port == 0 {
		port = 179
	}
	if err := s.bgp.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:        s.cfg.ASN,
		RouterId:   s.cfg.RouterID.String(),
		ListenPort: port,
	}}); err != nil {
		return fmt.Errorf("start bgp: %w", err)
	}
	if err := s.SetRoutes(ctx, initial); err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	err := s.bgp.WatchEvent(wctx, &api.WatchEventRequest{
		Peer: &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_BEST, Init: true},
			{Type: api.WatchEventRequest_Table_Filter_EOR, Init: true},
		}},
	}, s.onEvent)
	if err != nil {
		cancel()
		return fmt.Errorf("watch bgp events: %w", err)
	}
	if err := s.SetNeighbors(ctx, neighbors); err != nil {
		return err
	}
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	return nil
}

// Close stops watching. It deliberately does not stop BGP with a Cease: the
// process exit closes the sessions, peers treat that as a graceful restart
// and keep our routes, so traffic to our pods keeps flowing.
func (s *Speaker) Close() {
	if s.cancel != nil {
		s.cancel()
	}
}

// Stop withdraws everything by stopping BGP (for tests and `--withdraw-on-exit`).
func (s *Speaker) Stop(ctx context.Context) error {
	s.Close()
	return s.bgp.StopBgp(ctx, &api.StopBgpRequest{})
}

func (s *Speaker) onEvent(ev *api.WatchEventResponse) {
	switch e := ev.Event.(type) {
	case *api.WatchEventResponse_Peer:
		if e.Peer.GetType() == api.WatchEventResponse_PeerEvent_STATE {
			addr := e.Peer.GetPeer().GetState().GetNeighborAddress()
			st := e.Peer.GetPeer().GetState().GetSessionState()
			s.log.Info("bgp session state", "neighbor", addr, "state", st.String())
			if st != api.PeerState_ESTABLISHED {
				s.mu.Lock()
				delete(s.eor, addr)
				s.mu.Unlock()
			}
			s.notify()
		}
	case *api.WatchEventResponse_Table:
		changed := false
		s.mu.Lock()
		for _, p := range e.Table.GetPaths() {
			changed = s.applyPathLocked(p) || changed
		}
		s.mu.Unlock()
		// Events about our own routes (every SetRoutes makes GoBGP report
		// them as best paths) change nothing learned: waking the
		// controller for them cost a full pass per attach.
		if changed {
			s.notify()
		}
	}
}

// applyPathLocked folds one path into the learned routes and reports
// whether they (or the End-of-RIB state) changed.
func (s *Speaker) applyPathLocked(p *api.Path) bool {
	if p.GetNlri() == nil { // End-of-RIB marker
		if p.GetFamily().GetSafi() == api.Family_SAFI_EVPN && !s.eor[p.GetNeighborIp()] {
			s.eor[p.GetNeighborIp()] = true
			return true
		}
		return false
	}
	r, err := fromPath(p)
	if errors.Is(err, errSkip) {
		return false
	}
	if err != nil {
		s.log.Warn("ignoring undecodable evpn path", "neighbor", p.GetNeighborIp(), "error", err)
		return false
	}
	if r.VTEP == s.cfg.VTEP {
		return false // our own route, reflected or local
	}
	k := r.Key()
	old, had := s.learned[k]
	if p.GetIsWithdraw() {
		if had {
			delete(s.learned, k)
			s.editView(k, nil)
		}
		return had
	}
	s.learned[k] = r
	s.editView(k, &r) // also for a new Peer, which Equal ignores
	return !had || !old.Equal(r)
}

// maxViewEdits: beyond this many changes (a peer's table arriving),
// sorting everything again is cheaper than merging.
const maxViewEdits = 1024

func (s *Speaker) editView(k string, r *Route) {
	if s.learnedView == nil {
		return
	}
	if len(s.viewEdits) >= maxViewEdits {
		s.learnedView, s.viewEdits = nil, nil
		return
	}
	if s.viewEdits == nil {
		s.viewEdits = map[string]*Route{}
	}
	s.viewEdits[k] = r
}

// Learned returns the learned routes (best path per destination), sorted by
// key. The slice is shared: callers must not modify its elements.
func (s *Speaker) Learned() []Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.learnedView == nil:
		s.learnedView = sortedRoutes(s.learned)
	case len(s.viewEdits) > 0:
		s.learnedView = mergeEdits(s.learnedView, s.viewEdits)
	}
	s.viewEdits = nil
	return slices.Clip(s.learnedView) // an append by the caller copies
}

// mergeEdits returns a new sorted view: view (sorted by key) with edits
// applied (nil removes the key).
func mergeEdits(view []Route, edits map[string]*Route) []Route {
	keys := make([]string, 0, len(edits))
	for k := range edits {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]Route, 0, len(view)+len(keys))
	i := 0
	for _, k := range keys {
		j, found := slices.BinarySearchFunc(view[i:], k, func(r Route, k string) int { return strings.Compare(r.Key(), k) })
		out = append(out, view[i:i+j]...)
		i += j
		if found {
			i++ // replaced or removed
		}
		if r := edits[k]; r != nil {
			out = append(out, *r)
		}
	}
	return append(out, view[i:]...)
}

// Originated returns the routes we advertise, sorted by key.
func (s *Speaker) Originated() []Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedRoutes(s.local)
}

// sortedRoutes orders by the map keys (each route's Key), so the sort
// compares strings it already has instead of formatting two keys per
// comparison (the top of kai-dpu's CPU profile at 10k routes).
func sortedRoutes(m map[string]Route) []Route {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]Route, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

// Synced reports whether every configured neighbor sent End-of-RIB for
// l2vpn-evpn since its session came up: the learned routes are complete.
func (s *Speaker) Synced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return false
	}
	for addr := range s.neighbors {
		if !s.eor[addr.String()] {
			return false
		}
	}
	return true
}

// SetRoutes makes the originated routes exactly rs: new and changed routes
// are (re)advertised in place, routes no longer wanted are withdrawn.
func (s *Speaker) SetRoutes(ctx context.Context, rs []Route) error {
	want := make(map[string]Route, len(rs))
	for _, r := range rs {
		want[r.Key()] = r
	}
	s.mu.Lock()
	var add, del []Route
	for k, r := range want {
		if old, ok := s.local[k]; !ok || !old.Equal(r) {
			add = append(add, r)
		}
	}
	for k, r := range s.local {
		if _, ok := want[k]; !ok {
			del = append(del, r)
		}
	}
	s.mu.Unlock()
	errs := []error{s.Advertise(ctx, add)}
	for _, r := range del {
		p, err := toPath(r, true)
		if err == nil {
			err = s.bgp.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Path: p})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("withdraw %s: %w", r, err))
			continue
		}
		s.mu.Lock()
		delete(s.local, r.Key())
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// SetNeighbors adds missing neighbors and removes ones no longer configured.
func (s *Speaker) SetNeighbors(ctx context.Context, ns []Neighbor) error {
	want := map[netip.Addr]Neighbor{}
	for _, n := range ns {
		want[n.Address] = n
	}
	var errs []error
	s.mu.Lock()
	have := make(map[netip.Addr]Neighbor, len(s.neighbors))
	for k, v := range s.neighbors {
		have[k] = v
	}
	s.mu.Unlock()
	for addr, old := range have {
		if n, ok := want[addr]; ok && n == old {
			continue
		}
		if err := s.bgp.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
			errs = append(errs, fmt.Errorf("remove neighbor %s: %w", addr, err))
			continue
		}
		s.mu.Lock()
		delete(s.neighbors, addr)
		s.mu.Unlock()
	}
	for addr, n := range want {
		if old, ok := have[addr]; ok && old == n {
			continue
		}
		if err := s.bgp.AddPeer(ctx, &api.AddPeerRequest{Peer: s.peerConfig(n)}); err != nil {
			errs = append(errs, fmt.Errorf("add neighbor %s: %w", addr, err))
			continue
		}
		s.mu.Lock()
		s.neighbors[addr] = n
		s.mu.Unlock()
	}
	s.notify()
	return errors.Join(errs...)
}

func (s *Speaker) peerConfig(n Neighbor) *api.Peer {
	evpn := &api.Family{Afi: api.Family_AFI_L2VPN, Safi: api.Family_SAFI_EVPN}
	p := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: n.Address.String(), PeerAsn: n.ASN},
		AfiSafis: []*api.AfiSafi{{
			Config:            &api.AfiSafiConfig{Family: evpn, Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}},
		}},
		GracefulRestart: &api.GracefulRestart{
			Enabled:         true,
			RestartTime:     s.cfg.GracefulRestartSeconds,
			LocalRestarting: s.cfg.Restarting,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1, HoldTime: 9, KeepaliveInterval: 3}},
	}
	p.Transport = &api.Transport{RemotePort: uint32(n.Port), PassiveMode: s.cfg.Passive}
	if n.LocalAddress.IsValid() {
		p.Transport.LocalAddress = n.LocalAddress.String()
	}
	if s.cfg.RouteReflector {
		p.RouteReflector = &api.RouteReflector{RouteReflectorClient: true, RouteReflectorClusterId: s.cfg.RouterID.String()}
	}
	return p
}

// Peers lists the sessions.
func (s *Speaker) Peers(ctx context.Context) ([]PeerState, error) {
	var out []PeerState
	err := s.bgp.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: false}, func(p *api.Peer) {
		ps := PeerState{Address: p.GetConf().GetNeighborAddress(), ASN: p.GetConf().GetPeerAsn(), State: p.GetState().GetSessionState().String()}
		for _, af := range p.GetAfiSafis() {
			ps.Received += af.GetState().GetReceived()
			ps.Accepted += af.GetState().GetAccepted()
		}
		out = append(out, ps)
	})
	if err != nil {
		return nil, fmt.Errorf("list peers: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, nil
}

// Advertise originates rs, replacing routes with the same key in place,
// and leaves every other originated route alone. SetRoutes diffs against
// the whole set; a route injector that changes a few routes among many
// (benchmarks, tests) uses this instead.
func (s *Speaker) Advertise(ctx context.Context, rs []Route) error {
	var errs []error
	for _, r := range rs {
		p, err := toPath(r, false)
		if err == nil {
			_, err = s.bgp.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("advertise %s: %w", r, err))
			continue
		}
		s.mu.Lock()
		s.local[r.Key()] = r
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}
