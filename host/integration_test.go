package host_test

// End-to-end test of the host side with real packets: per server a host
// namespace running kai-host (mutual TLS to its DPU over a management
// link), a DPU namespace (OVS + kai-dpu), and pods attached by the real CNI
// chain through libcni: the reference host-device plugin moves the VF into
// the pod and assigns its IP, kai-cni reports it to kai-host. Needs root
// and hack/install-prereqs.sh.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/cmd/kai-lab/lab"
	"github.com/kai-dpu/kai/cmd/kai-lab/labtest"
	"github.com/kai-dpu/kai/cmd/kai-lab/netlab"
)

func TestHostAgentAndCNI(t *testing.T) {
	labtest.RequirePrivileged(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	labtest.BuildBinaries(t, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Servers: 2, PodsPerServer: 2, BinDir: bin,
		StateDir: filepath.Join(dir, "lab"), Prefix: fmt.Sprintf("kht%d", os.Getpid()%100000)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if keep := os.Getenv("KAI_KEEP_LOGS"); keep != "" {
				_ = exec.Command("cp", "-r", l.Dir, keep).Run()
			}
			for _, name := range []string{"server1-kai-host", "server1-kai-dpu"} {
				if data, err := os.ReadFile(filepath.Join(l.Dir, name+".log")); err == nil {
					t.Logf("--- %s log (tail) ---\n%s", name, labtest.Tail(string(data), 2500))
				}
			}
		}
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	s1 := &l.Servers[0]
	a1, a2, b1, b2 := l.Pods[0], l.Pods[1], l.Pods[2], l.Pods[3]
	cni := func(pod, op string) error {
		out, err := l.CNI(ctx, pod, op, nil)
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	dpu1 := operator(t, s1)

	t.Run("ADD makes the pod reachable across DPUs", func(t *testing.T) {
		labtest.MustReach(t, a1, b1.IP)
		labtest.MustReach(t, b2, a2.IP)
		if lab.Reach(ctx, a1, b2.IP, false) {
			t.Fatal("blue pod reached a red pod")
		}
		list, err := dpu1.List(ctx, &kaiv1.ListRequest{Node: s1.Node})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(list.GetAttachments()); n != 2 {
			t.Fatalf("DPU of server1 has %d attachments, want 2: %v", n, list)
		}
		for _, a := range list.GetAttachments() {
			if a.GetVf().GetPciAddress() == "" || a.GetStatus().GetPhase() != kaiv1.Phase_PHASE_READY {
				t.Fatalf("attachment %v: want the VF's PCI identity and Ready", a)
			}
		}
	})
	t.Run("CHECK and STATUS", func(t *testing.T) {
		if err := cni(a1.Name, "check"); err != nil {
			t.Fatalf("CHECK of an attached pod: %v", err)
		}
		if err := cni(a1.Name, "status"); err != nil {
			t.Fatalf("STATUS with kai-host and DPU up: %v", err)
		}
	})
	t.Run("bad input is a clear error and changes nothing", func(t *testing.T) {
		before, err := dpu1.List(ctx, &kaiv1.ListRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ name, network, pci, extra, want string }{
			{"malformed netconf", "blue", a1.PCI, `"timeoutSeconds":"soon",`, "timeoutSeconds"},
			{"unknown network", "purple", a1.PCI, "", `is not configured on this DPU`},
			{"VF outside the pool", "blue", l.OutOfPoolVF(), "", "is not in device-plugin resource"},
			{"host not permitted on the network", lab.RestrictedNetwork, a1.PCI, "", "not permitted on network"},
		} {
			out, err := kaiCNI(l, bin, a1, "ADD", "bad-sandbox", tc.network, tc.pci, tc.extra)
			code := `"code": 7`
			if tc.name == "malformed netconf" {
				code = `"code": 6`
			}
			if err == nil || !strings.Contains(out, tc.want) || !strings.Contains(out, code) {
				t.Errorf("%s: want CNI error %s containing %q, got %v:\n%s", tc.name, code, tc.want, err, out)
			}
		}
		after, err := dpu1.List(ctx, &kaiv1.ListRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(before, after) {
			t.Fatalf("rejected ADDs changed the DPU's attachments:\nbefore %v\nafter  %v", before, after)
		}
		if err := cni(a1.Name, "check"); err != nil {
			t.Fatalf("the pod's own attachment suffered: %v", err)
		}
	})
	t.Run("ADD of a VF whose DEL was missed replaces the stale attachment", func(t *testing.T) {
		// kai-cni tolerates DEL while kai-host is down, so kai-host can hold
		// a stale attachment; the VF's next ADD (a new sandbox) replaces it.
		for _, sandbox := range []string{"replacement-sandbox", a1.Name + "-sandbox"} {
			if out, err := kaiCNI(l, bin, a1, "ADD", sandbox, a1.Network, a1.PCI, ""); err != nil {
				t.Fatalf("ADD from %s: %v\n%s", sandbox, err, out)
			}
			list, err := dpu1.List(ctx, &kaiv1.ListRequest{Node: s1.Node})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, a := range list.GetAttachments() {
				ids = append(ids, a.GetId())
			}
			if !slices.Contains(ids, sandbox+"/eth0") || len(ids) != 2 {
				t.Fatalf("after ADD from %s the DPU has %v, want it and pod1-2 only", sandbox, ids)
			}
		}
		labtest.MustReach(t, a1, b1.IP)
	})
	t.Run("kai-host restart loses nothing", func(t *testing.T) {
		pinger := startPing(t, a1, b1.IP, 60)
		if err := l.RestartHost(ctx, s1.Name, true, true); err != nil {
			t.Fatal(err)
		}
		waitPing(t, pinger, 60)
		list, err := dpu1.List(ctx, &kaiv1.ListRequest{Node: s1.Node})
		if err != nil || len(list.GetAttachments()) != 2 {
			t.Fatalf("after the kai-host restart the DPU has %v (%v), want the same 2 attachments", list, err)
		}
		if err := cni(a1.Name, "check"); err != nil {
			t.Fatalf("CHECK after the kai-host restart: %v", err)
		}
	})
	t.Run("DEL while the DPU is down is applied by the resync", func(t *testing.T) {
		if err := l.StopDPU(s1.Name); err != nil {
			t.Fatal(err)
		}
		if err := cni(a2.Name, "del"); err != nil {
			t.Fatalf("DEL with the DPU down must succeed: %v", err)
		}
		if err := cni(a2.Name, "status"); err == nil {
			t.Fatal("STATUS must fail while the DPU is down")
		}
		if err := l.StartDPU(ctx, s1.Name); err != nil {
			t.Fatal(err)
		}
		labtest.Eventually(t, 30*time.Second, "the DPU to drop the attachment deleted while it was down", func() error {
			list, err := dpu1.List(ctx, &kaiv1.ListRequest{Node: s1.Node})
			if err != nil {
				return err
			}
			for _, a := range list.GetAttachments() {
				if a.GetPod().GetName() == a2.Name {
					return fmt.Errorf("DPU still has %s", a.GetId())
				}
			}
			if len(list.GetAttachments()) != 1 {
				return fmt.Errorf("DPU has %d attachments, want 1", len(list.GetAttachments()))
			}
			return nil
		})
		labtest.MustReach(t, a1, b1.IP)
		// kai-cni's DEL is idempotent (the reference host-device's is not).
		if out, err := kaiCNI(l, bin, a2, "DEL", a2.Name+"-sandbox", a2.Network, a2.PCI, ""); err != nil {
			t.Fatalf("second DEL must succeed: %v: %s", err, out)
		}
	})
	t.Run("DEL removes the pod from the fabric", func(t *testing.T) {
		if err := cni(b1.Name, "del"); err != nil {
			t.Fatal(err)
		}
		labtest.Eventually(t, 15*time.Second, "pod2-1 unreachable", func() error {
			if lab.Reach(ctx, a1, b1.IP, false) {
				return fmt.Errorf("pod1-1 still reaches the deleted pod2-1")
			}
			return nil
		})
		if err := cni(b1.Name, "check"); err == nil {
			t.Fatal("CHECK of a deleted pod must fail")
		}
	})
	t.Run("GC removes attachments that are not valid", func(t *testing.T) {
		// GC from pod1-1's chain keeps every other pod of server1; pod1-2 is
		// already gone, so only pod1-1 itself is collected.
		if err := cni(a1.Name, "gc"); err != nil {
			t.Fatal(err)
		}
		labtest.Eventually(t, 15*time.Second, "the DPU to have no attachments of server1", func() error {
			list, err := dpu1.List(ctx, &kaiv1.ListRequest{Node: s1.Node})
			if err != nil {
				return err
			}
			if n := len(list.GetAttachments()); n != 0 {
				return fmt.Errorf("%d attachments left", n)
			}
			return nil
		})
	})
	t.Run("wrong client certificate is refused", func(t *testing.T) {
		if err := l.UseRogueHostCert(s1.Name); err != nil {
			t.Fatal(err)
		}
		if err := l.RestartHost(ctx, s1.Name, false, false); err != nil {
			t.Fatal(err)
		}
		// TLS 1.3 reports a rejected client certificate after the
		// handshake, so the transport error text varies; kai-host's log
		// names the cause, and STATUS says it is not ready.
		labtest.Eventually(t, 15*time.Second, "kai-host to log the rejected certificate", func() error {
			data, err := os.ReadFile(filepath.Join(l.Dir, s1.Name+"-kai-host.log"))
			if err != nil {
				return err
			}
			if !strings.Contains(string(data), "tls: certificate required") && !strings.Contains(string(data), "bad certificate") {
				return fmt.Errorf("no TLS certificate error in the kai-host log yet")
			}
			return nil
		})
		out, err := netlab.Sh("ip", "netns", "exec", s1.HostNS, filepath.Join(bin, "kai-lab"), "cni-status", "--socket", s1.HostSocket)
		if err == nil || !strings.Contains(out, "DPU not reachable") {
			t.Fatalf("kai-host with a certificate from another CA: want not ready, got %v: %s", err, out)
		}
	})
}

// kaiCNI runs the kai-cni binary as a container runtime would: CNI_*
// variables and the netconf (with the previous plugin's result) on stdin,
// in the server's host namespace. extra is spliced into the netconf.
func kaiCNI(l *lab.Lab, bin string, p lab.Pod, cmd, containerID, network, pci, extra string) (string, error) {
	srv := l.Server(p.Server)
	conf := fmt.Sprintf(`{"cniVersion":"1.1.0","name":%q,"type":"kai-cni",%s"network":%q,"socket":%q,"deviceID":%q,
 "prevResult":{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/%s"}],"ips":[{"address":"%s/16","interface":0}]}}`,
		network, extra, network, srv.HostSocket, pci, p.NS, p.IP)
	c := exec.Command("ip", "netns", "exec", srv.HostNS, "env",
		"CNI_COMMAND="+cmd, "CNI_CONTAINERID="+containerID, "CNI_NETNS=/run/netns/"+p.NS, "CNI_IFNAME=eth0",
		"CNI_PATH="+bin, "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME="+p.Name+";K8S_POD_UID="+p.Name+"-uid",
		filepath.Join(bin, "kai-cni"))
	c.Stdin = strings.NewReader(conf)
	out, err := c.CombinedOutput()
	return string(out), err
}

func operator(t *testing.T, srv *lab.Server) kaiv1.AttachmentsClient {
	t.Helper()
	conn, err := lab.Dial(srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return kaiv1.NewAttachmentsClient(conn)
}

type pinger struct {
	cmd *exec.Cmd
	out *strings.Builder
}

func startPing(t *testing.T, from lab.Pod, ip string, n int) pinger {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", from.NS, "ping", "-i", "0.1", "-c", fmt.Sprint(n), "-W", "1", ip)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return pinger{cmd, &out}
}

func waitPing(t *testing.T, p pinger, n int) {
	t.Helper()
	_ = p.cmd.Wait()
	if want := fmt.Sprintf("%d packets transmitted, %d received", n, n); !strings.Contains(p.out.String(), want) {
		t.Fatalf("ping lost packets:\n%s", labtest.Tail(p.out.String(), 400))
	}
}
