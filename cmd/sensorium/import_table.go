package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/sampletable"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
)

// `sensorium import FILE.csv|.parquet|.arrow|.arrows --stream S` puts a
// sampled signal kept in a table into a stream: one scalar track, through
// the SDK's producer (PutSamples: the same codecs and the same PERSISTED
// path as a live producer). docs/IMPORT.md is the user's account of the
// rules; this file says why they are what they are.
//
// Resuming. Every chunk of samples (sampletable.Chunk) is one frame and
// one fragment, cut at the same places in every run, and the chunks go in
// segments of importSegmentChunks, each sent by a producer whose id is
// derived from the file, the stream and the options, and drained (every
// fragment PERSISTED) before the next segment starts. The store remembers
// every (producer id, sequence) it applied (store/dedupe.go, 30 days) and
// answers a re-send of one with PERSISTED (Duplicate) without storing it
// again. A re-run lists the stream's fragments in the file's time range:
// they are a prefix of the file's chunks (a producer's fragments are stored
// in order, and a segment starts only once the one before is stored), so
// the run skips the segments already stored and sends the first one not
// complete again from its start, under its own producer id: what is
// stored of it, and what the killed run left on the bus to be stored
// later, is answered as duplicate, and the rest is stored once.

const (
	// importSegmentChunks is how many chunks one producer sends before it
	// is drained: at most 256 × 768 KiB of raw samples are sent again after
	// a crash, and the drain (one PERSISTED round trip) costs about 1 % of a
	// segment's time.
	importSegmentChunks   = 256
	importProducerBuffer  = 128 << 20
	defaultImportNATSPort = "4222"
)

// tableFlags are the import flags of the table kinds. They are read by
// name at run time, and added only when no other kind has added one of the
// same name (a shared name means the same thing).
var tableFlagDefs = []struct {
	name, def, usage string
	kind             string // "string", "bool", "int", "float"
}{
	{"time-column", "", `CSV/Parquet/Arrow: the time column (default: a timestamp column, or one named time, timestamp, datetime, t or ts); "none": the file has none (give --start and --rate)`, "string"},
	{"time-unit", "", "CSV/Parquet/Arrow: unit of a numeric time column: s, ms, us or ns (default: from its name, \"time [ms]\" or time_ms, else from the first value's size)", "string"},
	{"start", "", "CSV/Parquet/Arrow: time of the first sample of a file without a time column, or the origin of a time column of offsets (RFC 3339 or Unix seconds)", "string"},
	{"rate", "", "CSV/Parquet/Arrow: sample rate in Hz (default: the file's sensorium.sample_rate metadata, else measured from the time column)", "float"},
	{"channels", "", "CSV/Parquet/Arrow: the columns to import as channels, comma-separated (default: every column but the time column)", "string"},
	{"units", "", `CSV/Parquet/Arrow: units, over the header's ("x [m/s^2]") and the file's metadata: "x=m/s^2,y=m/s^2", or one unit for every channel: "g"`, "string"},
	{"type", "", "CSV/Parquet/Arrow: sample type: int16, int32, float32 or float64 (default: from the columns' types; CSV: float64)", "string"},
	{"check", "", "CSV/Parquet/Arrow: read the whole file and say what it would store (rate, rows, gaps, fragments), sending nothing; no server needed", "bool"},
	{"create", "", "CSV/Parquet/Arrow: create the stream when it does not exist (MCAP creates its streams, MKV never)", "bool"},
	// The same default as the other kinds' (the first to add the flag sets
	// it): a stream that an import creates keeps a day unless told.
	{"retention-hours", "24", "with --create: the new stream's retention in hours", "int"},
	{"nats", "", "NATS URL of the server the fragments (MKV) or samples (CSV/Parquet/Arrow) are published to (default $SENSORIUM_NATS, else port 4222 of --endpoint's host)", "string"},
}

