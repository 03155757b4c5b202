package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kai-dpu/kai/cmd/kai-lab/netlab"
)

const (
	frrZebra = "/usr/lib/frr/zebra"
	frrBgpd  = "/usr/lib/frr/bgpd"
)

// frrVTEP is FRR 8.4 doing EVPN the legacy way: bgpd + zebra over a Linux
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
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return nil, err
	}
	// zebra and bgpd drop to the frr user and write here.
	if _, err := netlab.Sh("chown", "frr:frr", f.dir); err != nil {
		return nil, err
	}
	for _, c := range [][]string{
		{"ip", "link", "add", "br-blue", "type", "bridge"},
		{"ip", "link", "set", "br-blue", "addrgenmode", "none"},
		{"ip", "link", "add", "vx-blue", "type", "vxlan", "id", fmt.Sprint(vni), "local", frrAddr, "dstport", "4789", "nolearning"},
		{"ip", "link", "set", "vx-blue", "master", "br-blue", "addrgenmode", "none"},
		{"bridge", "link", "set", "dev", "vx-blue", "learning", "off", "neigh_suppress", "off"},
		{"ip", "link", "set", "vx-blue", "up"},
		{"ip", "link", "set", "br-blue", "up"},
	} {
		if _, err := t.nl.In(t.frr, c...); err != nil {
			return nil, err
		}
	}
	conf := filepath.Join(f.dir, "frr.conf")
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
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	zconf := filepath.Join(f.dir, "zebra.conf")
	if err := os.WriteFile(zconf, []byte("hostname bench-frr\nlog file "+filepath.Join(f.dir, "zebra.log")+"\n"), 0o644); err != nil {
		return nil, err
	}
	zsock := filepath.Join(f.dir, "zserv.api")
	z, err := t.nl.Start(t.frr, fmt.Sprintf("frr%d-zebra", round), nil, frrZebra, "-f", zconf, "-i", filepath.Join(f.dir, "zebra.pid"),
		"-z", zsock, "-u", "frr", "-g", "frr", "--vty_socket", f.dir)
	if err != nil {
		return nil, err
	}
	f.procs = append(f.procs, z)
	if err := waitPath(zsock, z, 10*time.Second); err != nil {
		return f, fmt.Errorf("%w (zebra runs as the frr user: the state dir and its parents must be traversable by it)", err)
	}
	b, err := t.nl.Start(t.frr, fmt.Sprintf("frr%d-bgpd", round), nil, frrBgpd, "-f", conf, "-i", filepath.Join(f.dir, "bgpd.pid"),
		"-z", zsock, "-u", "frr", "-g", "frr", "--vty_socket", f.dir)
	if err != nil {
		return f, err
	}
	f.procs = append(f.procs, b)
	return f, waitPath(filepath.Join(f.dir, "bgpd.vty"), b, 10*time.Second)
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

func waitPath(path string, p *netlab.Proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if p.Exited() {
			return fmt.Errorf("%s exited:\n%s", p.Name, p.Tail(2000))
		}
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s did not appear", p.Name, path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
