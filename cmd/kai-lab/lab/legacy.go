package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kai-dpu/kai/cmd/kai-lab/netlab"
)

const frrZebra = "/usr/lib/frr/zebra"

// Legacy is a server doing "EVPN to the host" the way operators did before
// Kai: FRR (bgpd + zebra) on the host, a Linux bridge and VXLAN device per
// network, pods on veths into the bridges. Kai's DPUs and these VTEPs must
// interoperate: type-2/type-3 both ways, ingress replication for BUM.
type Legacy struct {
	Name string `json:"name"`
	NS   string `json:"ns"`
	Addr string `json:"addr"`
	Dir  string `json:"dir"`
}

// buildLegacy creates legacy server n with its pods, and starts zebra and
// bgpd peering with the fabric's route reflector.
func buildLegacy(ctx context.Context, nl *netlab.Lab, s *State, fab string, n, pods int) error {
	lg := Legacy{Name: fmt.Sprintf("legacy%d", n), Addr: fmt.Sprintf("198.18.0.%d", 100+n)}
	ns, err := nl.AddNS(lg.Name)
	if err != nil {
		return err
	}
	lg.NS = ns
	lg.Dir = filepath.Join(s.Dir, lg.Name+"-frr")
	if err := os.MkdirAll(lg.Dir, 0o755); err != nil {
		return err
	}
	// zebra drops to the frr user (Debian's package) and writes here.
	if _, err := netlab.Sh("chown", "frr:frr", lg.Dir); err != nil {
		return err
	}
	fabEnd := "up-" + lg.Name
	if err := nl.Veth(ns, "up0", fab, fabEnd, underMTU); err != nil {
		return err
	}
	in := func(args ...string) error {
		_, err := nl.In(ns, args...)
		return err
	}
	if _, err := nl.In(fab, "ip", "link", "set", fabEnd, "master", "br0"); err != nil {
		return err
	}
	if err := in("ip", "addr", "add", lg.Addr+"/24", "dev", "up0"); err != nil {
		return err
	}
	for _, net := range Networks {
		br, vx := "br-"+net.Name, "vx-"+net.Name
		for _, args := range [][]string{
			{"ip", "link", "add", br, "type", "bridge"},
			{"ip", "link", "set", br, "addrgenmode", "none"},
			{"ip", "link", "add", vx, "type", "vxlan", "id", fmt.Sprint(net.VNI), "local", lg.Addr, "dstport", "4789", "nolearning"},
			{"ip", "link", "set", vx, "master", br, "addrgenmode", "none"},
			// FRR's documented VTEP setup: no flooding of unknown
			// unicast learned from the data plane; zebra installs
			// remote MACs and the flood list from EVPN.
			{"bridge", "link", "set", "dev", vx, "learning", "off", "neigh_suppress", "off"},
			{"ip", "link", "set", vx, "up"},
			{"ip", "link", "set", br, "up"},
		} {
			if err := in(args...); err != nil {
				return err
			}
		}
	}
	for j := range pods {
		p := Pod{
			Name: fmt.Sprintf("lpod%d-%d", n, j+1), Server: lg.Name,
			Network: Networks[j%len(Networks)].Name,
			MAC:     fmt.Sprintf("02:00:00:00:%02x:%02x", 0x80+n, j+1),
			IP:      fmt.Sprintf("100.64.%d.%d", 100+n/16, (n%16)*16+j+1),
			Legacy:  true,
		}
		pns, err := nl.AddNS(p.Name)
		if err != nil {
			return err
		}
		p.NS = pns
		host := fmt.Sprintf("lp%d-%d", n, j+1)
		p.HostLink = host
		if err := nl.Veth(ns, host, pns, "eth0", 1500); err != nil {
			return err
		}
		if err := in("ip", "link", "set", host, "master", "br-"+p.Network); err != nil {
			return err
		}
		for _, args := range [][]string{
			{"ip", "link", "set", "eth0", "address", p.MAC},
			{"ip", "addr", "add", p.IP + "/16", "dev", "eth0"},
		} {
			if _, err := nl.In(pns, args...); err != nil {
				return err
			}
		}
		s.Pods = append(s.Pods, p)
	}
	s.Legacy = append(s.Legacy, lg)
	if err := s.save(); err != nil {
		return err
	}
	return startLegacyFRR(nl, lg, s.RRs)
}

func startLegacyFRR(nl *netlab.Lab, lg Legacy, rrs []string) error {
	members := ""
	for _, rr := range rrs {
		members += fmt.Sprintf(" neighbor %s peer-group rrs\n", rr)
	}
	zsock := filepath.Join(lg.Dir, "zserv.api")
	conf := filepath.Join(lg.Dir, "frr.conf")
	cfg := fmt.Sprintf(`frr defaults datacenter
hostname %s
log file %s
!
router bgp %d
 bgp router-id %s
 no bgp default ipv4-unicast
 bgp graceful-restart
 neighbor rrs peer-group
 neighbor rrs remote-as %d
%s !
 address-family l2vpn evpn
  neighbor rrs activate
  advertise-all-vni
 exit-address-family
!
`, lg.Name, filepath.Join(lg.Dir, "frr.log"), ASN, lg.Addr, ASN, members)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(lg.Dir, "zebra.conf"), []byte("hostname "+lg.Name+"\nlog file "+filepath.Join(lg.Dir, "zebra.log")+"\n"), 0o644); err != nil {
		return err
	}
	z, err := nl.Start(lg.NS, lg.Name+"-zebra", nil, frrZebra, "-f", filepath.Join(lg.Dir, "zebra.conf"), "-i", filepath.Join(lg.Dir, "zebra.pid"),
		"-z", zsock, "-u", "frr", "-g", "frr", "--vty_socket", lg.Dir)
	if err != nil {
		return err
	}
	if err := waitPath(zsock, z, 10*time.Second); err != nil {
		return fmt.Errorf("%w (zebra runs as the frr user: the state dir and its parents must be traversable by it)", err)
	}
	b, err := nl.Start(lg.NS, lg.Name+"-bgpd", nil, frrBgpd, "-f", conf, "-i", filepath.Join(lg.Dir, "bgpd.pid"),
		"-z", zsock, "-u", "frr", "-g", "frr", "--vty_socket", lg.Dir)
	if err != nil {
		return err
	}
	return waitPath(filepath.Join(lg.Dir, "bgpd.vty"), b, 10*time.Second)
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

// LegacyVtysh runs a vtysh command on a legacy server's FRR.
func (s *State) LegacyVtysh(name, cmd string) (string, error) {
	for _, lg := range s.Legacy {
		if lg.Name == name {
			return netlab.Sh("ip", "netns", "exec", lg.NS, "vtysh", "--vty_socket", lg.Dir, "-c", cmd)
		}
	}
	return "", fmt.Errorf("no legacy server %q", name)
}

// announceLegacyPods makes each legacy pod send an ARP request, so its
// bridge learns the MAC and zebra advertises it (a legacy VTEP learns from
// the data plane; Kai learns from the attachment instead).
func (s *State) announceLegacyPods() {
	for _, p := range s.Pods {
		if p.Legacy {
			_, _ = netlab.Sh("ip", "netns", "exec", p.NS, "ping", "-c", "1", "-W", "1", "100.64.255.254")
		}
	}
}
