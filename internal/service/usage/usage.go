// Package usage meters what each stream costs, in the terms the managed
// service bills: bytes in (fragments stored), bytes out by API (GetMedia,
// queries, clips, HLS …), and what is stored over time (byte-hours and
// fragment-hours). It keeps the counts per stream per UTC hour in the
// server's data folder, so that they survive restarts; FORMAT.md beside
// this file describes the files.
//
// A Meter is cheap on the hot paths: In and Out take a mutex and add to
// the current hour's counts. What is stored is sampled, once a minute by
// default, from a function the server gives (the store's holdings), and
// integrated over time.
package usage

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// API names a way data leaves the server, as Usage reports it.
type API string

// The APIs that read data out.
const (
	GetMedia                API = "GET_MEDIA"
	GetMediaForFragmentList API = "GET_MEDIA_FOR_FRAGMENT_LIST"
	Query                   API = "QUERY"  // POST /v1/query (Arrow over HTTP)
	Flight                  API = "FLIGHT" // Arrow Flight DoGet
	GetClip                 API = "GET_CLIP"
	HLS                     API = "HLS"
	DASH                    API = "DASH"
	Console                 API = "CONSOLE" // the console's own reads (previews, live pushes)
)

// Stored is what a stream holds at one moment.
type Stored struct {
	Bytes     int64
	Fragments int64
}

// Counts are one stream's usage over some hours.
type Counts struct {
	BytesIn     int64         `json:"in,omitempty"`
	FragmentsIn int64         `json:"fin,omitempty"`
	BytesOut    map[API]int64 `json:"out,omitempty"`
	// ByteHours and FragmentHours integrate what the stream held over
	// time: a GB kept for a month is 720 GB-hours.
	ByteHours     float64 `json:"bh,omitempty"`
	FragmentHours float64 `json:"fh,omitempty"`
}

func (c *Counts) add(o *Counts) {
	c.BytesIn += o.BytesIn
	c.FragmentsIn += o.FragmentsIn
	for api, n := range o.BytesOut {
		if c.BytesOut == nil {
			c.BytesOut = map[API]int64{}
		}
		c.BytesOut[api] += n
	}
	c.ByteHours += o.ByteHours
	c.FragmentHours += o.FragmentHours
}

func (c *Counts) empty() bool {
	return c.BytesIn == 0 && c.FragmentsIn == 0 && len(c.BytesOut) == 0 && c.ByteHours == 0 && c.FragmentHours == 0
}

// Options configure a Meter.
type Options struct {
	// Dir holds the usage files; created if missing.
	Dir string
	// Stored reports what every stream holds now; nil: nothing is stored
	// (byte-hours stay 0).
	Stored func() map[string]Stored
	// Every is how often the current hour is saved and what is stored is
	// sampled; default a minute. A crash loses at most this much metering.
	Every  time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// Meter counts usage per stream and hour.
type Meter struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	hour     int64              // Unix seconds of the current hour's start
	cur      map[string]*Counts // the current hour, per stream
	lastSeen time.Time          // when what is stored was last sampled
	stored   map[string]Stored  // the last sample
	total    map[string]*Counts // since the process started, for /metrics

	stop chan struct{}
	done chan struct{}
}

// Open opens the usage in dir, closing an hour left open by a crash or a
// stop, and starts saving and sampling. Close stops it.
func Open(o Options) (*Meter, error) {
	if o.Every <= 0 {
		o.Every = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	m := &Meter{opts: o, log: o.Logger, cur: map[string]*Counts{}, total: map[string]*Counts{}, stop: make(chan struct{}), done: make(chan struct{})}
	now := o.Now()
	m.hour, m.lastSeen = hourOf(now), now
	saved, err := m.readCurrent()
	if err != nil {
		return nil, err
	}
	if saved != nil {
		// Carry on from the saved hour: Tick closes it (and the hours the
		// server was down) in order, and counts what was stored while it
		// was down at what is stored now.
		m.hour, m.cur = saved.Hour, saved.Streams
		if saved.Seen > 0 && saved.Seen <= now.UnixNano() {
			m.lastSeen = time.Unix(0, saved.Seen)
		}
	}
	if o.Stored != nil {
		m.stored = o.Stored()
	}
	if err := m.Tick(); err != nil {
		return nil, err
	}
	go m.run()
	return m, nil
}

func hourOf(t time.Time) int64 { return t.Unix() - t.Unix()%3600 }

// In counts a fragment of bytes stored for stream.
func (m *Meter) In(stream string, bytes int) {
	m.mu.Lock()
	c := m.countsLocked(stream)
	c.BytesIn += int64(bytes)
	c.FragmentsIn++
	t := m.totalLocked(stream)
	t.BytesIn += int64(bytes)
	t.FragmentsIn++
	m.mu.Unlock()
}

// Out counts bytes of stream sent by api.
func (m *Meter) Out(stream string, api API, bytes int) {
	if bytes <= 0 {
		return
	}
	m.mu.Lock()
	c := m.countsLocked(stream)
	if c.BytesOut == nil {
		c.BytesOut = map[API]int64{}
	}
	c.BytesOut[api] += int64(bytes)
	t := m.totalLocked(stream)
	if t.BytesOut == nil {
		t.BytesOut = map[API]int64{}
	}
	t.BytesOut[api] += int64(bytes)
	m.mu.Unlock()
}

func (m *Meter) countsLocked(stream string) *Counts {
	c := m.cur[stream]
	if c == nil {
		c = &Counts{}
		m.cur[stream] = c
	}
	return c
}

func (m *Meter) totalLocked(stream string) *Counts {
	c := m.total[stream]
	if c == nil {
		c = &Counts{}
		m.total[stream] = c
	}
	return c
}

// Totals are the counts since the process started, per stream (what
// /metrics exports as counters). The caller may keep the copy.
func (m *Meter) Totals() map[string]Counts {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]Counts, len(m.total))
	for s, c := range m.total {
		cc := *c
		cc.BytesOut = maps.Clone(c.BytesOut)
		out[s] = cc
	}
	return out
}