func init() {
	registerImporter(fileImporter{
		exts: sampletable.Extensions,
		about: `CSV, Parquet, Arrow (.csv, .tsv, .csv.gz, .csv.zst, .parquet, .arrow, .feather, .ipc, .arrows):
    a sampled signal, one column per channel, into --stream as a scalar
    track. Time from a time column (Arrow timestamps of any unit, ISO 8601
    text, or Unix s/ms/us/ns) or from --start and --rate; units from the
    header ("x [m/s^2]"), the file's metadata or --units. What
    'sensorium query' writes imports back to the same samples. Gaps in the
    time column split the signal; a re-run after a crash stores nothing
    twice. See docs/IMPORT.md.`,
		flags: addTableFlags,
		run:   importTable,
	})
}

func addTableFlags(f *pflag.FlagSet) {
	for _, d := range tableFlagDefs {
		if f.Lookup(d.name) != nil {
			continue
		}
		switch d.kind {
		case "string":
			f.String(d.name, d.def, d.usage)
		case "bool":
			f.Bool(d.name, false, d.usage)
		case "int":
			n, _ := strconv.Atoi(d.def)
			f.Int(d.name, n, d.usage)
		case "float":
			f.Float64(d.name, 0, d.usage)
		}
	}
}

// tableOptions reads the table flags of cmd.
type tableOptions struct {
	table     sampletable.Options
	rate      float64
	create    bool
	retention int
	natsURL   string
}

