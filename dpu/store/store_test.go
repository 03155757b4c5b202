package store

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kai-dpu/kai/dpu/evpn"
	"github.com/kai-dpu/kai/sriov"
)

func att(id, node string) Attachment {
	return Attachment{ID: id, Node: node, Network: "blue", MAC: "02:00:00:00:0a:01",
		VF: sriov.VF{PFIndex: 0, VFIndex: 1}, IPs: []netip.Addr{netip.MustParseAddr("100.64.1.1")},
		Generation: 1, Representor: "pf0vf1", Seq: 3}
}

func TestStoreSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, existed, err := Open(dir)
	if err != nil || existed {
		t.Fatalf("Open: existed=%v err=%v", existed, err)
	}
	a, b := att("a", "n1"), att("b", "n2")
	if err := s.Put(a, b); err != nil {
		t.Fatal(err)
	}
	remote := []evpn.Route{{Type: evpn.MACIP, RD: "198.18.0.12:1", MAC: "02:00:00:00:0b:01", VTEP: netip.MustParseAddr("198.18.0.12"), VNI: 1, RTs: []string{"1:1"}}}
	if err := s.SetRemote(remote); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReplaceNode("n1", 7, []Attachment{a}); err != nil {
		t.Fatal(err)
	}
	// Status is derived: set in memory, not required to survive.
	s.SetStatus("a", Status{Phase: Ready, ObservedGeneration: 1})

	s2, existed, err := Open(dir)
	if err != nil || !existed {
		t.Fatalf("reopen: existed=%v err=%v", existed, err)
	}
	got := s2.List("")
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "b" {
		t.Fatalf("reopened store has %+v", got)
	}
	if want := att("a", "n1"); !reflect.DeepEqual(got[0], want) {
		t.Fatalf("attachment changed across reopen:\n got  %+v\n want %+v", got[0], want)
	}
	if s2.Epoch("n1") != 7 || s2.Epoch("n2") != 0 {
		t.Fatalf("epochs: n1=%d n2=%d", s2.Epoch("n1"), s2.Epoch("n2"))
	}
	if r := s2.Remote(); len(r) != 1 || !r[0].Equal(remote[0]) {
		t.Fatalf("remote routes across reopen: %v", r)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, ".state-*")); len(matches) != 0 {
		t.Fatalf("temporary files left behind: %v", matches)
	}
}

func TestStoreCorruptFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, fileName), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Open of a corrupt state file: %v, want an error saying so", err)
	}
}

func TestReplaceNodeOnlyTouchesThatNode(t *testing.T) {
	s, _, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(att("a1", "n1"), att("a2", "n1"), att("b1", "n2")); err != nil {
		t.Fatal(err)
	}
	removed, err := s.ReplaceNode("n1", 1, []Attachment{att("a2", "n1"), att("a3", "n1")})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].ID != "a1" {
		t.Fatalf("removed %v, want [a1]", removed)
	}
	var ids []string
	for _, a := range s.List("") {
		ids = append(ids, a.ID)
	}
	if strings.Join(ids, ",") != "a2,a3,b1" {
		t.Fatalf("store holds %v", ids)
	}
}

func TestFailedWriteChangesNothing(t *testing.T) {
	dir := t.TempDir()
	s, _, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(att("a", "n1")); err != nil {
		t.Fatal(err)
	}
	// Make the final rename fail (even for root): the state file's path
	// becomes a non-empty directory.
	path := filepath.Join(dir, fileName)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(path, "blocker"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(att("b", "n1")); err == nil {
		t.Fatal("Put succeeded although the state could not be written")
	}
	if err := s.Delete("a"); err == nil {
		t.Fatal("Delete succeeded although the state could not be written")
	}
	if _, err := s.ReplaceNode("n1", 9, nil); err == nil {
		t.Fatal("ReplaceNode succeeded although the state could not be written")
	}
	if got := s.List(""); len(got) != 1 || got[0].ID != "a" || s.Epoch("n1") != 0 {
		t.Fatalf("failed writes changed the store: %+v epoch %d", got, s.Epoch("n1"))
	}
}

// Learned routes live in their own file: saving an attachment must not
// rewrite them (at 100k routes that made every attach cost a second).
func TestAttachmentsAndLearnedRoutesAreSeparateFiles(t *testing.T) {
	dir := t.TempDir()
	s := withLearnedRoute(t, dir)
	if err := s.Put(att("a", "n1")); err != nil {
		t.Fatal(err)
	}
	state, err := os.ReadFile(filepath.Join(dir, fileName))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(state), "02:00:00:00:0b:01") {
		t.Fatalf("%s carries learned routes: %s", fileName, state)
	}
	routes, err := os.ReadFile(filepath.Join(dir, remoteFileName))
	if err != nil || !strings.Contains(string(routes), "02:00:00:00:0b:01") {
		t.Fatalf("%s: %v %s", remoteFileName, err, routes)
	}
}

// A state.json written before the split still gives its routes back, and
// keeps them across attachment saves until the routes' own file exists.
func TestLearnedRoutesFromAnOlderStateFile(t *testing.T) {
	dir := t.TempDir()
	old := `{"version":1,"attachments":[],"epochs":{},"remote":[{"type":2,"rd":"198.18.0.12:1","mac":"02:00:00:00:0b:01","vtep":"198.18.0.12","vni":1,"rts":["1:1"]}]}`
	if err := os.WriteFile(filepath.Join(dir, fileName), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	s, existed, err := Open(dir)
	if err != nil || !existed {
		t.Fatalf("Open: existed=%v err=%v", existed, err)
	}
	want := s.Remote()
	if len(want) != 1 || want[0].MAC != "02:00:00:00:0b:01" {
		t.Fatalf("routes from the older file: %+v", want)
	}
	if err := s.Put(att("a", "n1")); err != nil {
		t.Fatal(err)
	}
	s2, _, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.Remote(); len(got) != 1 || !got[0].Equal(want[0]) {
		t.Fatalf("after an attachment save: %+v", got)
	}
	if err := s2.SetRemote(want); err != nil { // same routes: must still be written once
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, remoteFileName)); err != nil {
		t.Fatalf("unchanged routes from an older file were not moved to %s: %v", remoteFileName, err)
	}
}

// Saved learned routes alone are saved state: a DPU that learned routes
// but never had an attachment still restarts as a restarting speaker.
func TestLearnedRoutesAloneCountAsSavedState(t *testing.T) {
	dir := t.TempDir()
	withLearnedRoute(t, dir)
	if _, existed, err := Open(dir); err != nil || !existed {
		t.Fatalf("reopen with only learned routes saved: existed=%v err=%v", existed, err)
	}
}

// withLearnedRoute opens a store in dir and saves one learned route.
func withLearnedRoute(t *testing.T, dir string) *Store {
	t.Helper()
	s, _, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	remote := []evpn.Route{{Type: evpn.MACIP, RD: "198.18.0.12:1", MAC: "02:00:00:00:0b:01", VTEP: netip.MustParseAddr("198.18.0.12"), VNI: 1, RTs: []string{"1:1"}}}
	if err := s.SetRemote(remote); err != nil {
		t.Fatal(err)
	}
	return s
}
