// Package store keeps kai-dpu's attachments, host epochs and last known
// remote routes, persisted to disk with atomic writes so a restarted
// kai-dpu knows its state before any host resyncs or BGP reconverges.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"github.com/kai-dpu/kai/dpu/evpn"
	"github.com/kai-dpu/kai/sriov"
)

// Phase of an attachment.
type Phase string

// Phases.
const (
	Pending Phase = "Pending"
	Ready   Phase = "Ready"
	Error   Phase = "Error"
)

// Pod owning an attachment.
type Pod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
}

// Status is what the DPU reports back per attachment.
type Status struct {
	Phase              Phase  `json:"phase"`
	Reason             string `json:"reason,omitempty"`
	ObservedGeneration uint64 `json:"observedGeneration"`
}

// Attachment is a VF attached to a network on behalf of a pod.
type Attachment struct {
	ID      string       `json:"id"`
	Node    string       `json:"node"`
	Pod     Pod          `json:"pod"`
	Network string       `json:"network"`
	VF      sriov.VF     `json:"vf"`
	MAC     string       `json:"mac"`
	IPs     []netip.Addr `json:"ips,omitempty"`
	// Generation is bumped whenever the spec above changes.
	Generation uint64 `json:"generation"`
	// Representor is resolved on the DPU at attach time.
	Representor string `json:"representor"`
	// Seq is the MAC mobility sequence this DPU originates for MAC.
	Seq    uint32 `json:"seq"`
	Status Status `json:"status"`
}

// SameSpec reports whether two attachments ask for the same thing.
func (a Attachment) SameSpec(b Attachment) bool {
	return a.ID == b.ID && a.Node == b.Node && a.Pod == b.Pod && a.Network == b.Network &&
		a.VF == b.VF && a.MAC == b.MAC && slices.Equal(a.IPs, b.IPs)
}

// file is the on-disk form of attachments and epochs.
type file struct {
	Version     int               `json:"version"`
	Attachments []Attachment      `json:"attachments"`
	Epochs      map[string]uint64 `json:"epochs"`
	// Remote is read from files written before learned routes moved to
	// remoteFileName; it is never written.
	Remote []evpn.Route `json:"remote,omitempty"`
}

// remoteFile is the on-disk form of the learned routes.
type remoteFile struct {
	Version int          `json:"version"`
	Remote  []evpn.Route `json:"remote"`
}

// Attachments and learned routes live in separate files: an attach must
// not rewrite 100k learned routes, and a background save of the routes
// must not hold up an attach.
const (
	fileName       = "state.json"
	remoteFileName = "remote-routes.json"
)

// Store is safe for concurrent use.
type Store struct {
	path       string
	remotePath string

	mu     sync.Mutex
	atts   map[string]Attachment
	epochs map[string]uint64

	// rmu guards remote (held only to read or swap it, never across a
	// write, so an attach never waits for a save); wmu serializes the
	// writes of the routes file.
	rmu    sync.Mutex
	wmu    sync.Mutex
	remote []evpn.Route
}

// Open loads the store in dir, creating dir if needed, and reports whether
// any saved state was there (kai-dpu then restarts as a graceful-restart
// speaker). A missing file is an empty store; a corrupt one is an error
// (never silently dropped state).
func Open(dir string) (*Store, bool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create state dir: %w", err)
	}
	s := &Store{
		path: filepath.Join(dir, fileName), remotePath: filepath.Join(dir, remoteFileName),
		atts: map[string]Attachment{}, epochs: map[string]uint64{},
	}
	var f file
	existed, err := readJSON(s.path, &f)
	if err != nil {
		return nil, false, err
	}
	for _, a := range f.Attachments {
		s.atts[a.ID] = a
	}
	for k, v := range f.Epochs {
		s.epochs[k] = v
	}
	var rf remoteFile
	switch ok, err := readJSON(s.remotePath, &rf); {
	case err != nil:
		return nil, false, err
	case ok:
		s.remote, existed = rf.Remote, true
	case len(f.Remote) > 0:
		// Written by a kai-dpu that kept the routes in state.json: move
		// them to their own file before state.json is next rewritten.
		if err := writeJSON(s.remotePath, remoteFile{Version: 1, Remote: f.Remote}); err != nil {
			return nil, false, fmt.Errorf("migrate learned routes: %w", err)
		}
		s.remote = f.Remote
	}
	return s, existed, nil
}