func readTableFlags(cmd *cobra.Command) (tableOptions, error) {
	f := cmd.Flags()
	str := func(name string) string { v, _ := f.GetString(name); return v }
	var o tableOptions
	o.table.TimeColumn = str("time-column")
	o.table.TimeUnit = str("time-unit")
	switch o.table.TimeUnit {
	case "", "s", "ms", "us", "ns":
	default:
		return o, usagef("--time-unit %q: want s, ms, us or ns", o.table.TimeUnit)
	}
	if s := str("start"); s != "" {
		t, err := parseTime(s, time.Now())
		if err != nil {
			return o, usagef("--start: %v", err)
		}
		o.table.Start, o.table.HasStart = t.UnixNano(), true
	}
	o.rate, _ = f.GetFloat64("rate")
	if f.Changed("rate") && !(o.rate >= signals.MinSampleRate && o.rate <= signals.MaxSampleRate) {
		return o, usagef("--rate %v: want a rate in [%g, %g] Hz", o.rate, signals.MinSampleRate, signals.MaxSampleRate)
	}
	if s := str("channels"); s != "" {
		for _, c := range strings.Split(s, ",") {
			if c = strings.TrimSpace(c); c != "" {
				o.table.Channels = append(o.table.Channels, c)
			}
		}
	}
	if s := str("units"); s != "" {
		o.table.Units = map[string]string{}
		if !strings.Contains(s, "=") {
			o.table.Units[""] = s
		} else {
			for _, kv := range strings.Split(s, ",") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || strings.TrimSpace(k) == "" {
					return o, usagef("--units %q: want NAME=UNIT,… or a single unit for every channel", s)
				}
				o.table.Units[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
	}
	switch t := str("type"); t {
	case "":
	case "int16":
		o.table.Type = signals.Int16
	case "int32":
		o.table.Type = signals.Int32
	case "float32":
		o.table.Type = signals.Float32
	case "float64":
		o.table.Type = signals.Float64
	default:
		return o, usagef("--type %q: want int16, int32, float32 or float64", t)
	}
	o.create, _ = f.GetBool("create")
	o.retention, _ = f.GetInt("retention-hours")
	if o.create && o.retention < 1 {
		return o, usagef("--retention-hours %d: an imported stream must keep its data (at least 1 hour)", o.retention)
	}
	o.natsURL = str("nats")
	if o.natsURL == "" {
		o.natsURL = os.Getenv("SENSORIUM_NATS")
	}
	if o.natsURL == "" {
		ep, _ := f.GetString("endpoint")
		u, err := url.Parse(ep)
		if err != nil || u.Hostname() == "" {
			return o, usagef("--nats: cannot derive it from --endpoint %q; give the server's NATS URL", ep)
		}
		o.natsURL = "nats://" + hostPort(u.Hostname(), defaultImportNATSPort)
	}
	return o, nil
}

func hostPort(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

// tableImport is one run of a table import.
type tableImport struct {
	path, stream string
	opts         tableOptions
	desc         *signals.Scalar
	tbl          *sampletable.Table
	first        *sampletable.Batch // the batch read to learn the rate and start
	chunkSize    int
	producerBase string
	timeHow      string
	rateHow      string
}

func importTable(cmd *cobra.Command, c *sdk.Client, path, stream string) error {
	check, _ := cmd.Flags().GetBool("check")
	if stream == "" && !check {
		return usagef("import %s: --stream is required for a table file (or --check, to read it without sending)", path)
	}
	o, err := readTableFlags(cmd)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	imp := &tableImport{path: path, stream: stream, opts: o}
	if err := imp.open(); err != nil {
		return err
	}
	defer func() { imp.tbl.Close() }()
	if check {
		return imp.check(cmd.OutOrStdout())
	}
	if err := imp.prepareStream(ctx, c); err != nil {
		return err
	}
	held := imp.heldLister(ctx, c)
	first, resumed, err := held.peek()
	if err != nil {
		return err
	}
	skip := int64(0)
	if resumed {
		fmt.Fprintf(cmd.ErrOrStderr(), "%s holds fragments from %s on: reading %s to match them with its chunks\n",
			stream, time.UnixMilli(first.ms).UTC().Format(time.RFC3339Nano), path)
		matched, done, err := imp.matchHeld(held)
		if err != nil {
			return err
		}
		if err := imp.checkOwner(ctx, c, held.last); err != nil {
			return err
		}
		if done {
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s already holds all %d fragments of this file (an earlier import): nothing to do\n", path, stream, matched)
			return nil
		}
		skip = matched / importSegmentChunks * importSegmentChunks
		if err := imp.reopen(); err != nil {
			return err
		}
	}
	return imp.send(ctx, cmd, c, skip, resumed)
}

// open opens the table, reads its first batch and settles the signal's
// description: the rate, the sample type, the channels.
func (imp *tableImport) open() error {
	o := imp.opts
	tbl, err := sampletable.Open(imp.path, o.table)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return usagef("%v", err)
		}
		return err
	}
	imp.tbl = tbl
	b := new(sampletable.Batch)
	switch err := tbl.Next(b); {
	case errors.Is(err, io.EOF):
		tbl.Close()
		return fmt.Errorf("%s: no rows after the header: nothing to import", imp.path)
	case err != nil:
		tbl.Close()
		return err
	}
	imp.first = b
	if tbl.TimeName == "" && !(o.table.HasStart && o.rate > 0) {
		tbl.Close()
		return usagef("%s: no time column (the columns are %s): give the first sample's time and the rate with --start and --rate, or name the time column with --time-column",
			imp.path, channelNames(tbl.Channels))
	}
	rate := o.rate
	switch {
	case rate > 0:
		imp.rateHow = "--rate"
	case tbl.Rate > 0:
		rate, imp.rateHow = tbl.Rate, "the file's metadata"
	default:
		r, err := sampletable.EstimateRate(b.Time)
		if err != nil {
			tbl.Close()
			return fmt.Errorf("%s: %w", imp.path, err)
		}
		rate, imp.rateHow = r, "measured from the time column"
	}
	imp.desc = &signals.Scalar{SampleRate: rate, SampleType: tbl.Type, Channels: tbl.Channels}
	if err := imp.desc.Validate(); err != nil {
		tbl.Close()
		return fmt.Errorf("%s: %w", imp.path, err)
	}
	if p := time.Duration(1e9 / rate); p > sampletable.MaxFramePeriod {
		tbl.Close()
		return fmt.Errorf("%s: a rate of %g Hz is a sample every %s; a frame lasts at most %s", imp.path, rate, p, sampletable.MaxFramePeriod)
	}
	imp.chunkSize = sampletable.ChunkSamples(imp.desc)
	imp.timeHow = tbl.TimeConv()
	id, err := imp.identity()
	if err != nil {
		tbl.Close()
		return err
	}
	imp.producerBase = id
	return nil
}

// reopen starts the table again from its first row.
func (imp *tableImport) reopen() error {
	imp.tbl.Close()
	tbl, err := sampletable.Open(imp.path, imp.opts.table)
	if err != nil {
		return err
	}
	imp.tbl, imp.first = tbl, nil
	return nil
}

// identity derives the producer id of the import from what decides its
// fragments: the stream, the file (its size, modification time and first
// and last MiB; hashing all of it would cost a pass over the file before
// the first sample is sent), the signal's description and the time options.
func (imp *tableImport) identity() (string, error) {
	f, err := os.Open(imp.path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	// The modification time too: an edit in the middle of a file that keeps
	// its size changes neither its size nor its first and last MiB, and a
	// resumed import would mix the stored part of the old file with the rest
	// of the new. With it, an edited (or copied, or touched) file is another
	// file, which the stream refuses rather than mixes.
	fmt.Fprintf(h, "sensorium import v1\x00%s\x00%d\x00%d\x00", imp.stream, st.Size(), st.ModTime().UnixNano())
	buf := make([]byte, 1<<20)
	n, _ := f.ReadAt(buf, 0)
	h.Write(buf[:n])
	if st.Size() > int64(len(buf)) {
		n, _ = f.ReadAt(buf, st.Size()-int64(len(buf)))
		h.Write(buf[:n])
	}
	desc, err := imp.desc.MarshalBinary()
	if err != nil {
		return "", err
	}
	h.Write(desc)
	o := imp.opts.table
	fmt.Fprintf(h, "\x00%s\x00%s\x00%d\x00%v\x00%d", o.TimeColumn, o.TimeUnit, o.Start, o.HasStart, imp.chunkSize)
	return "import-" + hex.EncodeToString(h.Sum(nil)[:12]), nil
}

// prepareStream checks that the stream exists and keeps data, or creates it.
func (imp *tableImport) prepareStream(ctx context.Context, c *sdk.Client) error {
	info, err := c.DescribeStream(ctx, sdk.ByName(imp.stream))
	switch {
	case errors.Is(err, sdk.ErrResourceNotFound) && imp.opts.create:
		_, err := c.CreateStream(ctx, sdk.CreateStreamInput{StreamName: imp.stream, DataRetentionInHours: imp.opts.retention, MediaType: "application/x-sensorium"})
		if err != nil && !errors.Is(err, sdk.ErrResourceInUse) { // created meanwhile: fine
			return fmt.Errorf("create stream %s: %w", imp.stream, err)
		}
		return nil
	case errors.Is(err, sdk.ErrResourceNotFound):
		// Not wrapped: the command line would print the API error alone.
		return fmt.Errorf("stream %s does not exist: create it (sensorium stream create %s --retention-hours N) or pass --create", imp.stream, imp.stream)
	case err != nil:
		return err
	case info.DataRetentionInHours == 0:
		return fmt.Errorf("stream %s keeps no data (retention 0 hours): what is imported would reach live readers and be gone; raise its retention (sensorium stream update)", imp.stream)
	}
	return nil
}

// heldFragment is a fragment the stream holds in the file's time range.
type heldFragment struct {
	ms     int64 // producer timestamp, ms
	number string
}

// heldLister lists, page by page as the matching asks for them, the
// stream's fragments that end after the file's first sample (a fragment
// lasts at most 30 s, so one that starts more than 30 s before it cannot
// reach it), in the order the stream holds them, which is producer time's.
// A page at a time, so that resuming the import of a year of a slow signal
// (three million fragments of ten samples) does not hold their list.
type heldLister struct {
	ctx    context.Context
	c      *sdk.Client
	stream string
	in     sdk.ListFragmentsInput
	fromMS int64
	page   []heldFragment
	done   bool
	last   heldFragment // the last one advanced past
}

func (imp *tableImport) heldLister(ctx context.Context, c *sdk.Client) *heldLister {
	from := imp.firstTime()
	return &heldLister{ctx: ctx, c: c, stream: imp.stream, fromMS: floorDiv(from, 1e6),
		in: sdk.ListFragmentsInput{Stream: sdk.ByName(imp.stream), Selector: "PRODUCER_TIMESTAMP",
			Start: time.Unix(0, from-int64(sdk.MaxFragmentDurationLimit)-int64(time.Second)), End: time.Unix(0, math.MaxInt64/2), MaxResults: 1000}}
}

// peek returns the next held fragment; ok is false when there is none.
func (l *heldLister) peek() (h heldFragment, ok bool, err error) {
	for len(l.page) == 0 && !l.done {
		page, next, err := l.c.ListFragments(l.ctx, l.in)
		if err != nil {
			return h, false, fmt.Errorf("list the fragments %s holds: %w", l.stream, err)
		}
		for _, f := range page {
			start := f.ProducerTimestamp.UnixMilli()
			if start+f.FragmentLengthInMilliseconds > l.fromMS || start >= l.fromMS {
				l.page = append(l.page, heldFragment{ms: start, number: f.FragmentNumber})
			}
		}
		l.in.NextToken = next
		l.done = next == "" || len(page) == 0
	}
	if len(l.page) == 0 {
		return h, false, nil
	}
	return l.page[0], true, nil
}

// advance moves past the fragment peek returned.
func (l *heldLister) advance() { l.last, l.page = l.page[0], l.page[1:] }

// firstTime is the time of the file's first sample.
func (imp *tableImport) firstTime() int64 {
	if imp.first.Time != nil {
		return imp.first.Time[0]
	}
	return imp.opts.table.Start
}

// matchHeld reads the file's chunks without sending them and matches them
// against what the stream holds: how many leading chunks it holds, and
// whether that is all of them. A held fragment that is not one of the
// file's chunks, in order, is data from elsewhere in the file's time range:
// the store keeps a stream's producer time going forward, so the import
// cannot go in, and says so.
func (imp *tableImport) matchHeld(held *heldLister) (matched int64, done bool, err error) {
	ck := sampletable.NewChunker(imp.desc, imp.chunkSize, imp.opts.table.Start)
	stop := errors.New("stop")
	match := func(ch *sampletable.Chunk) error {
		defer ck.Release(ch)
		h, ok, err := held.peek()
		if err != nil {
			return err
		}
		if ok && h.ms == floorDiv(ch.Samples.Start, 1e6) {
			held.advance()
			matched++
			return nil
		}
		return stop
	}
	b := imp.first
	for {
		if err := ck.Add(b, match); err != nil {
			if errors.Is(err, stop) {
				break
			}
			return 0, false, err
		}
		if err := imp.tbl.Next(b); err != nil {
			if !errors.Is(err, io.EOF) {
				return 0, false, err
			}
			if err := ck.Close(match); err != nil && !errors.Is(err, stop) {
				return 0, false, err
			}
			done = matched == ck.Stats().Chunks
			break
		}
	}
	h, more, err := held.peek()
	if err != nil {
		return 0, false, err
	}
	if more {
		return 0, false, fmt.Errorf("stream %s already holds fragments from this file's start on that are not this file's chunks (the first, number %s, at %s); "+
			"a stream's time only goes forward, so the file cannot go in among them: import it into another stream (--stream NEW --create)",
			imp.stream, h.number, time.UnixMilli(h.ms).UTC().Format(time.RFC3339Nano))
	}
	return matched, done, nil
}

// importTag is the fragment metadata that names the import a fragment
// came from (tableImport.producerBase), on every fragment.
const importTag = "sensorium_import"

// checkOwner reads the tags of the last fragment of the file's chunks the
// stream holds: an import resumes only what the same import (the same
// file, stream and options) stored. Another file with the same times — a
// log that has grown since, a corrected copy — would otherwise be taken
// for this one: its chunks that look held would be skipped, or sent again
// under another producer id that the store cannot dedupe.
func (imp *tableImport) checkOwner(ctx context.Context, c *sdk.Client, h heldFragment) error {
	rc, err := c.GetMediaForFragmentList(ctx, sdk.ByName(imp.stream), []string{h.number})
	if err != nil {
		return fmt.Errorf("read fragment %s of %s: %w", h.number, imp.stream, err)
	}
	defer rc.Close()
	fr, err := sdk.NewMediaReader(rc).Next()
	if err != nil {
		return fmt.Errorf("read fragment %s of %s: %w", h.number, imp.stream, err)
	}
	if got := fr.Fragment.Tags[importTag]; got != imp.producerBase {
		what := "by a producer other than an import"
		if got != "" {
			what = "by another import (" + got + "): of another file, or a version of this one that has changed since, or with other options"
		}
		return fmt.Errorf("stream %s already holds this file's time range up to %s, written %s; this import (%s) cannot resume it: import the file into another stream (--stream NEW --create)",
			imp.stream, time.UnixMilli(h.ms).UTC().Format(time.RFC3339Nano), what, imp.producerBase)
	}
	return nil
}

// check reads the whole file through the chunker, as an import would, and
// says what it would store: a bad cell or an irregular time column is found
// before anything is sent (a file corrected after a failed import is
// another file, which the stream it went into would refuse).
func (imp *tableImport) check(w io.Writer) error {
	ck := sampletable.NewChunker(imp.desc, imp.chunkSize, imp.opts.table.Start)
	count := func(ch *sampletable.Chunk) error { ck.Release(ch); return nil }
	b := imp.first
	for {
		if err := ck.Add(b, count); err != nil {
			return err
		}
		if err := imp.tbl.Next(b); err != nil {
			if !errors.Is(err, io.EOF) {
				return err
			}
			break
		}
	}
	if err := ck.Close(count); err != nil {
		return err
	}
	st := ck.Stats()
	fmt.Fprintf(w, "%s: %s samples × %d channels (%s) at %s Hz (%s), %s to %s: %d fragments; nothing sent (--check)\n",
		imp.path, groupDigits(st.Rows), len(imp.desc.Channels), imp.desc.SampleType, strconv.FormatFloat(imp.desc.SampleRate, 'g', -1, 64), imp.rateHow,
		time.Unix(0, st.First).UTC().Format(time.RFC3339Nano), time.Unix(0, st.End).UTC().Format(time.RFC3339Nano), st.Chunks)
	imp.notes(w, st)
	return nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// importCounts are the acknowledgements of an import, from the producers'
// event goroutines.
type importCounts struct {
	persisted, duplicates atomic.Int64
	lastEnd               atomic.Int64 // end of the last chunk put, ns
	mu                    sync.Mutex
	refused               *sdk.AckEvent
}

// send reads the table from its start, skips the first skip chunks (stored
// by an earlier run) and puts the others, segment by segment.
func (imp *tableImport) send(ctx context.Context, cmd *cobra.Command, c *sdk.Client, skip int64, resumed bool) error {
	nc, err := nats.Connect(imp.opts.natsURL, append(natsOptions(cmd), nats.Name("sensorium-import"), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))...)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s (the server's --nats address; set it with --nats): %w", imp.opts.natsURL, err)
	}
	defer nc.Close()
	track, err := sdk.ScalarTrack(1, strings.TrimSuffix(filepath.Base(imp.path), filepath.Ext(imp.path)), imp.desc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var counts importCounts
	onAck := func(ev sdk.AckEvent) {
		switch ev.EventType {
		case sdk.EventPersisted:
			counts.persisted.Add(1)
			if ev.Duplicate {
				counts.duplicates.Add(1)
			}
		case sdk.EventError:
			if !ev.Retriable {
				counts.mu.Lock()
				if counts.refused == nil {
					e := ev
					counts.refused = &e
					cancel(fmt.Errorf("the server refused the fragment at %s: %s (%s %d)",
						time.UnixMilli(ev.FragmentTimecode).UTC().Format(time.RFC3339Nano), ev.Message, ev.ErrorCode, int(ev.ErrorID)))
				}
				counts.mu.Unlock()
			}
		}
	}
	var p *sdk.Producer
	seg := int64(-1)
	closeProducer := func() error {
		if p == nil {
			return nil
		}
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer ccancel()
		err := p.Close(cctx)
		p = nil
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			return cause
		}
		return err
	}
	defer closeProducer()

	bar := newImportBar(imp)
	// The reader goroutine parses and cuts chunks while this one encodes
	// and sends them: two cores at work on a file of one signal.
	chunks := make(chan *sampletable.Chunk, 8)
	ck := sampletable.NewChunker(imp.desc, imp.chunkSize, imp.opts.table.Start)
	var readErr error
	go func() {
		defer close(chunks)
		emit := func(ch *sampletable.Chunk) error {
			select {
			case chunks <- ch:
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		b := imp.first
		if b == nil {
			b = new(sampletable.Batch)
			if err := imp.tbl.Next(b); err != nil {
				if !errors.Is(err, io.EOF) {
					readErr = err
				}
				return
			}
		}
		for {
			if err := ck.Add(b, emit); err != nil {
				readErr = err
				return
			}
			bar.update(imp.tbl)
			if err := imp.tbl.Next(b); err != nil {
				if !errors.Is(err, io.EOF) {
					readErr = err
					return
				}
				readErr = ck.Close(emit)
				return
			}
		}
	}()
	t0 := time.Now()
	var sent, sentSamples int64
	var putErr error
	for ch := range chunks {
		if putErr != nil || ch.Index < skip {
			ck.Release(ch)
			continue
		}
		if s := ch.Index / importSegmentChunks; s != seg {
			if err := closeProducer(); err != nil {
				putErr = err
				cancel(err)
				ck.Release(ch)
				continue
			}
			cfg := sdk.ProducerConfig{
				Stream: imp.stream, ProducerID: fmt.Sprintf("%s-%d", imp.producerBase, s), Tracks: []sdk.Track{track},
				// A fragment per chunk, so that a chunk's fragment is the
				// same in every run whatever the timing.
				MinFragmentDuration: time.Nanosecond, MaxFragmentDuration: sdk.MaxFragmentDurationLimit,
				BufferBytes: importProducerBuffer, NoLive: true, OnAck: onAck,
			}
			if seg < 0 && resumed {
				// The segment a killed run was sending: the SDK gives a
				// configured id's fragments message ids of this run, so the
				// bus does not drop them as the killed run's and the store
				// answers Duplicate at once. The short timeout stays as a
				// safety net (a PERSISTED lost on the way is asked for again
				// after it, not after 15 s); the server's steady events keep
				// it from firing while the import runs.
				cfg.PersistTimeout = time.Second
			}
			seg = s
			p, err = sdk.NewProducer(ctx, nc, cfg)
			if err == nil {
				err = p.PutFragmentMetadata(importTag, imp.producerBase, true)
			}
			if err != nil {
				putErr = err
				cancel(err)
				ck.Release(ch)
				continue
			}
		}
		if err := p.PutSamples(ctx, 1, nil, &ch.Samples, codecs.Auto); err != nil {
			putErr = fmt.Errorf("%s: %w", ch.Where, err)
			cancel(putErr)
			ck.Release(ch)
			continue
		}
		sent++
		sentSamples += int64(ch.Samples.N)
		counts.lastEnd.Store(imp.desc.SampleTime(ch.Samples.Start, ch.Samples.N))
		ck.Release(ch)
	}
	if putErr == nil {
		putErr = closeProducer()
	}
	bar.finish()
	elapsed := time.Since(t0)
	if cause := context.Cause(ctx); putErr == nil && cause != nil {
		putErr = cause
	}
	if readErr != nil && !errors.Is(readErr, context.Cause(ctx)) {
		if n := counts.persisted.Load(); n > 0 {
			// The rows before the bad one are stored: say how far, so that
			// nobody takes the stream for empty or for complete.
			return fmt.Errorf("%w (the %d fragments before it are stored in %s, up to %s; the rest of the file is not)", readErr, n, imp.stream,
				time.Unix(0, counts.lastEnd.Load()).UTC().Format(time.RFC3339Nano))
		}
		return readErr
	}
	if putErr != nil {
		again := "; a re-run resumes"
		counts.mu.Lock()
		if counts.refused != nil { // the server's verdict: a re-run would hear it again
			again = ""
		}
		counts.mu.Unlock()
		return fmt.Errorf("import %s into %s: %w (%d fragments PERSISTED%s)", imp.path, imp.stream, putErr, counts.persisted.Load(), again)
	}
	imp.report(cmd.OutOrStdout(), ck.Stats(), sent, sentSamples, skip, counts.duplicates.Load(), elapsed)
	return nil
}

// natsOptions are the NATS credentials of the command's signing flags, for
// a server whose NATS authenticates.
func natsOptions(cmd *cobra.Command) []nats.Option {
	profile, _ := cmd.Flags().GetString("profile")
	creds, err := sdk.LoadCredentials(profile)
	if err != nil || creds == nil {
		return nil
	}
	return creds.NATSOptions()
}

// report prints what the import did.
func (imp *tableImport) report(w io.Writer, st sampletable.Stats, sent, sentSamples, skip, dup int64, elapsed time.Duration) {
	ch := len(imp.desc.Channels)
	fmt.Fprintf(w, "%s: %s samples × %d channels (%s) at %s Hz (%s), %s to %s, into %s: %d fragments stored",
		imp.path, groupDigits(st.Rows), ch, imp.desc.SampleType, strconv.FormatFloat(imp.desc.SampleRate, 'g', -1, 64), imp.rateHow,
		time.Unix(0, st.First).UTC().Format(time.RFC3339Nano), time.Unix(0, st.End).UTC().Format(time.RFC3339Nano), imp.stream, sent-dup)
	if secs := elapsed.Seconds(); secs > 0 && sentSamples > 0 {
		r := float64(sentSamples) * float64(ch) / secs
		rt := float64(sentSamples) / imp.desc.SampleRate / secs // seconds of signal per second
		if r >= 1e6 {
			fmt.Fprintf(w, " in %s (%.1f M samples/s, %s× real time)", elapsed.Round(time.Millisecond), r/1e6, groupDigits(int64(rt)))
		} else {
			fmt.Fprintf(w, " in %s (%.0f samples/s, %s× real time)", elapsed.Round(time.Millisecond), r, groupDigits(int64(rt)))
		}
	}
	fmt.Fprintln(w)
	if skip > 0 || dup > 0 {
		fmt.Fprintf(w, "  resumed: %d fragments were already stored by an earlier run (%d skipped, %d answered as duplicates)\n", skip+dup, skip, dup)
	}
	imp.notes(w, st)
}

// notes says how the time column was read and what was irregular in it.
func (imp *tableImport) notes(w io.Writer, st sampletable.Stats) {
	if imp.timeHow != "" {
		fmt.Fprintf(w, "  time column %s\n", imp.timeHow)
	}
	if st.Gaps > 0 {
		fmt.Fprintf(w, "  %d gaps in the time column (the longest %s, at %s): the signal is stored in pieces, no samples invented\n",
			st.Gaps, time.Duration(st.LongestGap).Round(time.Microsecond), st.LongestGapAt)
	}
	if st.Retimed > 0 {
		fmt.Fprintf(w, "  %d places where the time column drifts more than half a period off the rate (the first at %s): a new block starts at the file's time there\n", st.Retimed, st.RetimedAt)
	}
}

func channelNames(chs []signals.Channel) string {
	names := make([]string, len(chs))
	for i, c := range chs {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

// importBar draws the import's progress on stderr when it is a terminal.
type importBar struct {
	bar *progressbar.ProgressBar
}

func newImportBar(imp *tableImport) *importBar {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return &importBar{}
	}
	_, total := imp.tbl.Progress()
	if total <= 0 {
		total = -1
	}
	opts := []progressbar.Option{
		progressbar.OptionSetDescription(fmt.Sprintf("import %s → %s", filepath.Base(imp.path), imp.stream)),
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionClearOnFinish(),
	}
	if imp.tbl.ProgressUnit() == "bytes" {
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionSetItsString("rows"), progressbar.OptionShowIts())
	}
	return &importBar{bar: progressbar.NewOptions64(total, opts...)}
}

func (b *importBar) update(t *sampletable.Table) {
	if b.bar != nil {
		done, _ := t.Progress()
		_ = b.bar.Set64(done)
	}
}

func (b *importBar) finish() {
	if b.bar != nil {
		_ = b.bar.Finish()
	}
}
