package cni

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errPluginNotAvailable is the CNI 1.1 well-known code STATUS returns when
// the plugin cannot serve ADD. cni v1.3.0 has no constant for it.
const errPluginNotAvailable uint = 50

// probeTimeout bounds the socket probe that tells "kai-host is down" apart
// from "kai-host says the DPU is down".
const probeTimeout = time.Second

// hostUnreachable is the message for a kai-host that does not answer on
// its socket: on a node that is almost always a missing or crashing pod.
func hostUnreachable(socket string) string {
	return fmt.Sprintf("kai-host is not reachable at %s: is the kai-host DaemonSet running on this node?", socket)
}

// socketAccepts reports whether something accepts connections on socket.
// gRPC reports both a dead socket and a server-side Unavailable with the
// same code; a direct connect is the unambiguous way to tell them apart.
func socketAccepts(socket string) bool {
	c, err := net.DialTimeout("unix", socket, probeTimeout)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// rpcError turns a Host API error into a CNI error an operator can act on.
// op names the call ("Add", ...); deadline is the message for
// DeadlineExceeded, which means something different per call.
func rpcError(op, socket, deadline string, err error) *types.Error {
	var cniErr *types.Error
	if errors.As(err, &cniErr) {
		return cniErr
	}
	st, ok := status.FromError(err)
	if !ok {
		return types.NewError(types.ErrInternal, fmt.Sprintf("kai-cni: Host.%s: %v", op, err), "")
	}
	msg := st.Message()
	switch st.Code() {
	case codes.Unavailable:
		if !socketAccepts(socket) {
			return types.NewError(types.ErrTryAgainLater, hostUnreachable(socket), msg)
		}
		return types.NewError(types.ErrTryAgainLater, "the DPU is not reachable/ready: "+msg, "")
	case codes.DeadlineExceeded:
		return types.NewError(types.ErrTryAgainLater, deadline, msg)
	case codes.NotFound, codes.FailedPrecondition, codes.AlreadyExists, codes.InvalidArgument:
		return types.NewError(types.ErrInvalidNetworkConfig, msg, "")
	case codes.PermissionDenied:
		return types.NewError(types.ErrInvalidNetworkConfig,
			"this node is not permitted to attach this VF or network (check the DPU's allowed hosts and networks): "+msg, "")
	default:
		return types.NewError(types.ErrInternal, fmt.Sprintf("kai-host: Host.%s failed (%s): %s", op, st.Code(), msg), "")
	}
}
