// Package controller is kai-dpu's core: it validates and stores
// attachments, and runs the reconcile loop that makes the EVPN speaker and
// the dataplane follow desired.Compute. Events only ask for a recompute;
// nothing is programmed because an event arrived.
package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kai-dpu/kai/dpu/config"
	"github.com/kai-dpu/kai/dpu/desired"
	"github.com/kai-dpu/kai/dpu/evpn"
	"github.com/kai-dpu/kai/dpu/store"
	"github.com/kai-dpu/kai/offload"
	"github.com/kai-dpu/kai/sriov"
)

// Speaker is what the controller needs of the EVPN speaker.
type Speaker interface {
	SetRoutes(ctx context.Context, rs []evpn.Route) error
	SetNeighbors(ctx context.Context, ns []evpn.Neighbor) error
	Learned() []evpn.Route
	Originated() []evpn.Route
	Synced() bool
	Changed() <-chan struct{}
	Peers(ctx context.Context) ([]evpn.PeerState, error)
}

// EventType of a Watch event.
type EventType int

// Event types.
const (
	Upsert EventType = iota + 1
	Delete
)

// Event is a change of an attachment or its status.
type Event struct {
	Type       EventType
	Attachment store.Attachment
}

// Options tune the controller; zero values take defaults.
type Options struct {
	// Resync re-reads the dataplane periodically (e.g. after an
	// ovs-vswitchd restart wiped its flows).
	Resync time.Duration
	// MaxBackoff caps the retry delay after a failed reconcile.
	MaxBackoff time.Duration
	// AttachTimeout bounds Attach/Detach/Sync when the caller set no deadline.
	AttachTimeout time.Duration
	// DriftCheck is how often a backend that can detect drift cheaply
	// (offload.DriftDetector) is asked, and expired MAC freezes are
	// looked for; either triggers a reconcile.
	DriftCheck time.Duration
	// SaveRemote is how often changed learned routes are persisted. Saving
	// 100k routes costs about a second of CPU, so it happens off the
	// reconcile path at most this often, and always when Run ends.
	SaveRemote time.Duration
	// ObservePass, if set, is told how long each reconcile pass took
	// (kai-dpu feeds a histogram with it).
	ObservePass func(time.Duration)
}

// Controller owns kai-dpu's state.
type Controller struct {
	log   *slog.Logger
	store *store.Store
	bgp   Speaker
	dp    offload.Dataplane
	reps  sriov.Resolver
	opts  Options

	cfg    atomic.Pointer[config.Config]
	bootID string
	start  time.Time

	// mu serializes mutations (attach, detach, sync, reload).
	mu sync.Mutex

	kick chan struct{}

	rmu       sync.Mutex
	requested uint64
	applied   uint64
	passDone  chan struct{} // closed and replaced after every pass
	lastErr   error
	last      desired.Output
	dups      *dupDetector
	subs      map[int]*subscriber
	nextSub   int

	// pendingRemote is the newest complete set of learned routes not yet
	// saved; saveMu serializes the saves.
	pendingRemote atomic.Pointer[[]evpn.Route]
	saveMu        sync.Mutex
}

type subscriber struct {
	node string
	ch   chan Event
}

