// Package labtest holds what Kai's integration tests share: the privilege
// gate, building the lab's binaries, and polling helpers.
package labtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/kai-dpu/kai/cmd/kai-lab/lab"
)

// Binaries are everything a full lab runs: Kai's commands and the pinned
// reference CNI plugins kai-cni is chained after.
var Binaries = []string{
	"github.com/kai-dpu/kai/cmd/kai-dpu", "github.com/kai-dpu/kai/cmd/kai-lab",
	"github.com/kai-dpu/kai/cmd/kai-host", "github.com/kai-dpu/kai/cmd/kai-cni",
	"github.com/containernetworking/plugins/plugins/main/host-device",
	"github.com/containernetworking/plugins/plugins/ipam/static",
}

// RequirePrivileged skips a test that needs root and the lab's packages,
// saying why, unless it runs in CI, where it fails instead: integration
// tests are never skipped there.
func RequirePrivileged(t *testing.T, tools ...string) {
	t.Helper()
	need := func(why string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("integration test cannot run in CI: %s", why)
		}
		t.Skip("skipping integration test: " + why)
	}
	if testing.Short() {
		need("-short")
	}
	if os.Geteuid() != 0 {
		need("needs root (network namespaces, veths, OVS); run `sudo make test`")
	}
	for _, bin := range append([]string{"ip", "ovsdb-server", "ovs-vswitchd", "ping", "ethtool"}, tools...) {
		if _, err := exec.LookPath(bin); err != nil {
			need(fmt.Sprintf("%s not found; run hack/install-prereqs.sh", bin))
		}
	}
}

// BuildBinaries builds Binaries into dir.
func BuildBinaries(t *testing.T, dir string) {
	t.Helper()
	out, err := exec.Command("go", append([]string{"build", "-o", dir + "/"}, Binaries...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
}

// Eventually polls f until it returns nil or timeout passes.
func Eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// MustReach fails unless pod from reaches ip.
func MustReach(t *testing.T, from lab.Pod, ip string) {
	t.Helper()
	if !lab.Reach(context.Background(), from, ip, true) {
		t.Fatalf("%s cannot reach %s", from.Name, ip)
	}
}

// Tail returns the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TraversableTempDir is a temporary directory others can traverse: FRR's
// zebra drops to the frr user and must reach the lab's files, which
// t.TempDir's 0700 directories forbid. It is removed after the test.
func TraversableTempDir(t *testing.T, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