// readJSON decodes path into v; a missing file is (false, nil).
func readJSON(path string, v any) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("state file %s is corrupt: %w", path, err)
	}
	return true, nil
}

// saveLocked writes attachments and epochs atomically.
func (s *Store) saveLocked() error {
	f := file{Version: 1, Epochs: s.epochs}
	for _, a := range s.atts {
		f.Attachments = append(f.Attachments, a)
	}
	sort.Slice(f.Attachments, func(i, j int) bool { return f.Attachments[i].ID < f.Attachments[j].ID })
	return writeJSON(s.path, f)
}

// writeJSON replaces path atomically: temp file, fsync, rename, fsync of
// the directory. Not indented: with 100k learned routes indenting doubles
// the cost.
func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".state-*")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	// Removing the temp file after the rename fails harmlessly.
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("sync state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace state: %w", err)
	}
	// Persist the rename itself.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Get returns an attachment by id.
func (s *Store) Get(id string) (Attachment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.atts[id]
	return a, ok
}

// List returns all attachments (of node, if not empty), sorted by id.
func (s *Store) List(node string) []Attachment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Attachment, 0, len(s.atts))
	for _, a := range s.atts {
		if node == "" || a.Node == node {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Put stores attachments and persists. On a write error nothing changes.
func (s *Store) Put(as ...Attachment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := make(map[string]*Attachment, len(as))
	for _, a := range as {
		if prev, ok := s.atts[a.ID]; ok {
			old[a.ID] = &prev
		} else {
			old[a.ID] = nil
		}
		s.atts[a.ID] = a
	}
	if err := s.saveLocked(); err != nil {
		for id, prev := range old {
			if prev == nil {
				delete(s.atts, id)
			} else {
				s.atts[id] = *prev
			}
		}
		return err
	}
	return nil
}

// Delete removes attachments and persists; unknown ids are ignored.
func (s *Store) Delete(ids ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	removed := map[string]Attachment{}
	for _, id := range ids {
		if a, ok := s.atts[id]; ok {
			removed[id] = a
			delete(s.atts, id)
		}
	}
	if len(removed) == 0 {
		return nil
	}
	if err := s.saveLocked(); err != nil {
		for id, a := range removed {
			s.atts[id] = a
		}
		return err
	}
	return nil
}

// SetStatus updates a status in memory (status is derived, not persisted
// eagerly) and reports whether it changed.
func (s *Store) SetStatus(id string, st Status) (Attachment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.atts[id]
	if !ok || a.Status == st {
		return a, false
	}
	a.Status = st
	s.atts[id] = a
	return a, true
}

// Epoch returns the last accepted sync epoch of a node.
func (s *Store) Epoch(node string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epochs[node]
}

// ReplaceNode makes node's attachments exactly as, records epoch, and
// returns the removed attachments. All or nothing.
func (s *Store) ReplaceNode(node string, epoch uint64, as []Attachment) ([]Attachment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := map[string]bool{}
	for _, a := range as {
		keep[a.ID] = true
	}
	backup := make(map[string]Attachment, len(s.atts))
	for k, v := range s.atts {
		backup[k] = v
	}
	oldEpoch, hadEpoch := s.epochs[node]
	var removed []Attachment
	for id, a := range s.atts {
		if a.Node == node && !keep[id] {
			removed = append(removed, a)
			delete(s.atts, id)
		}
	}
	for _, a := range as {
		s.atts[a.ID] = a
	}
	s.epochs[node] = epoch
	if err := s.saveLocked(); err != nil {
		s.atts = backup
		if hadEpoch {
			s.epochs[node] = oldEpoch
		} else {
			delete(s.epochs, node)
		}
		return nil, err
	}
	sort.Slice(removed, func(i, j int) bool { return removed[i].ID < removed[j].ID })
	return removed, nil
}

// Remote returns the last known remote routes saved before a restart.
func (s *Store) Remote() []evpn.Route {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return slices.Clone(s.remote)
}

// SetRemote saves the learned routes if they changed. It does not block
// attachment changes while it writes.
func (s *Store) SetRemote(rs []evpn.Route) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.rmu.Lock()
	same := slices.EqualFunc(s.remote, rs, evpn.Route.Equal)
	s.rmu.Unlock()
	if same {
		return nil
	}
	if err := writeJSON(s.remotePath, remoteFile{Version: 1, Remote: rs}); err != nil {
		return err
	}
	rs = slices.Clone(rs)
	s.rmu.Lock()
	s.remote = rs
	s.rmu.Unlock()
	return nil
}
