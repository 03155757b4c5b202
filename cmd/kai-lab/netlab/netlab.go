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
	// resumed are processes another kai-lab process started (Resume):
	// kept in the record for Teardown, but not controllable from here.
	resumed []ProcRecord
	// OnChange is called (with the lab unlocked) after every namespace or
	// process is created, so a record of them can be persisted and a
	// crashed run torn down later.
	OnChange func(Record)
}

// Record lists what a lab created, for tearing it down from another process.
type Record struct {
	Namespaces []string     `json:"namespaces"`
	Procs      []ProcRecord `json:"procs"`
}

// ProcRecord identifies a started process: by pid, checked against its
// command line so a recycled pid is never killed.
type ProcRecord struct {
	Name string `json:"name"`
	Pid  int    `json:"pid"`
	Exe  string `json:"exe"`
}

// Record returns what the lab created so far.
func (l *Lab) Record() Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := Record{Namespaces: slices.Clone(l.nss), Procs: slices.Clone(l.resumed)}
	for _, p := range l.procs {
		r.Procs = append(r.Procs, ProcRecord{Name: p.Name, Pid: p.Pid(), Exe: p.exe})
	}
	return r
}

func (l *Lab) changed() {
	if l.OnChange != nil {
		l.OnChange(l.Record())
	}
}

// Teardown stops the recorded processes (newest first, only if the pid still
// runs the recorded program) and deletes the recorded namespaces. It is
// idempotent: what is already gone is skipped.
func Teardown(r Record) error {
	for i := len(r.Procs) - 1; i >= 0; i-- {
		p := r.Procs[i]
		if !Running(p) {
			continue
		}
		_ = syscall.Kill(p.Pid, syscall.SIGTERM)
		deadline := time.Now().Add(5 * time.Second)
		for Running(p) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if Running(p) {
			_ = syscall.Kill(p.Pid, syscall.SIGKILL)
		}
	}
	var errs []error
	for i := len(r.Namespaces) - 1; i >= 0; i-- {
		ns := r.Namespaces[i]
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if _, err := Sh("ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// runs reports whether pid is alive and still runs exe (not a zombie).
// Running reports whether the recorded process is alive (not a zombie)
// and still the program that was started under that pid.
func Running(p ProcRecord) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid))
	if err != nil {
		return false
	}
	if _, rest, ok := strings.Cut(string(stat), ") "); ok && strings.HasPrefix(rest, "Z") {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.Pid))
	if err != nil {
		return false
	}
	return strings.Contains(string(cmdline), p.Exe)
}

// New creates a lab whose namespaces are named Prefix+"-"+name and whose
// files live in dir.
func New(prefix, dir string) (*Lab, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab dir: %w", err)
	}
	return &Lab{Prefix: prefix, Dir: dir}, nil
}

// Resume continues a lab another process created from its record: new
// namespaces and processes are added to it, the recorded ones are kept.
func Resume(prefix, dir string, r Record) *Lab {
	return &Lab{Prefix: prefix, Dir: dir, nss: slices.Clone(r.Namespaces), resumed: slices.Clone(r.Procs)}
}

// DelNS deletes a namespace this lab created (with every interface in it)
// and drops it from the record.
func (l *Lab) DelNS(ns string) error {
	l.mu.Lock()
	i := slices.Index(l.nss, ns)
	l.mu.Unlock()
	if i < 0 {
		return fmt.Errorf("namespace %s is not part of this lab", ns)
	}
	if _, err := Sh("ip", "netns", "del", ns); err != nil {
		return err
	}
	l.mu.Lock()
	l.nss = slices.DeleteFunc(l.nss, func(n string) bool { return n == ns })
	l.mu.Unlock()
	l.changed()
	return nil
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
	l.changed()
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
	exe  string
	cmd  *exec.Cmd
	done chan struct{}
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
	exe := filepath.Base(args[0])
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
	p := &Proc{Name: name, Log: logPath, exe: exe, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // the exit status is in the log; Exited reports the end
		_ = f.Close()
		close(p.done)
	}()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	l.changed()
	return p, nil
}

// Proc returns the newest process started under name, or nil.
func (l *Lab) Proc(name string) *Proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.procs) - 1; i >= 0; i-- {
		if l.procs[i].Name == name {
			return l.procs[i]
		}
	}
	return nil
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

// WaitFile waits until path exists (a socket or pidfile a daemon creates).
func WaitFile(path string, timeout time.Duration) error {
	return waitFile(path, timeout, func() error { return nil })
}

// WaitFile waits until path exists, and fails at once if p exits first.
func (p *Proc) WaitFile(path string, timeout time.Duration) error {
	return waitFile(path, timeout, func() error {
		if p.Exited() {
			return fmt.Errorf("%s exited:\n%s", p.Name, p.Tail(2000))
		}
		return nil
	})
}

func waitFile(path string, timeout time.Duration, alive func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := alive(); err != nil {
			return err
		}
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %s", path, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