func (m *Meter) run() {
	defer close(m.done)
	t := time.NewTicker(m.opts.Every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			if err := m.Tick(); err != nil {
				m.log.Warn("usage: save", "err", err)
			}
		}
	}
}

// Tick samples what is stored, closes the hour if it has passed, and saves
// the current hour. The Meter calls it every Options.Every; tests call it
// with an injected clock.
func (m *Meter) Tick() error {
	now := m.opts.Now()
	var stored map[string]Stored
	if m.opts.Stored != nil {
		stored = m.opts.Stored() // outside the lock: it reads the store
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// What was held since the last sample counts at the last sample's
	// amounts, split at hour boundaries.
	from := m.lastSeen
	for from.Before(now) {
		h := hourOf(from)
		end := time.Unix(h+3600, 0)
		if end.After(now) {
			end = now
		}
		if h != m.hour {
			if err := m.closeHourLocked(h); err != nil {
				return err
			}
		}
		m.integrateLocked(end.Sub(from))
		from = end
	}
	if h := hourOf(now); h != m.hour {
		if err := m.closeHourLocked(h); err != nil {
			return err
		}
	}
	m.lastSeen = now
	if stored != nil {
		m.stored = stored
	}
	return m.saveCurrentLocked()
}

// integrateLocked adds d of the last sample's holdings to the current hour.
func (m *Meter) integrateLocked(d time.Duration) {
	hours := d.Hours()
	if hours <= 0 {
		return
	}
	for s, st := range m.stored {
		if st.Bytes == 0 && st.Fragments == 0 {
			continue
		}
		c := m.countsLocked(s)
		c.ByteHours += float64(st.Bytes) * hours
		c.FragmentHours += float64(st.Fragments) * hours
	}
}

// closeHourLocked appends the current hour to its month's file and starts
// hour next.
func (m *Meter) closeHourLocked(next int64) error {
	if err := m.appendHour(m.hour, m.cur); err != nil {
		return err
	}
	m.hour, m.cur = next, map[string]*Counts{}
	return nil
}

// Close saves the current hour and stops the Meter.
func (m *Meter) Close() error {
	select {
	case <-m.stop:
		return nil
	default:
	}
	close(m.stop)
	<-m.done
	return m.Tick()
}

// Report is the usage of a time range.
type Report struct {
	From, To time.Time // whole hours: From's hour inclusive to To's exclusive
	Streams  []StreamReport
	Total    Counts
}

// StreamReport is one stream's usage in a Report.
type StreamReport struct {
	Stream string
	Counts
}

// Usage adds up the hours in [from, to) — each widened to its whole hour —
// for the streams keep accepts (nil: all), in name order.
func (m *Meter) Usage(from, to time.Time, keep func(stream string) bool) (Report, error) {
	fh, th := hourOf(from), hourOf(to)
	if to.Unix() > th {
		th += 3600
	}
	r := Report{From: time.Unix(fh, 0).UTC(), To: time.Unix(th, 0).UTC()}
	sums := map[string]*Counts{}
	add := func(stream string, c *Counts) {
		if keep != nil && !keep(stream) {
			return
		}
		s := sums[stream]
		if s == nil {
			s = &Counts{}
			sums[stream] = s
		}
		s.add(c)
	}
	// The current hour from memory, the closed ones from the files.
	m.mu.Lock()
	if m.hour >= fh && m.hour < th {
		for s, c := range m.cur {
			add(s, c)
		}
	}
	m.mu.Unlock()
	for month := time.Unix(fh, 0).UTC(); month.Unix() < th; month = month.AddDate(0, 1, 0) {
		month = time.Date(month.Year(), month.Month(), 1, 0, 0, 0, 0, time.UTC)
		err := m.readMonth(month, func(rec hourRecord) {
			if rec.Hour >= fh && rec.Hour < th {
				add(rec.Stream, &rec.Counts)
			}
		})
		if err != nil {
			return r, err
		}
	}
	names := slices.Sorted(maps.Keys(sums))
	for _, s := range names {
		r.Streams = append(r.Streams, StreamReport{Stream: s, Counts: *sums[s]})
		r.Total.add(sums[s])
	}
	return r, nil
}

// hourRecord is a line of a month's file: one stream's counts in one hour.
type hourRecord struct {
	Hour   int64  `json:"hour"` // Unix seconds of the hour's start
	Stream string `json:"stream"`
	Counts
}

// currentFile is the saved current hour.
type currentFile struct {
	Hour    int64              `json:"hour"`
	Seen    int64              `json:"seen"` // Unix ns of the last sample of what is stored
	Streams map[string]*Counts `json:"streams"`
}

const currentName = "current.json"

func monthName(t time.Time) string { return "hours-" + t.UTC().Format("2006-01") + ".jsonl" }

// appendHour appends an hour's counts to its month's file and fsyncs it,
// unless the file already ends with that hour or a later one (a crash after
// the append and before current.json moved on).
func (m *Meter) appendHour(hour int64, streams map[string]*Counts) error {
	path := filepath.Join(m.opts.Dir, monthName(time.Unix(hour, 0)))
	if last, err := lastHour(path); err != nil {
		return err
	} else if last >= hour {
		return nil
	}
	var buf []byte
	for _, s := range slices.Sorted(maps.Keys(streams)) {
		c := streams[s]
		if c.empty() {
			continue
		}
		line, err := json.Marshal(hourRecord{Hour: hour, Stream: s, Counts: *c})
		if err != nil {
			return fmt.Errorf("usage: %w", err)
		}
		buf = append(append(buf, line...), '\n')
	}
	if len(buf) == 0 {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return fmt.Errorf("usage: append to %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("usage: fsync %s: %w", path, err)
	}
	return f.Close()
}

// lastHour is the hour of a month file's last complete line; 0 when the
// file is missing or empty. A torn last line (a crash mid-append) is cut
// off, so that the hour is appended again whole.
func lastHour(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("usage: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("usage: %w", err)
	}
	size := st.Size()
	const tail = 64 << 10
	off := max(0, size-tail)
	b := make([]byte, size-off)
	if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
		return 0, fmt.Errorf("usage: read %s: %w", path, err)
	}
	end := len(b)
	if end > 0 && b[end-1] != '\n' { // torn
		cut := strings.LastIndexByte(string(b), '\n') + 1
		if err := f.Truncate(off + int64(cut)); err != nil {
			return 0, fmt.Errorf("usage: repair %s: %w", path, err)
		}
		end = cut
	}
	if end == 0 {
		return 0, nil
	}
	start := strings.LastIndexByte(string(b[:end-1]), '\n') + 1
	var rec hourRecord
	if err := json.Unmarshal(b[start:end], &rec); err != nil {
		return 0, fmt.Errorf("usage: %s: last line: %w", path, err)
	}
	return rec.Hour, nil
}

// readMonth calls each for every record of a month's file, reading it line
// by line (memory bounded by a line, not the file).
func (m *Meter) readMonth(month time.Time, each func(hourRecord)) error {
	path := filepath.Join(m.opts.Dir, monthName(month))
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		var rec hourRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return fmt.Errorf("usage: %s line %d: %w", path, line, err)
		}
		each(rec)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("usage: read %s: %w", path, err)
	}
	return nil
}

// saveCurrentLocked writes the current hour to current.json, atomically.
func (m *Meter) saveCurrentLocked() error {
	b, err := json.Marshal(currentFile{Hour: m.hour, Seen: m.lastSeen.UnixNano(), Streams: m.cur})
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	path := filepath.Join(m.opts.Dir, currentName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("usage: fsync %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	return nil
}

// readCurrent reads current.json; nil when there is none.
func (m *Meter) readCurrent() (*currentFile, error) {
	b, err := os.ReadFile(filepath.Join(m.opts.Dir, currentName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	var cf currentFile
	if err := json.Unmarshal(b, &cf); err != nil {
		// Written by rename, so never torn; a damaged file loses one hour's
		// metering, not the server.
		m.log.Warn("usage: current.json is damaged; the current hour's usage so far is lost", "err", err)
		return nil, nil
	}
	if cf.Streams == nil {
		cf.Streams = map[string]*Counts{}
	}
	return &cf, nil
}
