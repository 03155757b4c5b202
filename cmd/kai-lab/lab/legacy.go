package lab

import (
	"fmt"
	"path/filepath"

	"github.com/kai-dpu/kai/cmd/kai-lab/netlab"
)

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
func buildLegacy(nl *netlab.Lab, s *State, fab string, n, pods int) error {
	lg := Legacy{Name: fmt.Sprintf("legacy%d", n), Addr: fmt.Sprintf("198.18.0.%d", 100+n)}
	ns, err := nl.AddNS(lg.Name)
	if err != nil {
		return err
	}
	lg.NS = ns
	lg.Dir = filepath.Join(s.Dir, lg.Name+"-frr")
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
		if err := nl.LinuxVTEP(ns, "br-"+net.Name, "vx-"+net.Name, net.VNI, lg.Addr); err != nil {
			return err
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
		p.HostLink = fmt.Sprintf("lp%d-%d", n, j+1)
		if err := linkLegacyPod(nl, ns, p); err != nil {
			return err
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
	_, err := nl.StartFRR(lg.NS, lg.Name, lg.Dir, cfg)
	return err
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
			announce(p)
		}
	}
}

// linkLegacyPod plugs a legacy pod's namespace into its server's bridge
// (server namespace ns) through the veth p.HostLink, with its MAC and IP.
func linkLegacyPod(nl *netlab.Lab, ns string, p Pod) error {
	if err := nl.Veth(ns, p.HostLink, p.NS, "eth0", 1500); err != nil {
		return err
	}
	if _, err := nl.In(ns, "ip", "link", "set", p.HostLink, "master", "br-"+p.Network); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"ip", "link", "set", "eth0", "address", p.MAC},
		{"ip", "addr", "add", p.IP + "/16", "dev", "eth0"},
	} {
		if _, err := nl.In(p.NS, args...); err != nil {
			return err
		}
	}
	return nil
}

// announce makes a legacy pod send an ARP request (a legacy VTEP learns
// local MACs from the data plane).
func announce(p Pod) {
	_, _ = netlab.Sh("ip", "netns", "exec", p.NS, "ping", "-c", "1", "-W", "1", "100.64.255.254")
}
