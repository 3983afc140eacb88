package replicate

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// A journal is one replicated stream's state in the state folder: which
// producer id its fragments carry at the centre, which producer sequence
// each edge fragment was given, and which of them the centre has confirmed
// (PERSISTED). Its format is docs/REPLICATION.md, "State folder".
//
// The rule that makes the copy exactly once: an edge fragment's sequence
// is written here, and fsynced, before the fragment is first sent. A
// fragment sent again (after a lost acknowledgement, a cut link, a crash of
// either side) goes under the same producer id and sequence, which the
// centre's store recognises at any delay (store/dedupe.go) — including when
// the first copy is still on the centre's bus, not yet applied, which no
// look at the centre's fragments could tell.
type journal struct {
	Version      int    `json:"version"`
	EdgeStream   string `json:"edge_stream"`
	EdgeARN      string `json:"edge_arn"`
	CentreStream string `json:"centre_stream"`
	// ProducerID is the centre-side producer id, random per journal: a new
	// journal (the folder was lost) must not reuse sequences the centre
	// already remembers under another fragment.
	ProducerID string `json:"producer_id"`
	// Via is how the fragments reach the centre under that id: "nats"
	// (or absent, in journals made before there was a choice), where the
	// centre's store knows the key as ProducerID, or "http" (PutMedia),
	// where it knows it as wire.PutMediaProducerPrefix + ProducerID. A
	// journal of "http" is sent on over NATS under the latter.
	Via string `json:"via,omitempty"`
	// NextSeq is the sequence the next new fragment gets (from 1).
	NextSeq uint64 `json:"next_seq"`
	// Cursor is the newest edge fragment given a sequence: the listing of
	// new fragments starts after it.
	Cursor *fragRef `json:"cursor,omitempty"`
	// Confirmed is the newest fragment the centre has confirmed, with its
	// sequence in Seq.
	Confirmed *fragRef `json:"confirmed,omitempty"`
	// Pending are the fragments given a sequence and not yet confirmed, in
	// sequence order.
	Pending []fragRef `json:"pending,omitempty"`
	// AfterProducerTime, when not 0, leaves out the edge fragments at or
	// before this producer time (ns): a journal started from a centre
	// stream whose newest fragment could not be matched to an edge one.
	AfterProducerTime int64 `json:"after_producer_ns,omitempty"`
	// Refused is the fragment the centre refused (a terminal ERROR) that
	// the copy is stopped at: it is sent again, alone, after each pause, and
	// nothing after it is confirmed — not by the centre's PERSISTED of the
	// fragments after it that were already on their way, nor by a look at
	// the centre's newest — until the centre takes it or an operator skips
	// it (SkipRefused). nil when the copy is not stopped.
	Refused *refusal `json:"refused,omitempty"`
	// Skipped are the refused fragments an operator let go: the centre's
	// copy lacks each of them. Kept so that the hole stays on record.
	Skipped []refusal `json:"skipped,omitempty"`
	// Counts since the journal began, for status.
	SentFragments uint64 `json:"sent_fragments"`
	SentBytes     uint64 `json:"sent_bytes"`
	Expired       uint64 `json:"expired_fragments"` // gone from the edge before they were sent
	RefusedTotal  uint64 `json:"refused_fragments"` // edge fragments the centre refused, each counted once
}

// refusal is an edge fragment the centre refused, and why.
type refusal struct {
	fragRef        // the edge fragment; Seq is its sequence
	Code    string `json:"code"`     // the centre's error code, as its ERROR event names it
	ErrorID int    `json:"error_id"` // and its number
	Message string `json:"message"`
	At      int64  `json:"at_ns"` // when it was first refused (the replicator's clock)
	// StoredAfter is how many fragments after it the centre is known to
	// have stored: those already on their way when it refused (its ingest
	// does not hold back a fragment whose predecessor it refused). When
	// more than 0 the centre's copy has a hole at this fragment, and will
	// keep it: the centre refuses a fragment older than its newest
	// (FRAGMENT_TIMECODE_LESSER), so even with its limit raised it cannot
	// take this one any more.
	StoredAfter int `json:"stored_after"`
}

