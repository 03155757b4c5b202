package main

// Runs the kai-lab binary as a user would: up, status, exec, ping-matrix,
// up again (an error), down, down again; then checks nothing is left.
// Needs root and the lab's packages (hack/install-prereqs.sh).

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kai-dpu/kai/cmd/kai-lab/labtest"
	"github.com/kai-dpu/kai/cmd/kai-lab/netlab"
)

func TestLabUpPingMatrixDown(t *testing.T) {
	for _, fabric := range []string{"gobgp", "frr"} {
		t.Run(fabric, func(t *testing.T) { labUpPingMatrixDown(t, fabric) })
	}
}

func labUpPingMatrixDown(t *testing.T, fabric string) {
	labtest.RequirePrivileged(t, "vtysh")
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	labtest.BuildBinaries(t, bin)
	state := filepath.Join(dir, "lab")
	prefix := fmt.Sprintf("kle%d%s", os.Getpid()%100000, fabric[:1])
	labCmd := func(args ...string) (string, int) {
		out, err := exec.Command(filepath.Join(bin, "kai-lab"), args...).CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	t.Cleanup(func() { labCmd("down", "--state-dir", state) })

	out, code := labCmd("up", "--servers", "2", "--pods-per-server", "2", "--state-dir", state, "--prefix", prefix, "--fabric", fabric)
	if code != 0 {
		t.Fatalf("up: exit %d\n%s", code, out)
	}
	var rec struct {
		Record struct {
			Namespaces []string            `json:"namespaces"`
			Procs      []netlab.ProcRecord `json:"procs"`
		} `json:"record"`
	}
	data, err := os.ReadFile(filepath.Join(state, "lab.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	// fabric + 2 x (DPU, host) + 4 pods; the reflector + 2 x (ovsdb-server,
	// ovs-vswitchd, kai-dpu, kai-host).
	if len(rec.Record.Namespaces) != 9 || len(rec.Record.Procs) != 9 {
		t.Fatalf("lab record: %d namespaces, %d processes; want 9 and 9", len(rec.Record.Namespaces), len(rec.Record.Procs))
	}

	if out, code := labCmd("up", "--state-dir", state, "--prefix", prefix); code == 0 || !strings.Contains(out, "already running") {
		t.Fatalf("up on a running lab: exit %d, want an error saying so:\n%s", code, out)
	}
	if out, code := labCmd("status", "--state-dir", state); code != 0 || strings.Count(out, "READY") != 4 || strings.Count(out, "ESTABLISHED") != 2 {
		t.Fatalf("status: exit %d, want 4 READY attachments and 2 ESTABLISHED sessions:\n%s", code, out)
	}
	if out, code := labCmd("exec", "--state-dir", state, "pod1-1", "--", "ip", "-br", "addr", "show", "eth0"); code != 0 || !strings.Contains(out, "100.64.1.1/16") {
		t.Fatalf("exec: exit %d:\n%s", code, out)
	}
	if out, code := labCmd("ping-matrix", "--state-dir", state); code != 0 || strings.Count(out, " ok ") < 2 || strings.Contains(out, "LEAK") || strings.Contains(out, "FAIL") {
		t.Fatalf("ping-matrix: exit %d:\n%s", code, out)
	}
	if fabric == "frr" {
		// FRR reflects each DPU's 3 type-3 (blue, red, green) and 4 type-2
		// routes (2 pods x MAC and MAC+IP).
		out, err := exec.Command("ip", "netns", "exec", prefix+"-fabric", "vtysh", "--vty_socket", filepath.Join(state, "frr"),
			"-c", "show bgp l2vpn evpn summary json").CombinedOutput()
		if err != nil {
			t.Fatalf("vtysh: %v\n%s", err, out)
		}
		var sum struct {
			Peers map[string]struct {
				State  string `json:"state"`
				PfxRcd int    `json:"pfxRcd"`
			} `json:"peers"`
		}
		if err := json.Unmarshal(out, &sum); err != nil {
			t.Fatalf("FRR summary: %v\n%s", err, out)
		}
		for _, addr := range []string{"198.18.0.11", "198.18.0.12"} {
			if p := sum.Peers[addr]; p.State != "Established" || p.PfxRcd != 7 {
				t.Errorf("FRR's session with DPU %s: %+v, want Established with 7 routes", addr, p)
			}
		}
	}
	if out, code := labCmd("down", "--state-dir", state); code != 0 {
		t.Fatalf("down: exit %d\n%s", code, out)
	}
	if out, code := labCmd("down", "--state-dir", state); code != 0 || !strings.Contains(out, "no lab running") {
		t.Fatalf("second down: exit %d\n%s", code, out)
	}
	for _, ns := range rec.Record.Namespaces {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); err == nil {
			t.Errorf("namespace %s left behind", ns)
		}
	}
	for _, p := range rec.Record.Procs {
		if netlab.Running(p) {
			t.Errorf("process %s (pid %d) left running", p.Exe, p.Pid)
		}
	}
	if _, err := os.Stat(state); err == nil {
		t.Errorf("state dir %s left behind", state)
	}
}
