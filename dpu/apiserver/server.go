// Package apiserver adapts the controller to gRPC: each handler converts
// the request, calls one controller method and maps its error kind to a
// gRPC code. Health checking and reflection are registered too.
package apiserver

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/dpu/controller"
	"github.com/kai-dpu/kai/dpu/store"
	"github.com/kai-dpu/kai/offload"
)

// Server implements the Attachments and Inspect services.
type Server struct {
	kaiv1.UnimplementedAttachmentsServer
	kaiv1.UnimplementedInspectServer
	ctl     *controller.Controller
	dp      offload.Dataplane
	peers   PeerLister
	Health  *health.Server
	version string
}

// New creates the API server.
func New(ctl *controller.Controller, dp offload.Dataplane, peers PeerLister, version string) *Server {
	return &Server{ctl: ctl, dp: dp, peers: peers, Health: health.NewServer(), version: version}
}

// Register adds the services to g.
func (s *Server) Register(g *grpc.Server) {
	kaiv1.RegisterAttachmentsServer(g, s)
	kaiv1.RegisterInspectServer(g, s)
	healthpb.RegisterHealthServer(g, s.Health)
	reflection.Register(g)
}

// grpcError maps controller error kinds to gRPC codes.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) && controller.KindOf(err) == controller.Internal {
		return status.Error(codes.Canceled, err.Error())
	}
	code := map[controller.Kind]codes.Code{
		controller.InvalidArgument:    codes.InvalidArgument,
		controller.NotFound:           codes.NotFound,
		controller.AlreadyExists:      codes.AlreadyExists,
		controller.FailedPrecondition: codes.FailedPrecondition,
		controller.Unavailable:        codes.Unavailable,
		controller.PermissionDenied:   codes.PermissionDenied,
		controller.Internal:           codes.Internal,
	}[controller.KindOf(err)]
	return status.Error(code, err.Error())
}

// Attach implements kai.v1.Attachments.
func (s *Server) Attach(ctx context.Context, r *kaiv1.AttachRequest) (*kaiv1.AttachResponse, error) {
	a, err := fromProto(r.GetAttachment())
	if err == nil {
		err = authorizeAttachment(ctx, s.ctl.Config(), a)
	}
	if err != nil {
		return nil, grpcError(err)
	}
	got, err := s.ctl.Attach(ctx, a)
	if err != nil {
		return nil, grpcError(err)
	}
	return &kaiv1.AttachResponse{Attachment: toProto(got)}, nil
}

// Detach implements kai.v1.Attachments.
func (s *Server) Detach(ctx context.Context, r *kaiv1.DetachRequest) (*kaiv1.DetachResponse, error) {
	// An unknown id is success, but only for a host that is allowed at all.
	node, _ := caller(ctx)
	if a, ok := s.ctl.Get(r.GetId()); ok {
		node = a.Node
	}
	if err := authorizeNode(ctx, s.ctl.Config(), node); err != nil {
		return nil, grpcError(err)
	}
	return &kaiv1.DetachResponse{}, grpcError(s.ctl.Detach(ctx, r.GetId()))
}

// Sync implements kai.v1.Attachments.
func (s *Server) Sync(ctx context.Context, r *kaiv1.SyncRequest) (*kaiv1.SyncResponse, error) {
	if err := authorizeNode(ctx, s.ctl.Config(), r.GetNode()); err != nil {
		return nil, grpcError(err)
	}
	var as []store.Attachment
	for _, p := range r.GetAttachments() {
		a, err := fromProto(p)
		if err == nil {
			err = authorizeAttachment(ctx, s.ctl.Config(), a)
		}
		if err != nil {
			return nil, grpcError(err)
		}
		as = append(as, a)
	}
	got, removed, err := s.ctl.Sync(ctx, r.GetNode(), r.GetEpoch(), as)
	if err != nil {
		return nil, grpcError(err)
	}
	resp := &kaiv1.SyncResponse{Removed: removed}
	for _, a := range got {
		resp.Attachments = append(resp.Attachments, toProto(a))
	}
	return resp, nil
}

// List implements kai.v1.Attachments.
func (s *Server) List(ctx context.Context, r *kaiv1.ListRequest) (*kaiv1.ListResponse, error) {
	if err := authorizeNode(ctx, s.ctl.Config(), r.GetNode()); err != nil {
		return nil, grpcError(err)
	}
	resp := &kaiv1.ListResponse{}
	for _, a := range s.ctl.List(r.GetNode()) {
		resp.Attachments = append(resp.Attachments, toProto(a))
	}
	return resp, nil
}

// Watch implements kai.v1.Attachments: the current set, then changes.
func (s *Server) Watch(r *kaiv1.WatchRequest, stream kaiv1.Attachments_WatchServer) error {
	if err := authorizeNode(stream.Context(), s.ctl.Config(), r.GetNode()); err != nil {
		return grpcError(err)
	}
	ch, cancel := s.ctl.Subscribe(r.GetNode())
	defer cancel()
	for _, a := range s.ctl.List(r.GetNode()) {
		if err := stream.Send(&kaiv1.WatchEvent{Type: kaiv1.WatchEvent_TYPE_UPSERT, Attachment: toProto(a)}); err != nil {
			return err
		}
	}
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case ev, ok := <-ch:
			if !ok {
				return status.Error(codes.ResourceExhausted, "watcher fell behind; watch again")
			}
			t := kaiv1.WatchEvent_TYPE_UPSERT
			if ev.Type == controller.Delete {
				t = kaiv1.WatchEvent_TYPE_DELETE
			}
			if err := stream.Send(&kaiv1.WatchEvent{Type: t, Attachment: toProto(ev.Attachment)}); err != nil {
				return err
			}
		}
	}
}
