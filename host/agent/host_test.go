package agent

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/host/checkpoint"
	"github.com/kai-dpu/kai/host/config"
	"github.com/kai-dpu/kai/host/identity"
)

// gateDPU is a DPU whose Attach blocks until the test opens the gate, and
// which records how many Attach calls were in flight at once.
type gateDPU struct {
	kaiv1.UnimplementedAttachmentsServer
	kaiv1.UnimplementedInspectServer

	gate chan struct{}

	mu          sync.Mutex
	inFlight    int
	maxInFlight int
	arrived     chan string
}

func (d *gateDPU) GetInfo(context.Context, *kaiv1.GetInfoRequest) (*kaiv1.Info, error) {
	return &kaiv1.Info{BootId: "boot-1"}, nil
}

func (d *gateDPU) Watch(_ *kaiv1.WatchRequest, s kaiv1.Attachments_WatchServer) error {
	<-s.Context().Done()
	return nil
}

func (d *gateDPU) Sync(_ context.Context, r *kaiv1.SyncRequest) (*kaiv1.SyncResponse, error) {
	return &kaiv1.SyncResponse{Attachments: r.GetAttachments()}, nil
}

func (d *gateDPU) Attach(ctx context.Context, r *kaiv1.AttachRequest) (*kaiv1.AttachResponse, error) {
	d.mu.Lock()
	d.inFlight++
	d.maxInFlight = max(d.maxInFlight, d.inFlight)
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.inFlight--
		d.mu.Unlock()
	}()
	d.arrived <- r.GetAttachment().GetId()
	select {
	case <-d.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	a := r.GetAttachment()
	a.Status = &kaiv1.AttachmentStatus{Phase: kaiv1.Phase_PHASE_READY}
	return &kaiv1.AttachResponse{Attachment: a}, nil
}

func startAgent(t *testing.T, dpu *gateDPU) *HostServer {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	kaiv1.RegisterAttachmentsServer(srv, dpu)
	kaiv1.RegisterInspectServer(srv, dpu)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///dpu",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ck, err := checkpoint.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ids := identity.NewEmulated([]config.EmulatedVF{
		{PCI: "0000:03:00.2", PF: 0, VF: 0, PFPCI: "0000:03:00.0"},
		{PCI: "0000:03:00.3", PF: 0, VF: 1, PFPCI: "0000:03:00.0"},
	})
	a := New("node1", ck, ids, nil, conn, Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(5 * time.Second)
	for a.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("agent never connected: %v", a.Ready())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return NewHostServer(a)
}

func addReq(id, pci, mac string) *kaiv1.HostAddRequest {
	return &kaiv1.HostAddRequest{Id: id, Network: "blue", PciAddress: pci, Mac: mac, TimeoutSeconds: 10}
}

// Two pods' ADDs must both reach the DPU before either is answered: a slow
// DPU round trip for one pod must not queue every other pod behind it.
func TestAddsOfDifferentVFsRunInParallel(t *testing.T) {
	dpu := &gateDPU{gate: make(chan struct{}), arrived: make(chan string, 4)}
	h := startAgent(t, dpu)
	errs := make(chan error, 2)
	for i, pci := range []string{"0000:03:00.2", "0000:03:00.3"} {
		go func() {
			_, err := h.Add(context.Background(), addReq("c"+pci, pci, "02:00:00:00:00:0"+string(rune('1'+i))))
			errs <- err
		}()
	}
	for range 2 {
		select {
		case <-dpu.arrived:
		case <-time.After(5 * time.Second):
			t.Fatal("the second ADD never reached the DPU while the first was waiting: ADDs are serialized")
		}
	}
	close(dpu.gate)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if dpu.maxInFlight != 2 {
		t.Fatalf("max Attach calls in flight = %d, want 2", dpu.maxInFlight)
	}
}

// Two requests for the same VF must not interleave.
func TestAddsOfTheSameVFAreSerialized(t *testing.T) {
	dpu := &gateDPU{gate: make(chan struct{}), arrived: make(chan string, 4)}
	h := startAgent(t, dpu)
	errs := make(chan error, 2)
	for _, id := range []string{"a", "b"} {
		go func() {
			_, err := h.Add(context.Background(), addReq(id, "0000:03:00.2", "02:00:00:00:00:01"))
			errs <- err
		}()
	}
	<-dpu.arrived
	select {
	case id := <-dpu.arrived:
		t.Fatalf("ADD %s reached the DPU while another ADD of the same VF was in flight", id)
	case <-time.After(200 * time.Millisecond):
	}
	close(dpu.gate)
	<-dpu.arrived
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if dpu.maxInFlight != 1 {
		t.Fatalf("max Attach calls in flight = %d, want 1", dpu.maxInFlight)
	}
}
