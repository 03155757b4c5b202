package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kai-dpu/kai/cmd/kai-lab/netlab"
)

// Fabric route reflectors the lab can run.
const (
	FabricGoBGP = "gobgp"
	FabricFRR   = "frr"
)

// startReflector starts route reflector n (1 or 2) at addr. The first
// lives in the fabric namespace on the bridge itself, the second in its own
// namespace with a veth into the bridge, so each has its own TCP stack and
// a session reset touches one only.
func startReflector(nl *netlab.Lab, fab string, n int, addr string, o Options, clients []string) error {
	ns := fab
	if n > 1 {
		var err error
		if ns, err = nl.AddNS(fmt.Sprintf("rr%d", n)); err != nil {
			return err
		}
		fabEnd := fmt.Sprintf("rr%d", n)
		if err := nl.Veth(ns, "eth0", fab, fabEnd, underMTU); err != nil {
			return err
		}
		for _, args := range [][]string{
			{"ip", "link", "set", fabEnd, "master", "br0"},
			{"ethtool", "-K", fabEnd, "tx", "off"},
		} {
			if _, err := nl.In(fab, args...); err != nil {
				return err
			}
		}
		if _, err := nl.In(ns, "ip", "addr", "add", addr+"/24", "dev", "eth0"); err != nil {
			return err
		}
	}
	name := "route-reflector"
	if n > 1 {
		name = fmt.Sprintf("route-reflector%d", n)
	}
	if o.Fabric == FabricFRR {
		dir := filepath.Join(o.StateDir, "frr")
		if n > 1 {
			dir = filepath.Join(o.StateDir, name+"-frr")
		}
		return startFRRReflector(nl, ns, name, dir, addr, clients)
	}
	_, err := nl.Start(ns, name, nil, filepath.Join(o.BinDir, "kai-lab"), "reflector",
		"--router-id", addr, "--asn", fmt.Sprint(ASN), "--clients", strings.Join(clients, ","))
	return err
}

// startFRRReflector runs FRR's bgpd (Debian's frr package) as a route
// reflector: iBGP, l2vpn-evpn, every VTEP a route-reflector client,
// graceful restart (FRR is a helper by default). No zebra: the reflector
// forwards nothing.
func startFRRReflector(nl *netlab.Lab, ns, name, fdir, addr string, clients []string) error {
	if _, err := os.Stat(netlab.FRRBgpd); err != nil {
		return fmt.Errorf("--fabric frr needs FRR (%s): apt-get install frr (hack/install-prereqs.sh does)", netlab.FRRBgpd)
	}
	if err := os.MkdirAll(fdir, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, `frr defaults datacenter
hostname %s
log file %s
!
router bgp %d
 bgp router-id %s
 bgp cluster-id %s
 no bgp default ipv4-unicast
 bgp graceful-restart
 neighbor dpus peer-group
 neighbor dpus remote-as %d
 neighbor dpus passive
`, name, filepath.Join(fdir, "bgpd.log"), ASN, addr, addr, ASN)
	for _, c := range clients {
		fmt.Fprintf(&b, " neighbor %s peer-group dpus\n", c)
	}
	b.WriteString(` !
 address-family l2vpn evpn
  neighbor dpus activate
  neighbor dpus route-reflector-client
 exit-address-family
!
`)
	conf := filepath.Join(fdir, "bgpd.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return err
	}
	p, err := nl.Start(ns, name, nil, netlab.FRRBgpd, "-f", conf, "-i", filepath.Join(fdir, "bgpd.pid"),
		"-Z", "-S", "--vty_socket", fdir)
	if err != nil {
		return err
	}
	return p.WaitFile(filepath.Join(fdir, "bgpd.vty"), 10*time.Second)
}
