// Package agent is kai-host's core. It keeps the host's attachments in a
// checkpoint, reports them to the DPU, and serves kai-cni. Host and DPU
// sync state-of-the-world: on every (re)connect, and whenever the DPU's
// boot id changes, the agent sends its full set with a new epoch and the
// DPU drops what the host no longer has.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/host/checkpoint"
	"github.com/kai-dpu/kai/host/devicepool"
	"github.com/kai-dpu/kai/host/identity"
)

// Options tune the agent; zero values take defaults.
type Options struct {
	// AddTimeout bounds Add when the plugin sets none.
	AddTimeout time.Duration
	// BootCheck is how often the DPU's boot id is compared.
	BootCheck time.Duration
	// MaxBackoff caps reconnect delays.
	MaxBackoff time.Duration
}

// Agent is kai-host.
type Agent struct {
	log  *slog.Logger
	node string
	ck   *checkpoint.Checkpoint
	ids  identity.Resolver
	pool *devicepool.Pool // nil: no device-plugin pool check
	att  kaiv1.AttachmentsClient
	insp kaiv1.InspectClient
	opts Options

	// mu makes a Sync exclusive: it holds mu for writing while Add and Del
	// hold it for reading, so the full set a Sync sends never races a
	// change. Adds and Dels of different VFs run in parallel (each waits
	// for its own DPU round trip); vfs serializes those of the same VF.
	mu  sync.RWMutex
	vfs keyedLocks

	smu       sync.Mutex
	connected bool
	bootID    string
	lastErr   error
	status    map[string]*kaiv1.Attachment // last known DPU view, by id
	syncs     uint64
}

// New creates an agent talking to the DPU over conn.
func New(node string, ck *checkpoint.Checkpoint, ids identity.Resolver, pool *devicepool.Pool, conn grpc.ClientConnInterface, opts Options, log *slog.Logger) *Agent {
	if opts.AddTimeout == 0 {
		opts.AddTimeout = 30 * time.Second
	}
	if opts.BootCheck == 0 {
		opts.BootCheck = 5 * time.Second
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	return &Agent{
		log: log, node: node, ck: ck, ids: ids, pool: pool, opts: opts,
		att: kaiv1.NewAttachmentsClient(conn), insp: kaiv1.NewInspectClient(conn),
		status: map[string]*kaiv1.Attachment{}, lastErr: errors.New("not connected to the DPU yet"),
	}
}

// Run keeps a session with the DPU until ctx ends, reconnecting with capped
// exponential backoff.
func (a *Agent) Run(ctx context.Context) error {
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		err := a.session(ctx)
		a.setDisconnected(err)
		if ctx.Err() != nil {
			return nil
		}
		backoff = min(max(2*backoff, 200*time.Millisecond), a.opts.MaxBackoff)
		a.log.Warn("DPU session ended; reconnecting", "error", err, "retryIn", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
	}
	return nil
}

func (a *Agent) setDisconnected(err error) {
	a.smu.Lock()
	defer a.smu.Unlock()
	a.connected = false
	a.lastErr = err
}

// session: learn the DPU's boot id, sync the full set, then follow status
// changes until the stream breaks or the DPU restarts.
func (a *Agent) session(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	boot, err := a.fetchBootID(ctx)
	if err != nil {
		return err
	}
	stream, err := a.att.Watch(ctx, &kaiv1.WatchRequest{Node: a.node})
	if err != nil {
		return fmt.Errorf("watch DPU attachments: %w", err)
	}
	if err := a.sync(ctx); err != nil {
		return err
	}
	a.smu.Lock()
	prev := a.bootID
	a.connected, a.bootID, a.lastErr = true, boot, nil
	a.smu.Unlock()
	if prev != "" && prev != boot {
		a.log.Info("DPU restarted; resynced", "bootID", boot)
	}
	a.log.Info("DPU session up", "bootID", boot, "attachments", len(a.ck.List()))
	errc := make(chan error, 2)
	go func() { errc <- a.follow(stream) }()
	go func() { errc <- a.watchBoot(ctx, boot) }()
	return <-errc
}

func (a *Agent) fetchBootID(ctx context.Context) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := a.insp.GetInfo(cctx, &kaiv1.GetInfoRequest{})
	if err != nil {
		return "", fmt.Errorf("reach DPU: %w", err)
	}
	return info.GetBootId(), nil
}

