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

const frrBgpd = "/usr/lib/frr/bgpd"

// startFRRReflector runs FRR's bgpd (Debian's frr package) as the fabric's
// route reflector: iBGP, l2vpn-evpn, every DPU a route-reflector client,
// graceful restart (FRR is a helper by default). No zebra: the reflector
// forwards nothing.
func startFRRReflector(nl *netlab.Lab, fab, dir string, clients []string) error {
	if _, err := os.Stat(frrBgpd); err != nil {
		return fmt.Errorf("--fabric frr needs FRR (%s): apt-get install frr (hack/install-prereqs.sh does)", frrBgpd)
	}
	fdir := filepath.Join(dir, "frr")
	if err := os.MkdirAll(fdir, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, `frr defaults datacenter
hostname fabric-rr
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
`, filepath.Join(fdir, "bgpd.log"), ASN, RRAddr, RRAddr, ASN)
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
	p, err := nl.Start(fab, "route-reflector", nil, frrBgpd, "-f", conf, "-i", filepath.Join(fdir, "bgpd.pid"),
		"-Z", "-S", "--vty_socket", fdir)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p.Exited() {
			return fmt.Errorf("FRR bgpd exited:\n%s", p.Tail(2000))
		}
		if _, err := os.Stat(filepath.Join(fdir, "bgpd.vty")); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("FRR bgpd did not open its vty socket in %s", fdir)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
