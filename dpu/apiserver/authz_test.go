package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/kai-dpu/kai/dpu/config"
	"github.com/kai-dpu/kai/dpu/controller"
	"github.com/kai-dpu/kai/dpu/store"
	"github.com/kai-dpu/kai/sriov"
)

// asHost is a request context from a host agent whose verified client
// certificate names node.
func asHost(node string) context.Context {
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: node}}
	return peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{
		State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}},
	}})
}

func TestAuthorization(t *testing.T) {
	cfg, err := config.Parse([]byte(`node: a
api: {listen: "unix:/x"}
bgp: {asn: 65000, routerID: 198.18.0.11}
vtep: {address: 198.18.0.11}
networks: [{name: blue, vni: 1}, {name: red, vni: 2}]
hosts: [{node: a, networks: [blue], pfs: [0]}, {node: b}]
`))
	if err != nil {
		t.Fatal(err)
	}
	att := func(node, network string, pf uint32) store.Attachment {
		return store.Attachment{ID: "x", Node: node, Network: network, VF: sriov.VF{PFIndex: pf}}
	}
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		a       store.Attachment
		allowed bool
	}{
		{"operator socket: trusted", context.Background(), att("z", "red", 7), true},
		{"host on its own allowed network and PF", asHost("a"), att("a", "blue", 0), true},
		{"host acting for another node", asHost("a"), att("b", "blue", 0), false},
		{"host on a network it may not use", asHost("a"), att("a", "red", 0), false},
		{"host on a PF it may not use", asHost("a"), att("a", "blue", 1), false},
		{"unknown network is left to the controller (NotFound)", asHost("a"), att("a", "purple", 0), true},
		{"host without restrictions", asHost("b"), att("b", "red", 3), true},
		{"host not listed", asHost("c"), att("c", "blue", 0), false},
		{"certificate naming no node", asHost(""), att("", "blue", 0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := authorizeAttachment(tc.ctx, cfg, tc.a)
			if tc.allowed && err != nil {
				t.Fatalf("denied: %v", err)
			}
			if !tc.allowed && controller.KindOf(err) != controller.PermissionDenied {
				t.Fatalf("got %v, want PermissionDenied", err)
			}
		})
	}
	if err := operatorOnly(asHost("a")); controller.KindOf(err) != controller.PermissionDenied {
		t.Fatalf("a host calling an operator view: %v", err)
	}
	if err := operatorOnly(context.Background()); err != nil {
		t.Fatalf("the operator socket calling an operator view: %v", err)
	}
	if err := authorizeNode(asHost("a"), cfg, ""); controller.KindOf(err) != controller.PermissionDenied {
		t.Fatalf("a host listing every node: %v", err)
	}
}
