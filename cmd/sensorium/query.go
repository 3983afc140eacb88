package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sensorium-io/sensorium/sdk"
)

// queryFlags are the flags of `sensorium query`.
type queryFlags struct {
	out, start, end, basis, channels, layout, shape string
	track                                           uint64
	window, hop, batchRows                          int
	aggregates                                      string
	inputs                                          []string
	rate                                            float64
	reference                                       int
	interpolation                                   string
	follow                                          bool
}

func newQueryCmd() *cobra.Command {
	var q queryFlags
	cmd := &cobra.Command{
		Use:   "query [NAME]",
		Short: "Read a time range of a stream's samples as Apache Arrow",
		Long: `Read the samples of a time range (start inclusive, end exclusive) as
Apache Arrow: a "time" column (timestamp[ns, UTC]) and one column per
channel or field, exactly as they were produced. RADAR detections and LIDAR
points come one row per element (with frame_time and index), or with
--layout frames one row per scan or sweep with list columns.

The file's extension chooses its format:
  .arrow     Arrow IPC file format (footer and all; also .ipc): pyarrow
             ipc.open_file, pandas.read_feather, polars.read_ipc
  .arrows    Arrow IPC stream format: pyarrow ipc.open_stream,
             polars.read_ipc_stream; what -o - writes to stdout
  .parquet   Parquet: zstd, time delta-encoded, row groups of up to 1 Mi
             rows or 128 MiB, min/max statistics per page
  .csv       a header line, then a row per sample; times in RFC 3339
A range without samples still writes a valid file (the schema, or the CSV
header), exits 0, and says on stderr what the stream holds.

--shape windows returns a row per window of --window samples every --hop
samples: its start, its source fragments and a fixed-size list (a tensor)
per channel. Windows sit on a grid from --start, so the windows of several
streams line up; a gap in the samples drops the windows it cuts.

--shape aggregate returns a row of statistics per window of the same grid:
its grid time (start), its sample count (count), and per channel the
--aggregates (min, max, mean, rms; default all) as columns x_min, x_rms …
A window a gap or the range's end cuts comes with the samples it has.

--shape aligned puts several streams on one clock: the stream NAME (with
--channels) and each --input, on a grid of --rate Hz or on the sample times
of input --reference, with the --interpolation you choose (none, previous,
linear); a gap comes back as nulls, never filled.

--follow keeps the query open: the stored rows, then new ones as they are
stored, until --end or Ctrl-C; the file written so far is then complete.
It writes the Arrow stream format (.arrows, or stdout), Parquet or CSV;
not a .arrow file, whose footer would come only at the end.`,
		Example: `  sensorium query pump-1 --start -1h -o last-hour.arrow
  sensorium query pump-1 --start 2026-11-24T12:00:00Z --end 2026-11-24T12:01:00Z --channels x,z -o minute.arrow
  sensorium query lidar-1 --start -10s --channels x,y,z,intensity --layout frames -o sweeps.arrow
  sensorium query pump-1 --start -1h -o last-hour.parquet     # for pandas, Spark, DuckDB
  sensorium query imu-1 --start -1m -o last-minute.csv
  sensorium query pump-1 --start -7d --shape windows --window 25600 --channels x -o windows.parquet
  sensorium query pump-1 --start -1d --shape aggregate --window 25600 --aggregates min,max,rms -o daily.csv
  sensorium query pump-1 --channels x --input motor-1:current --shape aligned --rate 1000 --interpolation linear --start -1h -o aligned.arrow
  sensorium query pump-1 --start -1m --follow -o live.arrows     # until Ctrl-C
  sensorium query pump-1 --start -1m -o - | python -c "import sys, pyarrow as pa; print(pa.ipc.open_stream(sys.stdin.buffer).read_all())"
  python -c "import pyarrow as pa; print(pa.ipc.open_file('minute.arrow').read_all())"
  python -c "import pandas as pd; print(pd.read_feather('minute.arrow'))"`,
		Args: cobra.MaximumNArgs(1),
	}
	client := addEndpoint(cmd)
	f := cmd.Flags()
	f.StringVarP(&q.out, "output", "o", "-", "file to write: .arrow (Arrow IPC file), .arrows (Arrow IPC stream), .parquet or .csv; - for an Arrow IPC stream on stdout")
	f.StringVar(&q.start, "start", "", "first time, inclusive (RFC 3339, -1h, Unix seconds); required")
	f.StringVar(&q.end, "end", "now", "end time, exclusive (with --follow: none unless given)")
	f.StringVar(&q.basis, "basis", "producer", "time basis: producer or server (samples only)")
	f.StringVar(&q.channels, "channels", "", "comma-separated channels or fields (default: all)")
	f.StringVar(&q.layout, "layout", "rows", "rows (one per sample, detection, point) or frames (one per frame, list columns)")
	f.Uint64Var(&q.track, "track", 0, "track number (default: the first track of a kind the server reads)")
	f.StringVar(&q.shape, "shape", "samples", "samples, windows, aggregate or aligned")
	f.IntVar(&q.window, "window", 0, "windows, aggregate: samples per window")
	f.IntVar(&q.hop, "hop", 0, "windows, aggregate: samples from one window's start to the next (default: --window)")
	f.StringVar(&q.aggregates, "aggregates", "", "aggregate: the statistics, comma-separated: min, max, mean, rms (default: all)")
	f.StringArrayVar(&q.inputs, "input", nil, "aligned: another stream, as STREAM or STREAM:field,field (repeatable)")
	f.Float64Var(&q.rate, "rate", 0, "aligned: the grid's rate in Hz (default: the sample times of input --reference)")
	f.IntVar(&q.reference, "reference", 0, "aligned, without --rate: the input whose sample times are the grid (0 is NAME)")
	f.StringVar(&q.interpolation, "interpolation", "", "aligned: none, previous or linear")
	f.BoolVar(&q.follow, "follow", false, "keep reading new rows as they are stored, until --end or Ctrl-C")
	f.IntVar(&q.batchRows, "batch-rows", 0, "rows per record batch (default: the server's)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		in, format, err := q.input(args, cmd.Flags().Changed("end"), cmd.Flags().Changed("channels"))
		if err != nil {
			return err
		}
		if err := refuseTerminal(q.out); err != nil {
			return err
		}
		c, err := client()
		if err != nil {
			return err
		}
		name := in.Stream
		if name == "" {
			name = in.Inputs[0].Stream
		}
		return runQuery(cmd.Context(), c, in, format, q.out, name, cmd.ErrOrStderr())
	}
	return cmd
}

