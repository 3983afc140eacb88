package main

import (
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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
		about: `MKV (.mkv, .webm, .mka): each of the file's Clusters becomes a fragment of
    --stream, published on the server's NATS (--nats) under a dedupe key of
    the file's, so that a re-run after a crash stores nothing twice and
    resumes where the stream stops. The file may be a download of GetMedia
    or GetMediaForFragmentList, from Kinesis Video Streams or from Sensorium
    (sensorium get): the fragments keep their producer timestamps, and the
    old fragment numbers and server timestamps become the tags
    origin_fragment_number and origin_server_timestamp ('sensorium
    fragments S --metadata' lists them). Cluster timecodes must be absolute
    (ms since the Unix epoch), as GetMedia writes them. A server whose NATS
    port is out of reach takes the file with PutMedia over HTTP (--http),
    under the same key. See docs/IMPORT.md.`,
		flags: func(f *pflag.FlagSet) {
			f.Bool("http", false, "MKV: put the file with PutMedia over the HTTP API, for a server whose NATS port is out of reach (the default when --nats and $SENSORIUM_NATS are unset and port 4222 of --endpoint's host does not answer); it resumes the same way")
		},
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
  sensorium import archive.mkv --stream cam-1 --endpoint https://centre.example:8443 --http   # no NATS port open
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
