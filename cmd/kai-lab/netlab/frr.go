package netlab

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Daemons of Debian's frr package.
const (
	FRRZebra = "/usr/lib/frr/zebra"
	FRRBgpd  = "/usr/lib/frr/bgpd"
)

// LinuxVTEP creates, in ns, a bridge with a VXLAN device as its port, set
// up the way FRR documents an EVPN VTEP: no learning on the VXLAN port;
// zebra installs the remote MACs and the flood list from BGP.
func (l *Lab) LinuxVTEP(ns, bridge, vxlan string, vni uint32, local string) error {
	for _, args := range [][]string{
		{"ip", "link", "add", bridge, "type", "bridge"},
		{"ip", "link", "set", bridge, "addrgenmode", "none"},
		{"ip", "link", "add", vxlan, "type", "vxlan", "id", fmt.Sprint(vni), "local", local, "dstport", "4789", "nolearning"},
		{"ip", "link", "set", vxlan, "master", bridge, "addrgenmode", "none"},
		{"bridge", "link", "set", "dev", vxlan, "learning", "off", "neigh_suppress", "off"},
		{"ip", "link", "set", vxlan, "up"},
		{"ip", "link", "set", bridge, "up"},
	} {
		if _, err := l.In(ns, args...); err != nil {
			return err
		}
	}
	return nil
}

// StartFRR runs FRR in ns: zebra, then bgpd with bgpdConf, as the frr
// user, with sockets, pid files and logs in dir (created and handed to
// that user; its parents must be traversable). Process names start with
// name. It returns the processes it started, also on failure.
func (l *Lab) StartFRR(ns, name, dir, bgpdConf string) ([]*Proc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := Sh("chown", "frr:frr", dir); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "frr.conf")
	if err := os.WriteFile(conf, []byte(bgpdConf), 0o644); err != nil {
		return nil, err
	}
	zconf := filepath.Join(dir, "zebra.conf")
	if err := os.WriteFile(zconf, []byte("hostname "+name+"\nlog file "+filepath.Join(dir, "zebra.log")+"\n"), 0o644); err != nil {
		return nil, err
	}
	zsock := filepath.Join(dir, "zserv.api")
	var procs []*Proc
	for _, d := range []struct{ bin, conf, ready string }{
		{FRRZebra, zconf, zsock},
		{FRRBgpd, conf, filepath.Join(dir, "bgpd.vty")},
	} {
		p, err := l.Start(ns, name+"-"+filepath.Base(d.bin), nil, d.bin, "-f", d.conf, "-i", filepath.Join(dir, filepath.Base(d.bin)+".pid"),
			"-z", zsock, "-u", "frr", "-g", "frr", "--vty_socket", dir)
		if err != nil {
			return procs, err
		}
		procs = append(procs, p)
		if err := p.WaitFile(d.ready, 10*time.Second); err != nil {
			return procs, fmt.Errorf("%w (FRR runs as the frr user: %s and its parents must be traversable by it)", err, dir)
		}
	}
	return procs, nil
}