// input checks the flags (usage errors, exit 2, cost no request; the server
// checks them too) and builds the query.
func (q *queryFlags) input(args []string, endSet, channelsSet bool) (sdk.QueryInput, string, error) {
	var in sdk.QueryInput
	if q.start == "" {
		return in, "", usagef("--start is required (e.g. --start -1h)")
	}
	format, err := outputFormat(q.out, q.follow)
	if err != nil {
		return in, "", err
	}
	if q.basis != "producer" && q.basis != "server" {
		return in, "", usagef("--basis must be producer or server, not %q", q.basis)
	}
	if q.layout != "rows" && q.layout != "frames" {
		return in, "", usagef("--layout must be rows or frames, not %q", q.layout)
	}
	var fields []string
	if channelsSet {
		for _, ch := range strings.Split(q.channels, ",") {
			if ch = strings.TrimSpace(ch); ch == "" {
				return in, "", usagef("--channels %q has an empty channel name", q.channels)
			}
			fields = append(fields, ch)
		}
	}
	in = sdk.QueryInput{Basis: q.basis, Layout: q.layout, Follow: q.follow, BatchRows: q.batchRows}
	if q.basis == "producer" {
		in.Basis = ""
	}
	if q.layout == "rows" {
		in.Layout = ""
	}
	switch q.shape {
	case "samples", "windows", "aggregate":
		if len(args) != 1 {
			return in, "", usagef("sensorium query takes a stream name (see sensorium query --help)")
		}
		if len(q.inputs) > 0 || q.rate != 0 || q.interpolation != "" {
			return in, "", usagef("--input, --rate and --interpolation are for --shape aligned")
		}
		in.Stream, in.Track, in.Channels = args[0], q.track, fields
		if q.shape != "samples" {
			if q.window < 1 || q.hop < 0 {
				return in, "", usagef("--shape %s needs --window N (samples per window, e.g. 25600), and --hop ≥ 1 if given", q.shape)
			}
			in.Shape, in.Window = q.shape, &sdk.QueryWindow{Length: q.window, Hop: q.hop}
		} else if q.window != 0 || q.hop != 0 {
			return in, "", usagef("--window and --hop are for --shape windows or aggregate")
		}
		if q.aggregates != "" {
			if q.shape != "aggregate" {
				return in, "", usagef("--aggregates is for --shape aggregate")
			}
			for _, s := range strings.Split(q.aggregates, ",") {
				in.Aggregates = append(in.Aggregates, strings.TrimSpace(s))
			}
		}
	case "aligned":
		if len(args) == 1 {
			in.Inputs = append(in.Inputs, sdk.QueryInputStream{Stream: args[0], Fields: fields, Track: q.track})
		} else if channelsSet || q.track != 0 {
			return in, "", usagef("--channels and --track are NAME's; name the stream, or give each --input its fields")
		}
		for _, s := range q.inputs {
			stream, list, _ := strings.Cut(s, ":")
			if stream == "" {
				return in, "", usagef("--input %q: want STREAM or STREAM:field,field", s)
			}
			x := sdk.QueryInputStream{Stream: stream}
			if list != "" {
				x.Fields = strings.Split(list, ",")
			}
			in.Inputs = append(in.Inputs, x)
		}
		switch {
		case len(in.Inputs) == 0:
			return in, "", usagef("--shape aligned needs streams: NAME and/or --input STREAM[:fields]")
		case q.interpolation != "none" && q.interpolation != "previous" && q.interpolation != "linear":
			return in, "", usagef("--shape aligned needs --interpolation none, previous or linear")
		case q.rate < 0 || (q.rate == 0 && (q.reference < 0 || q.reference >= len(in.Inputs))):
			return in, "", usagef("--shape aligned needs --rate HZ, or --reference 0 to %d (the input whose sample times are the grid)", len(in.Inputs)-1)
		}
		in.Shape, in.Align = "aligned", &sdk.QueryAlign{Rate: q.rate, Reference: q.reference, Interpolation: q.interpolation}
	default:
		return in, "", usagef("--shape must be samples, windows, aggregate or aligned, not %q", q.shape)
	}
	now := time.Now()
	if in.Start, err = parseTime(q.start, now); err != nil {
		return in, "", err
	}
	if !q.follow || endSet {
		if in.End, err = parseTime(q.end, now); err != nil {
			return in, "", err
		}
		if !in.End.After(in.Start) {
			return in, "", usagef("--end %s is not after --start %s (the range is start inclusive, end exclusive)", q.end, q.start)
		}
	}
	return in, format, nil
}

