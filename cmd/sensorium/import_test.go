package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
)

// archiveFile writes an MKV file laid out as the seed service's GetMedia
// writes it (a document per fragment, the server's tags around each
// Cluster) and returns its path.
func archiveFile(t *testing.T, start time.Time, fragments int, extra []mkv.SimpleTag) string {
	t.Helper()
	var b []byte
	for k := 0; k < fragments; k++ {
		ms := start.UnixMilli() + int64(k)*1000
		b = mkv.AppendEBMLHeader(b, "matroska")
		b = mkv.AppendSegmentStart(b)
		b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale})
		b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: "S_SENSORIUM/OPAQUE", CodecPrivate: []byte("x")}})
		b = mkv.AppendTags(b, append([]mkv.SimpleTag{
			{Name: mkv.TagFragmentNumber, Value: fmt.Sprintf("9134385233318%d", k)},
			{Name: mkv.TagServerTimestamp, Value: fmt.Sprintf("%d.%03d", (ms+500)/1000, (ms+500)%1000)},
			{Name: mkv.TagProducerTimestamp, Value: fmt.Sprintf("%d.%03d", ms/1000, ms%1000)},
		}, extra...))
		b = mkv.AppendCluster(b, uint64(ms), []mkv.Block{
			{Track: 1, Keyframe: true, Data: []byte(fmt.Sprintf("f%d.0", k))},
			{Track: 1, Timecode: 500, Data: []byte(fmt.Sprintf("f%d.1", k))},
		})
		b = mkv.AppendTags(b, []mkv.SimpleTag{{Name: mkv.TagMillisBehindNow, Value: "1000"}, {Name: mkv.TagContinuationToken, Value: fmt.Sprintf("9134385233318%d", k)}})
	}
	path := filepath.Join(t.TempDir(), "archive.mkv")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// streamFrames reads a stream with GetMedia: each frame's time, bytes and
// origin_fragment_number.
func streamFrames(t *testing.T, c *sdk.Client, stream string) []string {
	t.Helper()
	rc, err := c.GetMedia(context.Background(), sdk.ByName(stream), sdk.StartEarliest(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	mr := sdk.NewMediaReader(rc)
	var out []string
	for {
		fr, err := mr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d %s %s", fr.Timestamp, fr.Data, fr.Fragment.Tags[mkv.TagOriginFragmentNumber]))
	}
}

// `sensorium import` puts a GetMedia download into a stream; `sensorium
// get` of that stream, imported into another, reads back the same frames
// with the same origin; a reserved tag fails the import with exit 1 and the
// service's code; a missing --stream is a usage error.
func TestImportArchive(t *testing.T) {
	srv := startServer(t)
	ep := srv.HTTPURL()
	c := sdk.NewClient(ep, nil)
	for _, s := range []string{"cam", "copy", "reserved"} {
		if _, err := c.CreateStream(context.Background(), sdk.CreateStreamInput{StreamName: s, DataRetentionInHours: 1}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	path := archiveFile(t, start, 3, nil)
	code, stdout, stderr := runCLIOut(t, "import", path, "--stream", "cam", "--endpoint", ep, "--nats", srv.NATSURL())
	if code != 0 || !strings.Contains(stdout, "3 fragments") {
		t.Fatalf("import: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	want := streamFrames(t, c, "cam")
	if len(want) != 6 || !strings.HasPrefix(want[0], fmt.Sprintf("%d f0.0 91343852333180", start.UnixNano())) {
		t.Fatalf("cam reads back %q", want)
	}
	// The origin is listed too.
	code, stdout, stderr = runCLIOut(t, "fragments", "cam", "--metadata", "--endpoint", ep)
	if code != 0 || strings.Count(stdout, "origin_fragment_number=9134385233318") != 3 || !strings.Contains(stdout, "origin_server_timestamp=") {
		t.Fatalf("fragments --metadata: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	out := filepath.Join(t.TempDir(), "cam.mkv")
	if code, stderr := runCLI(t, "get", "cam", "-o", out, "--endpoint", ep); code != 0 {
		t.Fatalf("get: exit %d: %s", code, stderr)
	}
	if code, stdout, stderr := runCLIOut(t, "import", out, "--stream", "copy", "--endpoint", ep, "--nats", srv.NATSURL()); code != 0 {
		t.Fatalf("re-import: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if got := streamFrames(t, c, "copy"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("copy reads back\n%q\nwant\n%q", got, want)
	}

	bad := archiveFile(t, start, 1, []mkv.SimpleTag{{Name: "AWS_KINESISVIDEO_CAMERA", Value: "1"}})
	code, stderr = runCLI(t, "import", bad, "--stream", "reserved", "--endpoint", ep, "--nats", srv.NATSURL())
	if code != exitFailure || !strings.Contains(stderr, "INVALID_MKV_DATA 4006") || !strings.Contains(stderr, "AWS_KINESISVIDEO_CAMERA") {
		t.Fatalf("reserved tag: exit %d, stderr %q", code, stderr)
	}
	if code, stderr := runCLI(t, "import", path, "--endpoint", ep); code != exitUsage {
		t.Fatalf("no --stream: exit %d, stderr %q", code, stderr)
	}
}

// Against a server with --credentials, an MKV import signs its HTTP calls
// and logs in to NATS with the key of --profile; an unsigned one is refused
// before anything is sent.
func TestImportSigned(t *testing.T) {
	const id, secret = "AKIDIMPORTEXAMPLE", "import-secret-0123456789abcdef"
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("[ops]\naws_access_key_id = "+id+"\naws_secret_access_key = "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := server.Start(context.Background(), server.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	ep := srv.HTTPURL()
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "")
	if code, stderr := runCLI(t, "stream", "create", "cam", "--retention-hours", "1", "--endpoint", ep, "--profile", "ops"); code != 0 {
		t.Fatalf("signed create: exit %d: %s", code, stderr)
	}
	path := archiveFile(t, time.Now().Add(-time.Hour), 2, nil)
	if code, stderr := runCLI(t, "import", path, "--stream", "cam", "--endpoint", ep, "--nats", srv.NATSURL()); code != exitFailure || !strings.Contains(stderr, "MissingAuthenticationToken") {
		t.Fatalf("unsigned import: exit %d: %s", code, stderr)
	}
	if code, stdout, stderr := runCLIOut(t, "import", path, "--stream", "cam", "--endpoint", ep, "--nats", srv.NATSURL(), "--profile", "ops"); code != 0 || !strings.Contains(stdout, "2 fragments") {
		t.Fatalf("signed import: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
