package checkpoint

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/kai-dpu/kai/sriov"
)

func att(id string) Attachment {
	return Attachment{
		ID:          id,
		ContainerID: "c-" + id,
		IfName:      "net1",
		NetNS:       "/var/run/netns/" + id,
		Pod:         Pod{Namespace: "default", Name: "pod-" + id, UID: "uid-" + id},
		Network:     "blue",
		VF:          sriov.VF{PFIndex: 1, PFPCIAddress: "0000:03:00.1", VFIndex: 4, PCIAddress: "0000:03:08.6"},
		MAC:         "02:00:00:00:00:01",
		IPs:         []string{"100.64.0.10/24", "fd00::10/64"},
	}
}

func mustOpen(t *testing.T, dir string) *Checkpoint {
	t.Helper()
	c, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return c
}

func ids(as []Attachment) []string {
	out := []string{}
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}

func TestOpenCreatesDirAndStartsEmpty(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	c := mustOpen(t, dir)
	if got := c.List(); len(got) != 0 {
		t.Fatalf("List = %v, want empty", got)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Fatalf("state dir: %v, %v", st, err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); !os.IsNotExist(err) {
		t.Fatalf("Open wrote a file before any change: %v", err)
	}
}

func TestRoundTripAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	c := mustOpen(t, dir)
	for _, id := range []string{"n1/uid-b/net1", "n1/uid-a/net1", "n1/uid-c/net1"} {
		if err := c.Put(att(id)); err != nil {
			t.Fatalf("Put(%s): %v", id, err)
		}
	}
	replaced := att("n1/uid-a/net1")
	replaced.MAC = "02:00:00:00:00:aa"
	replaced.IPs = nil
	if err := c.Put(replaced); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("n1/uid-c/net1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("never-existed"); err != nil {
		t.Fatalf("Delete(unknown) = %v, want nil", err)
	}

	r := mustOpen(t, dir)
	want := []Attachment{replaced, att("n1/uid-b/net1")}
	if got := r.List(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen List =\n%+v\nwant\n%+v", got, want)
	}
	if got, ok := r.Get("n1/uid-b/net1"); !ok || !reflect.DeepEqual(got, att("n1/uid-b/net1")) {
		t.Fatalf("Get = %+v, %v", got, ok)
	}
	if _, ok := r.Get("n1/uid-c/net1"); ok {
		t.Fatal("deleted attachment came back")
	}
}

func TestListSortedByID(t *testing.T) {
	c := mustOpen(t, t.TempDir())
	for _, id := range []string{"c", "a", "d", "b"} {
		if err := c.Put(att(id)); err != nil {
			t.Fatal(err)
		}
	}
	if got := ids(c.List()); strings.Join(got, ",") != "a,b,c,d" {
		t.Fatalf("List ids = %v", got)
	}
}

// Callers must not be able to change stored attachments through shared
// slices.
func TestNoAliasing(t *testing.T) {
	c := mustOpen(t, t.TempDir())
	a := att("x")
	if err := c.Put(a); err != nil {
		t.Fatal(err)
	}
	a.IPs[0] = "changed"
	got, _ := c.Get("x")
	got.IPs[1] = "changed"
	c.List()[0].IPs[0] = "changed"
	if again, _ := c.Get("x"); !reflect.DeepEqual(again.IPs, att("x").IPs) {
		t.Fatalf("stored IPs changed through an alias: %v", again.IPs)
	}
}

func TestPutRequiresID(t *testing.T) {
	c := mustOpen(t, t.TempDir())
	if err := c.Put(Attachment{}); err == nil || !strings.Contains(err.Error(), "id required") {
		t.Fatalf("Put(no id) = %v", err)
	}
}

func TestEpochStrictlyIncreasesAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	var last uint64
	for round := 0; round < 3; round++ {
		c := mustOpen(t, dir)
		for i := 0; i < 3; i++ {
			e, err := c.NextEpoch()
			if err != nil {
				t.Fatalf("NextEpoch: %v", err)
			}
			if e <= last {
				t.Fatalf("round %d: epoch %d after %d", round, e, last)
			}
			last = e
		}
		// Attachment changes keep the epoch.
		if err := c.Put(att("a")); err != nil {
			t.Fatal(err)
		}
	}
	if reopened, err := mustOpen(t, dir).NextEpoch(); err != nil || reopened <= last {
		t.Fatalf("epoch after a final reopen = %d (%v), want more than %d", reopened, err, last)
	}
}

