package netlab

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// OVS is an ovsdb-server + ovs-vswitchd pair of our own inside a namespace,
// with its own database, run and log directories.
type OVS struct {
	NS   string
	Dir  string
	lab  *Lab
	name string
}

// StartOVS creates a fresh database and starts both daemons in ns.
func (l *Lab) StartOVS(ns, name string) (*OVS, error) {
	o := &OVS{NS: ns, Dir: filepath.Join(l.Dir, name), lab: l, name: name}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := Sh("ovsdb-tool", "create", filepath.Join(o.Dir, "conf.db"), "/usr/share/openvswitch/vswitch.ovsschema"); err != nil {
		return nil, err
	}
	if _, err := l.Start(ns, name+"-ovsdb", o.env(), "ovsdb-server", filepath.Join(o.Dir, "conf.db"),
		"--remote=punix:"+o.DBSocket(), "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
		"--unixctl="+filepath.Join(o.Dir, "ovsdb-server.ctl"), "--pidfile="+filepath.Join(o.Dir, "ovsdb-server.pid"),
		"--log-file="+filepath.Join(o.Dir, "ovsdb-server.log")); err != nil {
		return nil, err
	}
	if err := WaitFile(o.DBSocket(), 10*time.Second); err != nil {
		return nil, fmt.Errorf("ovsdb-server in %s: %w", ns, err)
	}
	if _, err := o.Vsctl("--no-wait", "init"); err != nil {
		return nil, err
	}
	if err := o.StartVswitchd(); err != nil {
		return nil, err
	}
	return o, nil
}

// StartVswitchd (re)starts ovs-vswitchd, e.g. after StopVswitchd.
func (o *OVS) StartVswitchd() error {
	_, err := o.lab.Start(o.NS, o.name+"-vswitchd", o.env(), "ovs-vswitchd", "unix:"+o.DBSocket(),
		"--unixctl="+filepath.Join(o.Dir, "ovs-vswitchd.ctl"), "--pidfile="+filepath.Join(o.Dir, "ovs-vswitchd.pid"),
		"--log-file="+filepath.Join(o.Dir, "ovs-vswitchd.log"))
	if err != nil {
		return err
	}
	_, err = o.Vsctl("--timeout=10", "wait-until", "Open_vSwitch", ".", "cur_cfg>=0")
	return err
}

// StopVswitchd stops ovs-vswitchd (its flows are lost; OVSDB stays).
func (o *OVS) StopVswitchd() {
	if p := o.lab.Proc(o.name + "-vswitchd"); p != nil {
		p.Stop(10 * time.Second)
	}
}

// OVS returns a handle on an instance this lab started with StartOVS.
func (l *Lab) OVS(ns, name string) *OVS {
	return &OVS{NS: ns, Dir: filepath.Join(l.Dir, name), lab: l, name: name}
}

func (o *OVS) env() []string {
	return []string{"OVS_RUNDIR=" + o.Dir, "OVS_DBDIR=" + o.Dir, "OVS_LOGDIR=" + o.Dir}
}

// DBSocket is the OVSDB unix socket.
func (o *OVS) DBSocket() string { return filepath.Join(o.Dir, "db.sock") }

// RunDir holds the bridges' .mgmt sockets.
func (o *OVS) RunDir() string { return o.Dir }

// Vsctl runs ovs-vsctl against this instance.
func (o *OVS) Vsctl(args ...string) (string, error) {
	return Sh(append([]string{"ovs-vsctl", "--db=unix:" + o.DBSocket()}, args...)...)
}

// Ofctl runs ovs-ofctl (OpenFlow 1.5) against a bridge of this instance.
func (o *OVS) Ofctl(cmd, bridge string, args ...string) (string, error) {
	target := "unix:" + filepath.Join(o.Dir, bridge+".mgmt")
	return Sh(append([]string{"ovs-ofctl", "-O", "OpenFlow15", "--no-names", cmd, target}, args...)...)
}

// Underlay puts the namespace's uplink into a userspace-datapath bridge
// br-phy that carries the VTEP address, the way OVS's userspace tunnelling
// needs it. On a real DPU the kernel datapath and the uplink netdev do this.
func (o *OVS) Underlay(uplink, cidr, hwaddr string, mtu int) error {
	if _, err := o.Vsctl("add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev",
		"other_config:hwaddr="+hwaddr, "--", "add-port", "br-phy", uplink,
		"--", "set", "interface", uplink, fmt.Sprintf("mtu_request=%d", mtu),
		"--", "set", "interface", "br-phy", fmt.Sprintf("mtu_request=%d", mtu)); err != nil {
		return err
	}
	if err := waitLink(o.lab, o.NS, "br-phy", 10*time.Second); err != nil {
		return err
	}
	// The kernel hands the tap partially checksummed TCP segments that the
	// userspace datapath forwards as they are; the BGP session would stall.
	if _, err := o.lab.In(o.NS, "ethtool", "-K", "br-phy", "tx", "off"); err != nil {
		return err
	}
	if _, err := o.lab.In(o.NS, "ip", "addr", "add", cidr, "dev", "br-phy"); err != nil {
		return err
	}
	_, err := o.lab.In(o.NS, "ip", "link", "set", "br-phy", "up")
	return err
}

func waitLink(l *Lab, ns, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := l.In(ns, "ip", "link", "show", name); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("link %s did not appear in %s within %s", name, ns, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
