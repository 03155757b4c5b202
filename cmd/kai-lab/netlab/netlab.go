// Package netlab builds throw-away topologies out of network namespaces,
// veth pairs, per-namespace OVS instances and processes, for the lab and
// the integration tests. It only creates namespaces with its own prefix,
// only addresses inside them, and only stops processes it started (by
// pid). Close undoes everything, also after a failure half-way.
package netlab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Lab owns namespaces and processes.
type Lab struct {
	Prefix string
	Dir    string

	mu    sync.Mutex
	nss   []string
	procs []*Proc
}

// New creates a lab whose namespaces are named Prefix+"-"+name and whose
// files live in dir.
func New(prefix, dir string) (*Lab, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab dir: %w", err)
	}
	return &Lab{Prefix: prefix, Dir: dir}, nil
}

// NS returns the full name of a lab namespace.
func (l *Lab) NS(name string) string { return l.Prefix + "-" + name }

// Sh runs a command and returns its combined output.
func Sh(args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// AddNS creates a namespace with loopback up.
func (l *Lab) AddNS(name string) (string, error) {
	ns := l.NS(name)
	if _, err := Sh("ip", "netns", "add", ns); err != nil {
		return "", err
	}
	l.mu.Lock()
	l.nss = append(l.nss, ns)
	l.mu.Unlock()
	if _, err := l.In(ns, "ip", "link", "set", "lo", "up"); err != nil {
		return "", err
	}
	return ns, nil
}

// In runs a command inside a namespace.
func (l *Lab) In(ns string, args ...string) (string, error) {
	return Sh(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// Veth creates a veth pair with one end in each namespace (never in the
// root namespace), sets the MTU and brings both ends up.
func (l *Lab) Veth(nsA, nameA, nsB, nameB string, mtu int) error {
	if _, err := Sh("ip", "link", "add", nameA, "netns", nsA, "mtu", fmt.Sprint(mtu), "type", "veth",
		"peer", "name", nameB, "netns", nsB, "mtu", fmt.Sprint(mtu)); err != nil {
		return err
	}
	if _, err := l.In(nsA, "ip", "link", "set", nameA, "up"); err != nil {
		return err
	}
	_, err := l.In(nsB, "ip", "link", "set", nameB, "up")
	return err
}

// Proc is a process the lab started.
type Proc struct {
	Name string
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Pid of the process.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Start runs args inside ns (or in the current namespace when ns is empty)
// with output to Dir/name.log.
func (l *Lab) Start(ns, name string, env []string, args ...string) (*Proc, error) {
	logPath := filepath.Join(l.Dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log for %s: %w", name, err)
	}
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	// Own process group: a signal to the test does not hit it, and Stop
	// reaches only this process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p, nil
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM, waits up to timeout, then SIGKILLs. Idempotent.
func (p *Proc) Stop(timeout time.Duration) {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Kill ends the process at once (a crash).
func (p *Proc) Kill() {
	if !p.Exited() {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Tail returns the last n bytes of the process log, for failure messages.
func (p *Proc) Tail(n int) string {
	data, _ := os.ReadFile(p.Log)
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}

// Close stops every process (newest first) and deletes every namespace.
func (l *Lab) Close() error {
	l.mu.Lock()
	procs, nss := slices.Clone(l.procs), slices.Clone(l.nss)
	l.procs, l.nss = nil, nil
	l.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop(5 * time.Second)
	}
	var errs []error
	for i := len(nss) - 1; i >= 0; i-- {
		if _, err := Sh("ip", "netns", "del", nss[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
