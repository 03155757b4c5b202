package cni_test

import (
	"testing"

	"github.com/kai-dpu/kai/host/cni"
	"github.com/kai-dpu/kai/host/config"
)

// kai-cni must not link kai-host's config package, so the default socket is
// written twice; this keeps the two the same.
func TestDefaultSocketMatchesKaiHost(t *testing.T) {
	if cni.DefaultSocket != config.DefaultCNISocket {
		t.Fatalf("kai-cni dials %s by default, kai-host serves %s", cni.DefaultSocket, config.DefaultCNISocket)
	}
}