// New creates a controller. Run starts its reconcile loop.
func New(cfg *config.Config, st *store.Store, bgp Speaker, dp offload.Dataplane, reps sriov.Resolver, opts Options, log *slog.Logger) *Controller {
	if opts.Resync == 0 {
		opts.Resync = 10 * time.Second
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	if opts.AttachTimeout == 0 {
		opts.AttachTimeout = 30 * time.Second
	}
	if opts.DriftCheck == 0 {
		opts.DriftCheck = time.Second
	}
	if opts.SaveRemote == 0 {
		opts.SaveRemote = 5 * time.Second
	}
	c := &Controller{
		log: log, store: st, bgp: bgp, dp: dp, reps: reps, opts: opts,
		bootID: newBootID(), start: time.Now(),
		kick: make(chan struct{}, 1), passDone: make(chan struct{}), dups: newDupDetector(),
		subs: map[int]*subscriber{},
	}
	c.cfg.Store(cfg)
	return c
}

func newBootID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// BootID changes on every kai-dpu start; hosts resync when it changes.
func (c *Controller) BootID() string { return c.bootID }

// Config returns the running config.
func (c *Controller) Config() *config.Config { return c.cfg.Load() }

// Routes computes the routes to originate from the stored state, for the
// speaker's first advertisement at start (before any session is up).
func (c *Controller) Routes() []evpn.Route {
	in, _ := c.input()
	return desired.Compute(in).Routes
}

func (c *Controller) input() (desired.Input, bool) {
	learned, complete := c.learned()
	return desired.Input{Config: c.cfg.Load(), Attachments: c.store.List(""), Learned: learned}, complete
}

// learned returns the fabric's routes and whether they are complete. Until
// every neighbor sent End-of-RIB (bounded by bgp.initialSyncSeconds) the
// routes saved before a restart fill the gaps, so a restart never removes a
// remote MAC that is still valid.
func (c *Controller) learned() ([]evpn.Route, bool) {
	live := c.bgp.Learned()
	cfg := c.cfg.Load()
	if c.bgp.Synced() || time.Since(c.start) > time.Duration(cfg.BGP.InitialSyncSeconds)*time.Second {
		return live, true
	}
	seen := map[string]bool{}
	for _, r := range live {
		seen[r.Key()] = true
	}
	for _, r := range c.store.Remote() {
		if !seen[r.Key()] {
			live = append(live, r)
		}
	}
	return live, false
}

// paceAbove: passes shorter than this never delay the next one.
const paceAbove = 200 * time.Millisecond

// Trigger asks for a reconcile and returns its request number.
func (c *Controller) Trigger() uint64 {
	c.rmu.Lock()
	c.requested++
	n := c.requested
	c.rmu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return n
}

// WaitApplied waits until a reconcile that started after request n succeeded.
func (c *Controller) WaitApplied(ctx context.Context, n uint64) error {
	for {
		c.rmu.Lock()
		applied, done, lastErr := c.applied, c.passDone, c.lastErr
		c.rmu.Unlock()
		if applied >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return wrap(Unavailable, lastErr, "dataplane or BGP not ready")
			}
			return wrap(Unavailable, ctx.Err(), "dataplane or BGP not ready")
		case <-done:
		}
	}
}

// Run reconciles until ctx ends: on request, on BGP changes, periodically,
// and with capped exponential backoff after a failure.
func (c *Controller) Run(ctx context.Context) error {
	backoff := time.Duration(0)
	resync := time.NewTicker(c.opts.Resync)
	defer resync.Stop()
	var retry <-chan time.Time
	syncDeadline := time.After(time.Until(c.start.Add(time.Duration(c.cfg.Load().BGP.InitialSyncSeconds) * time.Second)))
	drift := time.NewTicker(c.opts.DriftCheck)
	defer drift.Stop()
	detector, _ := c.dp.(offload.DriftDetector)
	save := time.NewTicker(c.opts.SaveRemote)
	defer save.Stop()
	// A stopping kai-dpu saves what it learned last, so the next start
	// stands in for the RIB with current routes, not older ones.
	defer c.saveRemote()
	// While routes stream in (a peer's full table), back-to-back full
	// passes would take the CPU GoBGP needs to receive them: after a pass
	// longer than paceAbove, BGP changes wait as long as that pass took.
	// Requests (attach, detach, reload) never wait.
	var lastPass time.Duration
	var lastEnd time.Time
	var paced <-chan time.Time
	c.Trigger()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-save.C:
			if c.pendingRemote.Load() != nil {
				go c.saveRemote()
			}
			continue
		case <-c.kick:
		case <-c.bgp.Changed():
			if wait := lastPass - time.Since(lastEnd); lastPass > paceAbove && wait > 0 {
				if paced == nil {
					paced = time.After(wait)
				}
				continue
			}
		case <-paced:
		case <-resync.C:
		case <-retry:
		case <-syncDeadline:
			syncDeadline = nil
		case <-drift.C:
			switch {
			case retry != nil:
				continue
			case c.dups.expired(time.Now()):
			case detector != nil && detector.Drifted(ctx):
				c.log.Info("dataplane drifted from the last apply (ovs-vswitchd restart?); reconciling")
			default:
				continue
			}
		}
		c.rmu.Lock()
		n := c.requested
		c.rmu.Unlock()
		paced = nil // this pass sees every change so far
		passStart := time.Now()
		err := c.reconcile(ctx)
		lastEnd = time.Now()
		lastPass = lastEnd.Sub(passStart)
		if c.opts.ObservePass != nil {
			c.opts.ObservePass(lastPass)
		}
		c.rmu.Lock()
		if err == nil {
			c.applied = n
		}
		c.lastErr = err
		close(c.passDone)
		c.passDone = make(chan struct{})
		c.rmu.Unlock()
		if err != nil {
			backoff = min(max(2*backoff, 100*time.Millisecond), c.opts.MaxBackoff)
			c.log.Warn("reconcile failed, will retry", "error", err, "retryIn", backoff)
			retry = time.After(backoff)
			continue
		}
		backoff, retry = 0, nil
	}
}