// sync sends the checkpoint to the DPU as the full set, with a new epoch.
func (a *Agent) sync(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	epoch, err := a.ck.NextEpoch()
	if err != nil {
		return err
	}
	req := &kaiv1.SyncRequest{Node: a.node, Epoch: epoch}
	for _, c := range a.ck.List() {
		req.Attachments = append(req.Attachments, a.toProto(c))
	}
	cctx, cancel := context.WithTimeout(ctx, a.opts.AddTimeout)
	defer cancel()
	resp, err := a.att.Sync(cctx, req)
	if err != nil {
		return fmt.Errorf("sync %d attachments with the DPU (epoch %d): %w", len(req.Attachments), epoch, err)
	}
	a.smu.Lock()
	a.status = map[string]*kaiv1.Attachment{}
	for _, at := range resp.GetAttachments() {
		a.status[at.GetId()] = at
	}
	a.syncs++
	a.smu.Unlock()
	if len(resp.GetRemoved()) > 0 {
		a.log.Info("DPU dropped attachments this host no longer has", "removed", resp.GetRemoved())
	}
	return nil
}

func (a *Agent) follow(stream kaiv1.Attachments_WatchClient) error {
	for {
		ev, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("DPU watch stream: %w", err)
		}
		a.smu.Lock()
		if ev.GetType() == kaiv1.WatchEvent_TYPE_DELETE {
			delete(a.status, ev.GetAttachment().GetId())
		} else {
			a.status[ev.GetAttachment().GetId()] = ev.GetAttachment()
		}
		a.smu.Unlock()
	}
}

// watchBoot ends the session when the DPU's boot id changes, so the next
// session resyncs (the stream alone may survive a fast restart behind a proxy).
func (a *Agent) watchBoot(ctx context.Context, boot string) error {
	t := time.NewTicker(a.opts.BootCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		now, err := a.fetchBootID(ctx)
		if err != nil {
			return err
		}
		if now != boot {
			return fmt.Errorf("DPU restarted (boot id %s -> %s)", boot, now)
		}
	}
}

func (a *Agent) toProto(c checkpoint.Attachment) *kaiv1.Attachment {
	return &kaiv1.Attachment{
		Id: c.ID, Node: a.node, Network: c.Network, Mac: c.MAC, Ips: c.IPs,
		Pod: &kaiv1.Pod{Namespace: c.Pod.Namespace, Name: c.Pod.Name, Uid: c.Pod.UID},
		Vf:  &kaiv1.VF{PfIndex: c.VF.PFIndex, PfPciAddress: c.VF.PFPCIAddress, VfIndex: c.VF.VFIndex, PciAddress: c.VF.PCIAddress},
	}
}

// Ready reports whether kai-host can serve Add: connected and synced.
func (a *Agent) Ready() error {
	a.smu.Lock()
	defer a.smu.Unlock()
	return a.readyLocked()
}

func (a *Agent) readyLocked() error {
	if !a.connected {
		return fmt.Errorf("DPU not reachable: %w", a.lastErr)
	}
	return nil
}

// Snapshot is the agent's view for metrics.
type Snapshot struct {
	Connected bool
	BootID    string
	Syncs     uint64
	Phases    map[kaiv1.Phase]int
}

// Snapshot returns counters for metrics and status.
func (a *Agent) Snapshot() Snapshot {
	a.smu.Lock()
	defer a.smu.Unlock()
	s := Snapshot{Connected: a.connected, BootID: a.bootID, Syncs: a.syncs, Phases: map[kaiv1.Phase]int{}}
	for _, c := range a.ck.List() {
		ph := kaiv1.Phase_PHASE_PENDING
		if st, ok := a.status[c.ID]; ok {
			ph = st.GetStatus().GetPhase()
		}
		s.Phases[ph]++
	}
	return s
}
