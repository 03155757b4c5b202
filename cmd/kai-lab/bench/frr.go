package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/kai-dpu/kai/cmd/kai-lab/netlab"
)

// frrVTEP is FRR (Debian's, 8.4 here) doing EVPN the legacy way: bgpd + zebra over a Linux
// bridge and VXLAN device; zebra installs remote MACs into the kernel FDB.
type frrVTEP struct {
	t     *topo
	dir   string
	procs []*netlab.Proc
}

// startFRR creates the VTEP devices (fresh, so the FDB is empty) and starts
// zebra then bgpd, peering with the injector.
func (t *topo) startFRR(round int) (*frrVTEP, error) {
	f := &frrVTEP{t: t, dir: filepath.Join(t.dir, fmt.Sprintf("frr%d", round))}
	if err := t.nl.LinuxVTEP(t.frr, "br-blue", "vx-blue", vni, frrAddr); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`frr defaults datacenter
hostname bench-frr
log file %s
!
router bgp %d
 bgp router-id %s
 no bgp default ipv4-unicast
 neighbor %s remote-as %d
 neighbor %s timers connect 1
 !
 address-family l2vpn evpn
  neighbor %s activate
  advertise-all-vni
 exit-address-family
!
`, filepath.Join(f.dir, "frr.log"), asn, frrAddr, injAddr, asn, injAddr, injAddr)
	var err error
	f.procs, err = t.nl.StartFRR(t.frr, fmt.Sprintf("frr%d", round), f.dir, cfg)
	return f, err
}

// stop ends bgpd and zebra and removes the devices (and their FDB).
func (f *frrVTEP) stop() {
	for i := len(f.procs) - 1; i >= 0; i-- {
		f.procs[i].Stop(10 * time.Second)
	}
	for _, dev := range []string{"vx-blue", "br-blue"} {
		_, _ = f.t.nl.In(f.t.frr, "ip", "link", "del", dev)
	}
}

// fdbMACs counts the remote MACs zebra installed on the VXLAN device.
func (f *frrVTEP) fdbMACs(ctx context.Context) (int, error) {
	out, err := f.t.nl.In(f.t.frr, "bridge", "fdb", "show", "dev", "vx-blue")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, " dst ") && !strings.HasPrefix(line, "00:00:00:00:00:00") {
			n++
		}
	}
	return n, ctx.Err()
}

// frrVersion is the installed bgpd's version ("8.4.4"), or "?".
func frrVersion() string {
	out, err := netlab.Sh(netlab.FRRBgpd, "--version")
	if v, ok := strings.CutPrefix(strings.SplitN(out, "\n", 2)[0], "bgpd version "); err == nil && ok {
		return strings.TrimSpace(v)
	}
	return "?"
}