func (c *Controller) reconcile(ctx context.Context) error {
	in, complete := c.input()
	in.Frozen = c.dups.current(time.Now())
	if complete {
		// Saved for the next start (see learned), by saveRemote.
		c.pendingRemote.Store(&in.Learned)
	}
	t0 := time.Now()
	out := desired.Compute(in)
	out.Dataplane.KeepRemote = !complete
	t1 := time.Now()
	bgpErr := c.bgp.SetRoutes(ctx, out.Routes)
	t2 := time.Now()
	res, dpErr := c.dp.Apply(ctx, out.Dataplane)
	t3 := time.Now()
	if res.Changes > 0 {
		c.log.Info("dataplane reconciled", "changes", res.Changes)
	}
	c.log.Debug("reconcile pass", "compute", t1.Sub(t0), "bgp", t2.Sub(t1), "dataplane", t3.Sub(t2),
		"learned", len(in.Learned), "attachments", len(in.Attachments))
	err := errors.Join(bgpErr, dpErr)
	for _, a := range in.Attachments {
		st := a.Status
		switch reason, bad := out.Problems[a.ID]; {
		case bad:
			st = store.Status{Phase: store.Error, Reason: reason, ObservedGeneration: a.Generation}
		case err != nil:
			if st.ObservedGeneration != a.Generation || st.Phase != store.Ready {
				st = store.Status{Phase: store.Pending, Reason: err.Error(), ObservedGeneration: st.ObservedGeneration}
			}
		default:
			st = store.Status{Phase: store.Ready, ObservedGeneration: a.Generation}
		}
		if na, changed := c.store.SetStatus(a.ID, st); changed {
			c.publish(Event{Type: Upsert, Attachment: na})
		}
	}
	c.rmu.Lock()
	c.last = out
	c.rmu.Unlock()
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	if frozen := c.dups.observe(in.Config.MACMobility, out, in.Config.VTEP.Address, time.Now()); len(frozen) > 0 {
		now := c.dups.current(time.Now())
		for _, k := range frozen {
			c.log.Warn("duplicate MAC detected; frozen", "network", k.Network, "mac", k.MAC, "reason", now[k].Reason)
		}
		c.Trigger() // recompute with the freeze, and report it
	}
	return nil
}

// saveRemote persists the newest complete learned routes, if any are pending.
func (c *Controller) saveRemote() {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	rs := c.pendingRemote.Swap(nil)
	if rs == nil {
		return
	}
	if err := c.store.SetRemote(*rs); err != nil {
		c.log.Warn("saving learned routes failed; a restart may briefly miss them", "error", err)
		c.pendingRemote.CompareAndSwap(nil, rs) // retried at the next tick unless newer ones came
	}
}

// FrozenMACs returns the MACs frozen by duplicate detection.
func (c *Controller) FrozenMACs() map[desired.MACKey]desired.Frozen {
	return c.dups.current(time.Now())
}

// Subscribe streams events for node (all nodes if empty). The channel is
// closed if the subscriber falls too far behind; it should then resubscribe.
func (c *Controller) Subscribe(node string) (<-chan Event, func()) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	id := c.nextSub
	c.nextSub++
	s := &subscriber{node: node, ch: make(chan Event, 1024)}
	c.subs[id] = s
	return s.ch, func() {
		c.rmu.Lock()
		defer c.rmu.Unlock()
		if _, ok := c.subs[id]; ok {
			delete(c.subs, id)
			close(s.ch)
		}
	}
}

func (c *Controller) publish(ev Event) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for id, s := range c.subs {
		if s.node != "" && s.node != ev.Attachment.Node {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			delete(c.subs, id)
			close(s.ch)
		}
	}
}

// Ready reports whether a reconcile has succeeded and the last one did.
func (c *Controller) Ready() error {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.applied == 0 {
		return errors.New("no reconcile has completed yet")
	}
	return c.lastErr
}

// Last returns the most recent desired state and reconcile error.
func (c *Controller) Last() (desired.Output, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return c.last, c.lastErr
}

func (c *Controller) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.opts.AttachTimeout)
}
