package replicate

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestJournalSaveLoadConfirm(t *testing.T) {
	dir := t.TempDir()
	if j, err := loadJournal(dir, "pump-1"); j != nil || err != nil {
		t.Fatalf("no journal yet: got %v, %v", j, err)
	}
	j := newJournal("pump-1", "arn:edge", "pump-1")
	j.assign([]fragRef{{Number: "9", ServerTime: 1}, {Number: "12", ServerTime: 2}, {Number: "100", ServerTime: 3}})
	if err := j.save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := loadJournal(dir, "pump-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ProducerID != j.ProducerID || got.NextSeq != 4 || len(got.Pending) != 3 || got.Cursor.Number != "100" || got.Pending[2].Seq != 3 {
		t.Fatalf("loaded %+v, saved %+v", got, j)
	}
	got.confirm(2)
	if len(got.Pending) != 1 || got.Pending[0].Number != "100" || got.Confirmed.Number != "12" {
		t.Fatalf("after confirm(2): pending %v, confirmed %v", got.Pending, got.Confirmed)
	}
	// A new journal has a new producer id: its sequences, which start at 1
	// again, must not meet those the centre remembers.
	if newJournal("pump-1", "arn:edge", "pump-1").ProducerID == j.ProducerID {
		t.Fatal("two journals with one producer id")
	}
	if _, err := os.Stat(journalFile(dir, "pump-1") + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("the temporary file is left behind: %v", err)
	}
}

func TestJournalFileNames(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{".", "..", "a.b", strings.Repeat("x", 256)} {
		p := journalFile(dir, name)
		if filepath.Dir(p) != dir || len(filepath.Base(p)) > 255 {
			t.Errorf("journal of %q is %q: not a file in the state folder", name, p)
		}
		j := newJournal(name, "arn", name)
		if err := j.save(dir); err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if got, err := loadJournal(dir, name); err != nil || got.CentreStream != name {
			t.Fatalf("%q: loaded %v, %v", name, got, err)
		}
	}
}

func TestJournalRefusesAnotherStreamsFile(t *testing.T) {
	dir := t.TempDir()
	j := newJournal("a", "arn", "a")
	if err := j.save(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(journalFile(dir, "a"), journalFile(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if _, err := loadJournal(dir, "b"); err == nil || !strings.Contains(err.Error(), "not the journal of stream b") {
		t.Fatalf("a journal under another stream's name: %v", err)
	}
	if err := os.WriteFile(journalFile(dir, "c"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadJournal(dir, "c"); err == nil || !strings.Contains(err.Error(), "stream-c.json") {
		t.Fatalf("a damaged journal: %v", err)
	}
}

// reconcile confirms the pending fragments up to the centre's newest, and
// only when that one is the journal's own (same number and producer time),
// only those the centre holds (by producer time) before the first it does
// not, and never a refused one or any after it.
func TestReconcile(t *testing.T) {
	const ms = int64(time.Millisecond)
	mk := func() *journal {
		j := newJournal("s", "arn", "s")
		j.assign([]fragRef{{Number: "5", ProducerTime: 50 * ms}, {Number: "7", ProducerTime: 70 * ms}, {Number: "9", ProducerTime: 90 * ms}})
		return j
	}
	all := map[int64]int{50: 1, 70: 1, 90: 1}
	cases := []struct {
		name        string
		last        *centreLast
		held        map[int64]int
		refused     uint64 // the sequence the journal records as refused; 0: none
		wantPending int
		wantAfter   int // the refusal's StoredAfter
	}{
		{"the centre is empty", nil, nil, 0, 3, 0},
		{"the centre holds the second", &centreLast{Origin: "7", ProducerTime: 70 * ms}, all, 0, 1, 0},
		{"the centre holds all", &centreLast{Origin: "9", ProducerTime: 90 * ms}, all, 0, 0, 0},
		{"another numbering", &centreLast{Origin: "7", ProducerTime: 71 * ms}, all, 0, 3, 0},
		{"no origin tag", &centreLast{ProducerTime: 70 * ms}, all, 0, 3, 0},
		// The first was refused while the replicator was away, and the
		// centre stored the two after it: nothing is confirmed.
		{"a hole at the first", &centreLast{Origin: "9", ProducerTime: 90 * ms}, map[int64]int{70: 1, 90: 1}, 0, 3, 0},
		{"a hole at the second", &centreLast{Origin: "9", ProducerTime: 90 * ms}, map[int64]int{50: 1, 90: 1}, 0, 2, 0},
		{"the second refused, the third stored", &centreLast{Origin: "9", ProducerTime: 90 * ms}, map[int64]int{50: 1, 90: 1}, 2, 2, 1},
		{"the first refused, all three at the centre", &centreLast{Origin: "9", ProducerTime: 90 * ms}, all, 1, 3, 2},
	}
	for _, c := range cases {
		j := mk()
		if c.refused > 0 {
			j.Refused = &refusal{fragRef: j.Pending[c.refused-1], Code: "MAX_FRAGMENT_SIZE_REACHED"}
		}
		if m := centreMatch(j, c.last); m >= 0 {
			confirmHeld(j, m, maps.Clone(c.held)) // it counts them down
		}
		if len(j.Pending) != c.wantPending {
			t.Errorf("%s: %d pending, want %d", c.name, len(j.Pending), c.wantPending)
		}
		if c.refused > 0 && j.Refused.StoredAfter != c.wantAfter {
			t.Errorf("%s: the refusal has %d stored after it, want %d", c.name, j.Refused.StoredAfter, c.wantAfter)
		}
	}
}

func TestNumberOrder(t *testing.T) {
	if !numberLess("9", "10") || numberLess("10", "9") || numberLess("5", "5") || !numberLess("91343852333181432392682062607743920146264440650", "91343852333181432392682062607743920146264440651") {
		t.Error("fragment numbers are not ordered as numbers")
	}
	for _, s := range []string{"", "01", "1a", "-1"} {
		if validNumber(s) {
			t.Errorf("%q taken for a fragment number", s)
		}
	}
}
