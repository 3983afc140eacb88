package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/sensorium-io/sensorium/sdk"
)

// A fileImporter puts one kind of file into streams. Each kind lives in
// its own file and registers itself from init with registerImporter, so
// that the import command dispatches on the file's extension without
// knowing the kinds.
type fileImporter struct {
	exts  []string // lower case, with the dot: ".mkv"
	about string   // one line for the command's help: "MKV (Matroska, WebM): ..."
	// flags adds the kind's own flags to the import command; nil if none.
	flags func(f *pflag.FlagSet)
	// run imports path. stream is --stream (empty when not given); each
	// kind says whether it needs it.
	run func(cmd *cobra.Command, c *sdk.Client, path, stream string) error
}

var fileImporters []fileImporter

func registerImporter(fi fileImporter) { fileImporters = append(fileImporters, fi) }

func init() {
	registerImporter(fileImporter{
		exts: []string{".mkv", ".webm", ".mka"},
		about: `MKV (.mkv, .webm, .mka): the file's fragments (its Clusters) go to --stream
    in one PutMedia session. The file may be a download of GetMedia or
    GetMediaForFragmentList, from Kinesis Video Streams or from Sensorium
    (sensorium get): the fragments keep their producer timestamps, and the
    old fragment numbers and server timestamps become the tags
    origin_fragment_number and origin_server_timestamp (docs/NATS.md).
    Cluster timecodes must be absolute (ms since the Unix epoch), as
    GetMedia writes them.`,
		run: importMKV,
	})
}

// importerFor finds the importer of path by its extension.
func importerFor(path string) (fileImporter, error) {
	ext := strings.ToLower(filepath.Ext(path))
	var known []string
	for _, fi := range fileImporters {
		for _, e := range fi.exts {
			if e == ext {
				return fi, nil
			}
			known = append(known, e)
		}
	}
	sort.Strings(known)
	return fileImporter{}, usagef("%s: cannot tell the kind of file from its extension %q; import reads %s", path, ext, strings.Join(known, ", "))
}

func newImportCmd() *cobra.Command {
	var stream string
	var about strings.Builder
	for _, fi := range fileImporters {
		about.WriteString("\n  " + fi.about + "\n")
	}
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Put a file into streams: an MKV archive (GetMedia's output, a recording) or a log",
		Long: `Put a file into streams through the same path as any producer, and wait
until each fragment is PERSISTED. The kind of file is told by its
extension:
` + about.String() + `
An MKV import needs its stream to exist; a table import creates it with
--create (and --retention-hours); an MCAP import creates the streams of its
topics.`,
		Example: `  sensorium import archive.mkv --stream cam-1
  sensorium get pump-1 -o pump-1.mkv && sensorium import pump-1.mkv --stream pump-1-copy --endpoint http://other:8080
  sensorium import run.mcap --stream-prefix robot1. --topics '/velodyne_points,/imu/*'
  sensorium import logger.csv --stream press-7 --create --units "force=kN"
  sensorium import daq.csv.gz --stream rig --start 2026-11-24T12:00:00Z --rate 25600 --time-column none --type int16
  sensorium import big.csv --check                         # what it would store, without a server
  sensorium query pump-1 --start -1h -o hour.parquet && sensorium import hour.parquet --stream pump-1-copy --create`,
		Args: exactArgs(1, "a file"),
	}
	client := addEndpoint(cmd)
	cmd.Flags().StringVar(&stream, "stream", "", "the stream to put the file into")
	for _, fi := range fileImporters {
		if fi.flags != nil {
			fi.flags(cmd.Flags())
		}
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		fi, err := importerFor(args[0])
		if err != nil {
			return err
		}
		if cmd.Flags().Changed("stream") && stream == "" {
			return usagef("--stream is empty")
		}
		c, err := client()
		if err != nil {
			return err
		}
		return fi.run(cmd, c, args[0], stream)
	}
	return cmd
}

// importMKV puts an MKV file into stream in one PutMedia session.
func importMKV(cmd *cobra.Command, c *sdk.Client, path, stream string) error {
	if stream == "" {
		return usagef("import %s: --stream is required for an MKV file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var size int64
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	imp := &importer{name: path, stream: stream, size: size, body: countingReader{r: f, n: new(atomic.Int64)}}
	imp.live = term.IsTerminal(int(os.Stderr.Fd()))
	err = c.PutMedia(cmd.Context(), sdk.PutMediaInput{Stream: sdk.ByName(stream), Body: imp.body}, imp.event)
	imp.endLine()
	if err != nil {
		return err
	}
	if imp.refused != nil {
		ev := imp.refused
		return fmt.Errorf("%s: the fragment at %s was refused after %d were stored: %s (%s %d)",
			path, time.UnixMilli(ev.FragmentTimecode).UTC().Format(time.RFC3339Nano), imp.persisted, ev.Message, ev.ErrorCode, int(ev.ErrorID))
	}
	if imp.persisted == 0 {
		return fmt.Errorf("%s: no fragment was stored: the file holds no Cluster", path)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: %d fragments (%s) stored in %s, producer time %s to %s\n", path, imp.persisted, humanBytes(imp.body.n.Load()), stream,
		time.UnixMilli(imp.first).UTC().Format(time.RFC3339Nano), time.UnixMilli(imp.last).UTC().Format(time.RFC3339Nano))
	return nil
}

// importer follows an import's acknowledgements and shows its progress line.
// PutMedia calls event from one goroutine; the counter of bytes sent is the
// only field another one (the HTTP transport's) writes.
type importer struct {
	name, stream string
	size         int64 // the file's size; 0 when unknown
	body         countingReader
	live         bool // stderr is a terminal: the progress line is redrawn
	shown        time.Time
	persisted    int
	first, last  int64 // producer timecodes (ms) of the first and last stored fragment
	refused      *sdk.AckEvent
}

func (imp *importer) event(ev sdk.AckEvent) {
	switch ev.EventType {
	case sdk.EventPersisted:
		if imp.persisted == 0 {
			imp.first = ev.FragmentTimecode
		}
		imp.persisted++
		imp.last = ev.FragmentTimecode
	case sdk.EventError:
		if imp.refused == nil && !ev.Retriable {
			e := ev
			imp.refused = &e
		}
	}
	if imp.live && time.Since(imp.shown) >= 100*time.Millisecond {
		imp.shown = time.Now()
		sent := humanBytes(imp.body.n.Load())
		if imp.size > 0 {
			sent += " of " + humanBytes(imp.size)
		}
		fmt.Fprintf(os.Stderr, "\rimport %s → %s: %s sent, %d fragments stored\x1b[K", imp.name, imp.stream, sent, imp.persisted)
	}
}

// endLine clears the progress line, if one was drawn.
func (imp *importer) endLine() {
	if imp.live && !imp.shown.IsZero() {
		fmt.Fprint(os.Stderr, "\r\x1b[K")
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