// fragRef is one edge fragment as the journal knows it.
type fragRef struct {
	Seq          uint64 `json:"seq,omitempty"`
	Number       string `json:"number"`      // the edge's fragment number
	ServerTime   int64  `json:"server_ns"`   // the edge's server timestamp
	ProducerTime int64  `json:"producer_ns"` // the producer timestamp
	Size         int64  `json:"size"`
}

const journalVersion = 1

// journalFile is the journal's file name for a centre stream. Stream names
// are [a-zA-Z0-9_.-] (so "." and ".." are names); a prefix keeps them from
// being path elements, and a name too long for a file name is hashed.
func journalFile(dir, centre string) string {
	if len(centre) <= 200 {
		return filepath.Join(dir, "stream-"+centre+".json")
	}
	h := sha256.Sum256([]byte(centre))
	return filepath.Join(dir, "stream-"+hex.EncodeToString(h[:16])+".json")
}

// newJournal starts a journal with a fresh producer id.
func newJournal(edge, edgeARN, centre string) *journal {
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	return &journal{Version: journalVersion, EdgeStream: edge, EdgeARN: edgeARN, CentreStream: centre,
		ProducerID: "replicate-" + hex.EncodeToString(id), NextSeq: 1}
}

// loadJournal reads the journal of centre; nil, nil when there is none.
func loadJournal(dir, centre string) (*journal, error) {
	path := journalFile(dir, centre)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("replicate: read journal: %w", err)
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("replicate: journal %s: %w", path, err)
	}
	if j.Version != journalVersion {
		return nil, fmt.Errorf("replicate: journal %s: version %d; this replicator reads version %d", path, j.Version, journalVersion)
	}
	if j.CentreStream != centre || j.ProducerID == "" || j.NextSeq == 0 {
		return nil, fmt.Errorf("replicate: journal %s: not the journal of stream %s (centre_stream %q, producer_id %q, next_seq %d)",
			path, centre, j.CentreStream, j.ProducerID, j.NextSeq)
	}
	return &j, nil
}

// save writes the journal durably: a temporary file, fsync, rename over the
// old one, fsync of the folder. A crash leaves the old journal or the new
// one, never a mix.
func (j *journal) save(dir string) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("replicate: encode journal: %w", err)
	}
	path := journalFile(dir, j.CentreStream)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("replicate: save journal: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("replicate: save journal %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("replicate: save journal %s: fsync: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("replicate: save journal %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replicate: save journal: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("replicate: open state folder: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("replicate: fsync state folder %s: %w", dir, err)
	}
	return nil
}

// assign gives the next sequences to frags (new edge fragments, in order)
// and moves the cursor past them. The caller saves before sending.
func (j *journal) assign(frags []fragRef) {
	for _, f := range frags {
		f.Seq = j.NextSeq
		j.NextSeq++
		j.Pending = append(j.Pending, f)
		c := f
		j.Cursor = &c
	}
}

// confirm marks every pending fragment up to and including seq as held by
// the centre; never one at or past a refused fragment, which the centre
// does not hold, whatever it holds after it.
func (j *journal) confirm(seq uint64) {
	if j.Refused != nil && seq >= j.Refused.Seq {
		seq = j.Refused.Seq - 1
	}
	i := 0
	for i < len(j.Pending) && j.Pending[i].Seq <= seq {
		i++
	}
	if i == 0 {
		return
	}
	c := j.Pending[i-1]
	j.Confirmed = &c
	j.Pending = append(j.Pending[:0], j.Pending[i:]...)
}

// numberLess orders fragment numbers, decimal strings of any length (the
// managed service's are longer than 64 bits).
func numberLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// validNumber reports whether s is a fragment number: decimal digits
// without a leading zero.
func validNumber(s string) bool {
	if s == "" || len(s) > 64 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// JournalSummary is one journal as `sensorium replicate status --state`
// shows it, for a replicator that is not running.
type JournalSummary struct {
	EdgeStream, CentreStream string
	ProducerID               string
	LastConfirmed            string // the newest edge fragment the centre confirmed; "" for none
	PendingFragments         int    // given a sequence, not yet confirmed
	PendingBytes             int64
	SentFragments, SentBytes uint64
	ExpiredFragments         uint64
	RefusedFragments         uint64         // edge fragments the centre refused since the journal began
	Refused                  *RefusalStatus // the fragment the copy is stopped at; nil when it is not
	SkippedFragments         int            // refused fragments let go (SkipRefused): holes in the centre's copy
}

// ReadJournals summarises the journals in a state folder, sorted by
// centre stream. It reads the files as the replicator left them; it takes
// no lock, so a running replicator's figures may be a round behind.
func ReadJournals(dir string) ([]JournalSummary, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "stream-*.json"))
	if err != nil {
		return nil, fmt.Errorf("replicate: state folder: %w", err)
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("replicate: state folder: %w", err)
	}
	var out []JournalSummary
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("replicate: read journal: %w", err)
		}
		var j journal
		if err := json.Unmarshal(b, &j); err != nil {
			return nil, fmt.Errorf("replicate: journal %s: %w", p, err)
		}
		s := JournalSummary{EdgeStream: j.EdgeStream, CentreStream: j.CentreStream, ProducerID: j.ProducerID,
			PendingFragments: len(j.Pending), SentFragments: j.SentFragments, SentBytes: j.SentBytes, ExpiredFragments: j.Expired,
			RefusedFragments: j.RefusedTotal, Refused: j.Refused.status(), SkippedFragments: len(j.Skipped)}
		if j.Confirmed != nil {
			s.LastConfirmed = j.Confirmed.Number
		}
		for _, f := range j.Pending {
			s.PendingBytes += f.Size
		}
		out = append(out, s)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].CentreStream < out[b].CentreStream })
	return out, nil
}

