// Package checkpoint is kai-host's on-disk record of the attachments it has
// made, and of the epoch of its last Sync to the DPU.
//
// Host ↔ DPU sync is state-of-the-world (DESIGN.md, "Identities"): on every
// (re)connect kai-host sends every attachment it holds, and the DPU drops
// what is not in the list. The checkpoint is therefore the source of truth
// for what the host has attached: a kai-host restart must not forget an
// attachment, or the first resync would tear a running pod's network down.
// Every change is written atomically before it is acknowledged.
package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/kai-dpu/kai/sriov"
)

// Pod owning an attachment.
type Pod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
}

// Attachment is one CNI ADD that succeeded: a VF given to a pod's interface
// on a network.
type Attachment struct {
	// ID is kai-cni's "<containerID>/<ifName>" (see DESIGN.md
	// "Identities"). It makes ADD and DEL repeat-safe. ContainerID, IfName
	// and NetNS repeat what the runtime passed, for operators reading the
	// checkpoint.
	ID          string   `json:"id"`
	ContainerID string   `json:"containerID"`
	IfName      string   `json:"ifName"`
	NetNS       string   `json:"netns"`
	Pod         Pod      `json:"pod"`
	Network     string   `json:"network"`
	VF          sriov.VF `json:"vf"`
	MAC         string   `json:"mac"`
	IPs         []string `json:"ips,omitempty"`
}

// clone copies the IP slice so callers never share memory with the store.
func (a Attachment) clone() Attachment {
	a.IPs = slices.Clone(a.IPs)
	return a
}

// FileName is the checkpoint file inside the state directory.
const FileName = "checkpoint.json"

const fileVersion = 1

// file is the on-disk form.
type file struct {
	Version     int          `json:"version"`
	Epoch       uint64       `json:"epoch"`
	Attachments []Attachment `json:"attachments"`
}

// Checkpoint is safe for concurrent use. One mutex serializes changes and
// their writes, so the file always reflects a prefix of the changes made.
type Checkpoint struct {
	path string

	mu    sync.Mutex
	epoch uint64
	atts  map[string]Attachment
}

// Open loads the checkpoint in dir, creating dir if needed. A missing file
// is an empty checkpoint (first start); a corrupt one is an error naming the
// file, never silently emptied: an empty list sent to the DPU would detach
// every pod on the node.
func Open(dir string) (*Checkpoint, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("checkpoint: create state dir: %w", err)
	}
	c := &Checkpoint{path: filepath.Join(dir, FileName), atts: map[string]Attachment{}}
	data, err := os.ReadFile(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: read %s: %w", c.path, err)
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("checkpoint: %s is corrupt (move it away to start empty; the next sync then detaches every pod on this node): %w", c.path, err)
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("checkpoint: %s: version %d not supported (want %d)", c.path, f.Version, fileVersion)
	}
	for i, a := range f.Attachments {
		if a.ID == "" {
			return nil, fmt.Errorf("checkpoint: %s is corrupt: attachments[%d] has no id", c.path, i)
		}
		if _, dup := c.atts[a.ID]; dup {
			return nil, fmt.Errorf("checkpoint: %s is corrupt: attachments[%d]: duplicate id %q", c.path, i, a.ID)
		}
		c.atts[a.ID] = a
	}
	c.epoch = f.Epoch
	return c, nil
}

// List returns all attachments sorted by ID.
func (c *Checkpoint) List() []Attachment {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sortedLocked()
}

func (c *Checkpoint) sortedLocked() []Attachment {
	out := make([]Attachment, 0, len(c.atts))
	for _, a := range c.atts {
		out = append(out, a.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Get returns the attachment with id.
func (c *Checkpoint) Get(id string) (Attachment, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.atts[id]
	return a.clone(), ok
}

// Put adds or replaces a and persists. On error nothing changes, in memory
// or on disk.
func (c *Checkpoint) Put(a Attachment) error {
	if a.ID == "" {
		return errors.New("checkpoint: put: attachment id required")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	prev, had := c.atts[a.ID]
	c.atts[a.ID] = a.clone()
	if err := c.saveLocked(); err != nil {
		if had {
			c.atts[a.ID] = prev
		} else {
			delete(c.atts, a.ID)
		}
		return fmt.Errorf("checkpoint: put %s: %w", a.ID, err)
	}
	return nil
}

// Delete removes id and persists. An unknown id is not an error, so a
// repeated CNI DEL succeeds.
func (c *Checkpoint) Delete(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev, had := c.atts[id]
	if !had {
		return nil
	}
	delete(c.atts, id)
	if err := c.saveLocked(); err != nil {
		c.atts[id] = prev
		return fmt.Errorf("checkpoint: delete %s: %w", id, err)
	}
	return nil
}

// NextEpoch returns a new sync epoch, persisted before it is returned, so
// epochs stay strictly increasing across kai-host restarts and the DPU can
// reject a Sync older than one it has already applied.
func (c *Checkpoint) NextEpoch() (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch == ^uint64(0) {
		return 0, errors.New("checkpoint: epoch exhausted")
	}
	prev := c.epoch
	// Never below the wall clock (ns): if the checkpoint is lost, the new
	// epochs still exceed the ones the DPU accepted before, instead of
	// restarting at 1 and being rejected as stale.
	c.epoch = max(prev+1, uint64(time.Now().UnixNano()))
	if err := c.saveLocked(); err != nil {
		c.epoch = prev
		return 0, fmt.Errorf("checkpoint: next epoch: %w", err)
	}
	return c.epoch, nil
}
