package lab_test

// Interop with FRR 8.4 (Debian's frr): FRR as the fabric's route reflector,
// plus a "legacy" server doing EVPN on the host with FRR (bgpd + zebra) and
// a Linux bridge/VXLAN VTEP. Pods behind Kai DPUs and behind the FRR VTEP
// must reach each other both ways, BUM included (ingress replication), and
// each side must accept the other's routes. Needs root and
// hack/install-prereqs.sh.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
	"github.com/kai-dpu/kai/cmd/kai-lab/lab"
	"github.com/kai-dpu/kai/cmd/kai-lab/labtest"
)

func TestFRRInterop(t *testing.T) {
	labtest.RequirePrivileged(t, "vtysh")
	dir := labtest.TraversableTempDir(t, "kai-frr-interop-")
	bin := filepath.Join(dir, "bin")
	labtest.BuildBinaries(t, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Servers: 2, PodsPerServer: 2, LegacyServers: 1, Fabric: lab.FabricFRR,
		BinDir: bin, StateDir: filepath.Join(dir, "lab"), Prefix: fmt.Sprintf("kfi%d", os.Getpid()%100000)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})

	t.Run("ping matrix across Kai and FRR VTEPs", func(t *testing.T) {
		table, ok := lab.FormatMatrix(l.Pods, l.PingMatrix(ctx))
		if !ok {
			t.Fatalf("ping matrix:\n%s", table)
		}
	})
	t.Run("FRR accepts Kai's routes", func(t *testing.T) {
		out, err := l.LegacyVtysh("legacy1", "show bgp l2vpn evpn route type macip json")
		if err != nil {
			t.Fatal(err)
		}
		type path struct {
			Valid    bool                    `json:"valid"`
			Best     bool                    `json:"bestpath"`
			ExtComm  struct{ String string } `json:"extendedCommunity"`
			Nexthops []struct{ IP string }   `json:"nexthops"`
		}
		var table map[string]json.RawMessage
		if err := json.Unmarshal([]byte(out), &table); err != nil {
			t.Fatalf("FRR JSON: %v", err)
		}
		found := map[string]path{}
		for _, raw := range table {
			var byPrefix map[string]json.RawMessage
			if json.Unmarshal(raw, &byPrefix) != nil {
				continue
			}
			for pfx, pr := range byPrefix {
				var dest struct{ Paths [][]path }
				if json.Unmarshal(pr, &dest) != nil || len(dest.Paths) == 0 || len(dest.Paths[0]) == 0 {
					continue
				}
				found[pfx] = dest.Paths[0][0]
			}
		}
		vni := map[string]int{"blue": 10100, "red": 10200}
		for _, p := range l.Pods {
			if p.Legacy {
				continue
			}
			key := fmt.Sprintf("[2]:[0]:[48]:[%s]", p.MAC)
			got, ok := found[key]
			if !ok {
				t.Errorf("FRR has no type-2 route for Kai pod %s (%s)", p.Name, p.MAC)
				continue
			}
			vtep := l.Server(p.Server).Addr
			if !got.Valid || !got.Best || !strings.Contains(got.ExtComm.String, fmt.Sprintf("RT:%d:%d", lab.ASN, vni[p.Network])) ||
				!strings.Contains(got.ExtComm.String, "ET:8") || len(got.Nexthops) == 0 || got.Nexthops[0].IP != vtep {
				t.Errorf("FRR's view of %s: %+v; want valid, best, RT %d:%d, ET:8 (VXLAN), next hop %s", p.Name, got, lab.ASN, vni[p.Network], vtep)
			}
		}
		// Type-3 with PMSI ingress replication puts both DPUs in FRR's flood list.
		for name, v := range vni {
			out, err := l.LegacyVtysh("legacy1", fmt.Sprintf("show evpn vni %d json", v))
			if err != nil {
				t.Fatal(err)
			}
			var info struct {
				RemoteVteps []string `json:"numRemoteVteps"`
			}
			if err := json.Unmarshal([]byte(out), &info); err != nil {
				t.Fatalf("FRR JSON: %v\n%s", err, out)
			}
			for _, srv := range l.Servers {
				if !slices.Contains(info.RemoteVteps, srv.Addr) {
					t.Errorf("network %s: FRR's flood list %v lacks DPU %s", name, info.RemoteVteps, srv.Addr)
				}
			}
		}
	})
	t.Run("Kai learns FRR's routes", func(t *testing.T) {
		conn, err := lab.Dial(&l.Servers[0])
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		rs, err := kaiv1.NewInspectClient(conn).ListRoutes(ctx, &kaiv1.ListRoutesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		legacyVTEP := l.Legacy[0].Addr
		// FRR may add MAC+IP routes once it has seen ARP: collect MACs.
		macs := map[string]bool{}
		imet := 0
		for _, r := range rs.GetRoutes() {
			if r.GetVtep() != legacyVTEP {
				continue
			}
			switch r.GetType() {
			case "mac-ip":
				if !r.GetWinner() {
					t.Errorf("FRR's route %v is not the winner", r)
				}
				macs[r.GetMac()] = true
			case "inclusive-multicast":
				imet++
			}
		}
		// FRR may also advertise its bridges' own MACs; the pods' must be there.
		for _, p := range l.Pods {
			if p.Legacy && !macs[p.MAC] {
				t.Errorf("Kai did not learn legacy pod %s (%s) from the FRR VTEP", p.Name, p.MAC)
			}
		}
		if imet != 2 {
			t.Fatalf("Kai learned %d type-3 routes from the FRR VTEP, want 2 (blue, red):\n%v", imet, rs)
		}
	})
}
