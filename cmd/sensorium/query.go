package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sensorium-io/sensorium/sdk"
)

func newQueryCmd() *cobra.Command {
	var out, start, end, basis, channels, layout string
	var track uint64
	cmd := &cobra.Command{
		Use:   "query NAME",
		Short: "Read a time range of a stream's samples as Apache Arrow",
		Long: `Read the samples of a time range (start inclusive, end exclusive) as an
Arrow IPC stream: a "time" column (timestamp[ns, UTC]) and one column per
channel or field, exactly as they were produced. RADAR detections and LIDAR
points come one row per element (with frame_time and index), or with
--layout frames one row per scan or sweep with list columns.`,
		Example: `  sensorium query pump-1 --start -1h -o last-hour.arrow
  sensorium query pump-1 --start 2026-11-24T12:00:00Z --end 2026-11-24T12:01:00Z --channels x,z -o minute.arrow
  sensorium query lidar-1 --start -10s --channels x,y,z,intensity --layout frames -o sweeps.arrow
  sensorium query pump-1 --start -1h -o last-hour.parquet     # zstd Parquet, for pandas, Spark, DuckDB
  sensorium query imu-1 --start -1m -o last-minute.csv
  python -c "import pyarrow as pa; print(pa.ipc.open_stream('minute.arrow').read_all())"`,
		Args: exactArgs(1, "a stream name"),
	}
	client := addEndpoint(cmd)
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", "-", "file to write: .arrow (Arrow IPC), .parquet (zstd) or .csv; - for Arrow on stdout")
	f.StringVar(&start, "start", "", "first time, inclusive (RFC 3339, -1h, Unix seconds); required")
	f.StringVar(&end, "end", "now", "end time, exclusive")
	f.StringVar(&basis, "basis", "producer", "time basis: producer or server")
	f.StringVar(&channels, "channels", "", "comma-separated channels or fields (default: all)")
	f.StringVar(&layout, "layout", "rows", "rows (one per sample, detection, point) or frames (one per frame, list columns)")
	f.Uint64Var(&track, "track", 0, "track number (default: the first track of a kind the server reads)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if start == "" {
			return usagef("--start is required (e.g. --start -1h)")
		}
		format := formatArrow
		switch ext := strings.ToLower(filepath.Ext(out)); {
		case out == "-" || ext == ".arrow" || ext == ".arrows" || ext == ".ipc":
		case ext == ".parquet":
			format = formatParquet
		case ext == ".csv":
			format = formatCSV
		default:
			return usagef("-o %s: write .arrow, .parquet or .csv", out)
		}
		// The server checks these too; checked here they are usage errors
		// (exit 2) that cost no request.
		if basis != "producer" && basis != "server" {
			return usagef("--basis must be producer or server, not %q", basis)
		}
		if layout != "rows" && layout != "frames" {
			return usagef("--layout must be rows or frames, not %q", layout)
		}
		now := time.Now()
		in := sdk.QueryInput{Stream: args[0], Basis: basis, Track: track, Layout: layout}
		var err error
		if in.Start, err = parseTime(start, now); err != nil {
			return err
		}
		if in.End, err = parseTime(end, now); err != nil {
			return err
		}
		if !in.End.After(in.Start) {
			return usagef("--end %s is not after --start %s (the range is start inclusive, end exclusive)", end, start)
		}
		if cmd.Flags().Changed("channels") {
			for _, ch := range strings.Split(channels, ",") {
				if ch = strings.TrimSpace(ch); ch == "" {
					return usagef("--channels %q has an empty channel name", channels)
				}
				in.Channels = append(in.Channels, ch)
			}
		}
		if err := refuseTerminal(out); err != nil {
			return err
		}
		c, err := client()
		if err != nil {
			return err
		}
		body, err := c.QueryRaw(cmd.Context(), in)
		if err != nil {
			return err
		}
		defer body.Close()
		w, isFile, err := output(out)
		if err != nil {
			return err
		}
		var n int64
		if format == formatArrow {
			pw, done := progress(w, "query "+args[0])
			n, err = io.Copy(pw, body)
			done()
		} else {
			pr, done := progress(io.Discard, "query "+args[0]) // counts what arrives
			var rows int64
			rows, err = convertTable(format, io.TeeReader(body, pr), w)
			done()
			if err == nil && isFile {
				fmt.Fprintf(os.Stderr, "%d rows\n", rows)
			}
			if fi, serr := os.Stat(out); serr == nil {
				n = fi.Size()
			}
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			if isFile {
				os.Remove(out) // a cut-off Arrow stream is worse than none
			}
			return fmt.Errorf("query %s: %w", args[0], err)
		}
		if isFile {
			fmt.Fprintf(os.Stderr, "wrote %s to %s\n", humanBytes(n), out)
		}
		return nil
	}
	return cmd
}
