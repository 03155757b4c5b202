package checkpoint

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// saveLocked writes the whole checkpoint atomically: a temp file in the
// same directory, fsync, rename over the old file, fsync the directory.
// A crash leaves either the old or the new file, never a torn one, and an
// acknowledged change survives power loss.
//
// If only the final directory fsync fails, the new file is already in place
// while the caller reverts memory; the next successful save rewrites the
// file from memory, and until then an error has been reported for a change
// that may or may not survive a crash — the usual outcome of an EIO.
func (c *Checkpoint) saveLocked() error {
	data, err := json.MarshalIndent(file{Version: fileVersion, Epoch: c.epoch, Attachments: c.sortedLocked()}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	dir := filepath.Dir(c.path)
	tmp, err := os.CreateTemp(dir, ".checkpoint-*")
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	// After a successful rename the temp name is gone and this is a no-op.
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), c.path); err != nil {
		return fmt.Errorf("replace %s: %w", c.path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
