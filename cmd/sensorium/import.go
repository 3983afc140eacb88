package main

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sensorium-io/sensorium/sdk"
)

func newImportCmd() *cobra.Command {
	var stream string
	cmd := &cobra.Command{
		Use:   "import FILE.mkv",
		Short: "Put an MKV file into a stream with PutMedia (an archive downloaded with GetMedia, a recording)",
		Long: `Send an MKV file's fragments (its Clusters) to a stream in one PutMedia
session and wait until each is PERSISTED. The file may be a download of
GetMedia or GetMediaForFragmentList, from Kinesis Video Streams or from
Sensorium (sensorium get): the fragments keep their producer timestamps,
and the old fragment numbers and server timestamps become the tags
origin_fragment_number and origin_server_timestamp (docs/NATS.md). Cluster
timecodes must be absolute (ms since the Unix epoch), as GetMedia writes
them. The stream must exist; it is not created.`,
		Example: `  sensorium import archive.mkv --stream cam-1
  sensorium get pump-1 -o pump-1.mkv && sensorium import pump-1.mkv --stream pump-1-copy --endpoint http://other:8080`,
		Args: exactArgs(1, "an MKV file"),
	}
	client := addEndpoint(cmd)
	cmd.Flags().StringVar(&stream, "stream", "", "the stream to put the file into (required)")
	_ = cmd.MarkFlagRequired("stream")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if stream == "" {
			return usagef("--stream is empty")
		}
		c, err := client()
		if err != nil {
			return err
		}
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		var size int64
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
		imp := &importer{name: args[0], stream: stream, size: size, body: countingReader{r: f, n: new(atomic.Int64)}}
		imp.live = term.IsTerminal(int(os.Stderr.Fd()))
		err = c.PutMedia(cmd.Context(), sdk.PutMediaInput{Stream: sdk.ByName(stream), Body: imp.body}, imp.event)
		imp.endLine()
		if err != nil {
			return err
		}
		if imp.refused != nil {
			ev := imp.refused
			return fmt.Errorf("%s: the fragment at %s was refused after %d were stored: %s (%s %d)",
				args[0], time.UnixMilli(ev.FragmentTimecode).UTC().Format(time.RFC3339Nano), imp.persisted, ev.Message, ev.ErrorCode, int(ev.ErrorID))
		}
		if imp.persisted == 0 {
			return fmt.Errorf("%s: no fragment was stored: the file holds no Cluster", args[0])
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: %d fragments (%s) stored in %s, producer time %s to %s\n", args[0], imp.persisted, humanBytes(imp.body.n.Load()), stream,
			time.UnixMilli(imp.first).UTC().Format(time.RFC3339Nano), time.UnixMilli(imp.last).UTC().Format(time.RFC3339Nano))
		return nil
	}
	return cmd
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