// outputFormat chooses the format of -o path by its extension. A live query
// (--follow) writes the Arrow stream format: the file format's footer comes
// only at the end, so a file being followed could not be opened, and one cut
// off by a crash could never be.
func outputFormat(path string, follow bool) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); {
	case path == "-" || ext == ".arrows":
		return formatArrowStream, nil
	case ext == ".arrow" || ext == ".ipc":
		if follow {
			return "", usagef("-o %s: --follow writes the Arrow stream format, which is named .arrows (a .arrow file's footer is written only at its end); use -o %s", path, strings.TrimSuffix(path, filepath.Ext(path))+".arrows")
		}
		return formatArrowFile, nil
	case ext == ".parquet":
		return formatParquet, nil
	case ext == ".csv":
		return formatCSV, nil
	}
	return "", usagef("-o %s: write .arrow (Arrow IPC file), .arrows (Arrow IPC stream), .parquet or .csv", path)
}

// runQuery runs the query and writes its result to out, and what it did
// (rows, bytes, or what the streams hold when the range had no rows) to
// stderr.
func runQuery(ctx context.Context, c *sdk.Client, in sdk.QueryInput, format, out, name string, stderr io.Writer) error {
	body, err := c.QueryRaw(ctx, in)
	if err != nil {
		return err
	}
	defer body.Close()
	w, isFile, err := output(out)
	if err != nil {
		return err
	}
	// Batch by batch, even Arrow stream to Arrow stream: the rows are
	// counted (an empty range says so), and a live query stopped with
	// Ctrl-C leaves a complete file of the batches so far.
	pr, done := progress(io.Discard, "query "+name) // counts what arrives
	rows, err := convertTable(format, io.TeeReader(body, pr), w)
	done()
	if in.Follow && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		err = nil // the user stopped it: what came is written
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if isFile {
			os.Remove(out) // a cut-off file is worse than none
		}
		return fmt.Errorf("query %s: %w", name, err)
	}
	if rows == 0 {
		// Exit 0 with a valid empty file, but never silently: the range
		// was most likely not where the data are.
		fmt.Fprintf(stderr, "0 rows; %s\n", holdings(ctx, c, in))
	} else if isFile {
		fmt.Fprintf(stderr, "%s rows\n", strconv.FormatInt(rows, 10))
	}
	if isFile {
		var n int64
		if fi, serr := os.Stat(out); serr == nil {
			n = fi.Size()
		}
		fmt.Fprintf(stderr, "wrote %s to %s\n", humanBytes(n), out)
	}
	return nil
}
