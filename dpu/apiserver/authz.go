package apiserver

import (
	"context"
	"fmt"
	"slices"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/kai-dpu/kai/dpu/config"
	"github.com/kai-dpu/kai/dpu/controller"
	"github.com/kai-dpu/kai/dpu/store"
)

// caller returns the node a request speaks for. Over mutual TLS it is the
// verified client certificate's CommonName (or first DNS name) and the
// caller is restricted by the config's hosts policy. On the operator's unix
// socket or an insecure listener there is no identity: the caller is
// trusted (ok false).
func caller(ctx context.Context) (node string, authenticated bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", false
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return "", false
	}
	cert := ti.State.VerifiedChains[0][0]
	if cert.Subject.CommonName != "" {
		return cert.Subject.CommonName, true
	}
	if len(cert.DNSNames) > 0 {
		return cert.DNSNames[0], true
	}
	return "", true
}

func denied(format string, args ...any) error {
	return &controller.Error{Kind: controller.PermissionDenied, Msg: fmt.Sprintf(format, args...)}
}

// authorizeNode checks that an authenticated caller acts for node only.
func authorizeNode(ctx context.Context, cfg *config.Config, node string) error {
	_, _, err := callerPolicy(ctx, cfg, node)
	return err
}

// callerPolicy authorizes the caller for node and returns its hosts policy;
// an unauthenticated caller (the local operator socket) gets ok false.
func callerPolicy(ctx context.Context, cfg *config.Config, node string) (pol config.Host, ok bool, err error) {
	who, authn := caller(ctx)
	if !authn {
		return config.Host{}, false, nil
	}
	if who == "" {
		return config.Host{}, false, denied("client certificate names no node (set its CommonName to the node name)")
	}
	pol, allowed := cfg.HostPolicy(who)
	if !allowed {
		return config.Host{}, false, denied("host %q is not allowed on this DPU (config hosts)", who)
	}
	if node != who {
		return config.Host{}, false, denied("host %q may not act for node %q", who, node)
	}
	return pol, true, nil
}

// authorizeAttachment checks the hosts policy for one attachment. Unknown
// networks are left to the controller, which reports them as NotFound.
func authorizeAttachment(ctx context.Context, cfg *config.Config, a store.Attachment) error {
	pol, ok, err := callerPolicy(ctx, cfg, a.Node)
	if err != nil || !ok {
		return err
	}
	who := a.Node // callerPolicy checked the caller is this node
	if _, known := cfg.Network(a.Network); known && len(pol.Networks) > 0 && !slices.Contains(pol.Networks, a.Network) {
		return denied("host %q is not permitted on network %q (allowed: %v)", who, a.Network, pol.Networks)
	}
	if len(pol.PFs) > 0 && !slices.Contains(pol.PFs, a.VF.PFIndex) {
		return denied("host %q may not use VFs of PF %d (allowed PFs: %v)", who, a.VF.PFIndex, pol.PFs)
	}
	return nil
}

// operatorOnly keeps authenticated host agents out of operator views.
func operatorOnly(ctx context.Context) error {
	if who, authn := caller(ctx); authn {
		return denied("host %q: this call is for operators on the DPU's local socket", who)
	}
	return nil
}
