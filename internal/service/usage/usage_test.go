package usage

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// clock is a test's time, moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func (c *clock) set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func newClock(t time.Time) *clock    { return &clock{t: t} }
func hourAt(h int) time.Time {
	return time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC).Add(time.Duration(h) * time.Hour)
}
func (c *clock) opts(dir string) Options { return Options{Dir: dir, Now: c.now, Every: time.Hour} }

func open(t *testing.T, o Options) *Meter {
	t.Helper()
	m, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func report(t *testing.T, m *Meter, from, to time.Time) map[string]Counts {
	t.Helper()
	r, err := m.Usage(from, to, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Counts{}
	for _, s := range r.Streams {
		out[s.Stream] = s.Counts
	}
	return out
}

// Counts land in the hour they happen in, hours close into the month's
// file across a month's end, and a report adds up whole hours of a range.
func TestHoursAndReports(t *testing.T) {
	dir := t.TempDir()
	c := newClock(hourAt(0).Add(10 * time.Minute)) // 22:10 on Nov 30
	m := open(t, c.opts(dir))
	m.In("pump-1", 1000)
	m.In("pump-1", 500)
	m.Out("pump-1", GetMedia, 700)
	c.add(time.Hour) // 23:10
	if err := m.Tick(); err != nil {
		t.Fatal(err)
	}
	m.In("pump-1", 10)
	m.Out("cam-1", Query, 42)
	c.add(time.Hour) // 00:10 on Dec 1: a new month
	if err := m.Tick(); err != nil {
		t.Fatal(err)
	}
	m.Out("pump-1", GetMedia, 1)
	if _, err := os.Stat(filepath.Join(dir, "hours-2026-11.jsonl")); err != nil {
		t.Fatalf("November's hours: %v", err)
	}
	all := report(t, m, hourAt(-5), hourAt(5))
	if p := all["pump-1"]; p.BytesIn != 1510 || p.FragmentsIn != 3 || p.BytesOut[GetMedia] != 701 {
		t.Errorf("pump-1 over all hours: %+v", p)
	}
	if q := all["cam-1"]; q.BytesOut[Query] != 42 {
		t.Errorf("cam-1: %+v", q)
	}
	first := report(t, m, hourAt(0).Add(30*time.Minute), hourAt(0).Add(31*time.Minute)) // widened to 22:00–23:00
	if p := first["pump-1"]; p.BytesIn != 1500 || p.BytesOut[GetMedia] != 700 || len(first) != 1 {
		t.Errorf("the first hour: %+v", first)
	}
	last := report(t, m, hourAt(2), hourAt(3))
	if p := last["pump-1"]; p.BytesIn != 0 || p.BytesOut[GetMedia] != 1 {
		t.Errorf("the current hour: %+v", last)
	}
	if tot := m.Totals()["pump-1"]; tot.BytesIn != 1510 {
		t.Errorf("totals: %+v", tot)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// What is stored is integrated over time, at hour boundaries too, and over
// the time the server was down; counts survive a stop and a crash (the
// last save), and an hour the crash left half-appended is not counted twice.
func TestStoredHoursAndRestarts(t *testing.T) {
	dir := t.TempDir()
	c := newClock(hourAt(0).Add(30 * time.Minute))
	held := map[string]Stored{"pump-1": {Bytes: 3600, Fragments: 10}}
	o := c.opts(dir)
	o.Stored = func() map[string]Stored { return held }
	m := open(t, o)
	c.add(time.Hour) // 30 min in hour 0, 30 in hour 1
	if err := m.Tick(); err != nil {
		t.Fatal(err)
	}
	m.In("pump-1", 99)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	h0 := report(t, m, hourAt(0), hourAt(1))["pump-1"]
	h1 := report(t, m, hourAt(1), hourAt(2))["pump-1"]
	if h0.ByteHours != 1800 || h0.FragmentHours != 5 || h1.ByteHours != 1800 || h1.BytesIn != 99 {
		t.Fatalf("byte-hours: hour 0 %+v, hour 1 %+v", h0, h1)
	}

	// Down for two hours and a half: reopened, the hours close in order and
	// the time down counts at what is held now.
	c.add(2*time.Hour + 30*time.Minute) // hour 4:00
	m = open(t, o)
	got := report(t, m, hourAt(0), hourAt(5))["pump-1"]
	if got.BytesIn != 99 || got.ByteHours != 3600*3.5 {
		t.Fatalf("after the restart: %+v, want 99 bytes in and %v byte-hours", got, 3600*3.5)
	}

	// A crash: no Close, only the last Tick's save.
	m.In("pump-1", 1)
	if err := m.Tick(); err != nil {
		t.Fatal(err)
	}
	m.In("pump-1", 1000) // not saved: lost with the crash
	close(m.stop)
	<-m.done
	m2 := open(t, o)
	if got := report(t, m2, hourAt(0), hourAt(5))["pump-1"]; got.BytesIn != 100 {
		t.Fatalf("after a crash: %d bytes in, want 100 (the last save's)", got.BytesIn)
	}
	// A crash after the hour was appended and before current.json moved on:
	// reopening appends it again, which must not count twice.
	c.add(time.Hour)
	if err := m2.Tick(); err != nil {
		t.Fatal(err)
	}
	m2.In("pump-1", 5)
	if err := m2.Tick(); err != nil {
		t.Fatal(err)
	}
	cur := filepath.Join(dir, currentName)
	old, _ := os.ReadFile(cur)
	c.add(time.Hour)
	if err := m2.Tick(); err != nil {
		t.Fatal(err)
	}
	close(m2.stop)
	<-m2.done
	if err := os.WriteFile(cur, old, 0o644); err != nil {
		t.Fatal(err)
	}
	// And a torn last line, as a crash mid-append leaves.
	month := filepath.Join(dir, "hours-2026-12.jsonl")
	f, _ := os.OpenFile(month, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"hour":99999999999,"stream":"pu`)
	f.Close()
	m3 := open(t, o)
	defer m3.Close()
	if got := report(t, m3, hourAt(0), hourAt(9))["pump-1"]; got.BytesIn != 105 {
		t.Fatalf("after the repeated append: %d bytes in, want 105", got.BytesIn)
	}
}