// SkipRefused lets the copy of a stream go on without the fragment the
// centre refused, which the copy is stopped at: the fragment leaves the
// journal's pending fragments and is kept in its skipped ones, so that
// the hole it leaves in the centre's copy stays on record (status, the
// metric sensorium_replicate_skipped_fragments). name is the stream's edge
// or centre name. The replicator must not be running: it holds the state
// folder's lock, and would write its own journal over this change.
//
// It is the operator's call, never the replicator's: a refusal may be
// mended at the centre (a limit raised, a stream made again), and then
// the retried fragment goes in and the copy is whole; but once the centre
// stored fragments after it (StoredAfter), it refuses the older one for
// good, and only skipping it lets the copy go on.
func SkipRefused(dir, name string) (JournalSummary, error) {
	unlock, err := lockState(dir)
	if err != nil {
		return JournalSummary{}, fmt.Errorf("%w: stop it before skipping a fragment", err)
	}
	defer unlock()
	all, err := ReadJournals(dir)
	if err != nil {
		return JournalSummary{}, err
	}
	centre := ""
	for _, s := range all {
		if s.CentreStream == name || (centre == "" && s.EdgeStream == name) {
			centre = s.CentreStream
		}
	}
	if centre == "" {
		return JournalSummary{}, fmt.Errorf("replicate: no journal in %s copies a stream named %s", dir, name)
	}
	j, err := loadJournal(dir, centre)
	if err != nil {
		return JournalSummary{}, err
	}
	r := j.Refused
	if r == nil {
		return JournalSummary{}, fmt.Errorf("replicate: the copy of %s is not stopped at a refused fragment: nothing to skip", name)
	}
	kept := j.Pending[:0]
	for _, p := range j.Pending {
		if p.Seq != r.Seq {
			kept = append(kept, p)
		}
	}
	j.Pending, j.Refused = kept, nil
	j.Skipped = append(j.Skipped, *r)
	if err := j.save(dir); err != nil {
		return JournalSummary{}, err
	}
	return JournalSummary{EdgeStream: j.EdgeStream, CentreStream: j.CentreStream, ProducerID: j.ProducerID,
		Refused: r.status(), SkippedFragments: len(j.Skipped), RefusedFragments: j.RefusedTotal}, nil
}