func TestOpenRejectsBadFiles(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"truncated", `{"version": 1, "attachments": [`, "is corrupt"},
		{"not json", "garbage", "is corrupt"},
		{"future version", `{"version": 2}`, "version 2 not supported"},
		{"missing id", `{"version": 1, "attachments": [{"ifName": "net1"}]}`, "attachments[0] has no id"},
		{"duplicate id", `{"version": 1, "attachments": [{"id": "a"}, {"id": "a"}]}`, `attachments[1]: duplicate id "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open = %v, want error naming %s and containing %q", err, path, tt.want)
			}
		})
	}
}

// blockFile makes the checkpoint path a non-empty directory so the final
// rename fails; this works as root too, unlike permission tricks.
func blockFile(t *testing.T, dir string) func() {
	t.Helper()
	path := filepath.Join(dir, FileName)
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(path, "blocker"), 0o700); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.RemoveAll(path); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFailedWriteLeavesMemoryUnchanged(t *testing.T) {
	dir := t.TempDir()
	c := mustOpen(t, dir)
	if err := c.Put(att("keep")); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(att("del")); err != nil {
		t.Fatal(err)
	}
	e1, err := c.NextEpoch()
	if err != nil {
		t.Fatal(err)
	}
	before := c.List()

	unblock := blockFile(t, dir)
	changed := att("keep")
	changed.MAC = "02:00:00:00:00:ff"
	steps := []struct {
		name string
		do   func() error
	}{
		{"put new", func() error { return c.Put(att("new")) }},
		{"put replace", func() error { return c.Put(changed) }},
		{"delete", func() error { return c.Delete("del") }},
		{"next epoch", func() error { _, err := c.NextEpoch(); return err }},
	}
	for _, s := range steps {
		err := s.do()
		if err == nil || !strings.Contains(err.Error(), FileName) {
			t.Fatalf("%s: err = %v, want a write error naming %s", s.name, err, FileName)
		}
		if got := c.List(); !reflect.DeepEqual(got, before) {
			t.Fatalf("%s: memory changed after failed write:\n%+v\nwant\n%+v", s.name, got, before)
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".checkpoint-*")); len(leftovers) != 0 {
		t.Fatalf("temp files left behind: %v", leftovers)
	}

	// Once writable again, the failed epoch is not reused and state is intact.
	unblock()
	e2, err := c.NextEpoch()
	if err != nil {
		t.Fatal(err)
	}
	if e2 <= e1 {
		t.Fatalf("epoch after failure = %d, want more than %d", e2, e1)
	}
	if got := ids(mustOpen(t, dir).List()); strings.Join(got, ",") != "del,keep" {
		t.Fatalf("after reopen ids = %v", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	c := mustOpen(t, dir)
	var wg sync.WaitGroup
	epochs := make(chan uint64, 40)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := string(rune('a' + i))
			if err := c.Put(att(id)); err != nil {
				t.Error(err)
			}
			e, err := c.NextEpoch()
			if err != nil {
				t.Error(err)
			}
			epochs <- e
			c.List()
			if i%2 == 0 {
				if err := c.Delete(id); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	close(epochs)
	seen := map[uint64]bool{}
	for e := range epochs {
		if seen[e] {
			t.Fatalf("epoch %d handed out twice", e)
		}
		seen[e] = true
	}
	if got := len(mustOpen(t, dir).List()); got != 10 {
		t.Fatalf("after reopen %d attachments, want 10", got)
	}
}

// A lost checkpoint must not restart epochs below what the DPU accepted.
func TestEpochSurvivesLostCheckpoint(t *testing.T) {
	c := mustOpen(t, t.TempDir())
	e1, err := c.NextEpoch()
	if err != nil {
		t.Fatal(err)
	}
	fresh := mustOpen(t, t.TempDir())
	e2, err := fresh.NextEpoch()
	if err != nil {
		t.Fatal(err)
	}
	if e2 <= e1 {
		t.Fatalf("epoch from a new checkpoint %d is not above the lost one's %d", e2, e1)
	}
}
