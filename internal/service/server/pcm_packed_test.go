package server

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/testkit/tools"
	"github.com/sensorium-io/sensorium/sdk"
)

// storedBytes is what the store keeps of a stream's fragments, as stored.
func storedBytes(t *testing.T, srv *Server, stream string) int64 {
	t.Helper()
	infos, err := srv.Store().Fragments(stream, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := srv.Store().NewReader(stream)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	n := int64(0)
	for _, in := range infos {
		f, err := rd.ReadStored(in)
		if err != nil {
			t.Fatal(err)
		}
		n += int64(len(f.Payload))
	}
	return n
}

// packetHashes is ffmpeg's MD5 of every audio packet of an MKV file, in
// order, as it demuxes them (the data only: times are the producer's and
// move with the PutMedia start).
func packetHashes(t *testing.T, path string) (hashes []string, sizes []string) {
	t.Helper()
	ffmpeg := tools.Need(t, "ffmpeg")[0]
	out, err := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-i", path, "-map", "0:a", "-c", "copy", "-f", "framemd5", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg framemd5 of %s: %v", path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 6 {
			continue
		}
		sizes = append(sizes, strings.TrimSpace(f[4]))
		hashes = append(hashes, strings.TrimSpace(f[5]))
	}
	return hashes, sizes
}

// TestPCMIsStoredPackedAndGivenBackExactly: PCM that ffmpeg puts over
// PutMedia (a real speech recording, 16-bit stereo and 24-bit mono) is
// stored losslessly coded — fewer bytes than were put — and GetMedia gives
// back the very packets put: ffmpeg's MD5 of every audio packet of the
// stream read back equals that of the file put.
func TestPCMIsStoredPackedAndGivenBackExactly(t *testing.T) {
	needTools(t, "ffmpeg")
	srv := startServer(t, "")
	ctx := context.Background()
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i, enc := range [][]string{
		{"-c:a", "pcm_s16le", "-ac", "2", "-ar", "48000"},
		{"-c:a", "pcm_s24le", "-ac", "1", "-ar", "44100"},
	} {
		dir := t.TempDir()
		wav, put, back := filepath.Join(dir, "a.wav"), filepath.Join(dir, "put.mkv"), filepath.Join(dir, "back.mkv")
		tools.FFmpeg(t, append(tools.AudioInput(), "-t", "3", wav)...)
		tools.FFmpeg(t, append([]string{"-i", wav}, append(enc, "-cluster_time_limit", "1000", put)...)...)
		body, err := os.ReadFile(put)
		if err != nil {
			t.Fatal(err)
		}
		stream := []string{"speech-s16", "speech-s24"}[i]
		client, _ := newStream(t, srv, stream, 1)
		var numbers []string
		err = client.PutMedia(ctx, sdk.PutMediaInput{Stream: sdk.StreamRef{StreamName: stream}, Body: bytes.NewReader(body), Relative: true, ProducerStart: start},
			func(ev sdk.AckEvent) {
				switch ev.EventType {
				case "PERSISTED":
					numbers = append(numbers, ev.FragmentNumber)
				case "ERROR":
					t.Errorf("PutMedia: %+v", ev)
				}
			})
		if err != nil || len(numbers) < 2 {
			t.Fatalf("%s: PutMedia: %v, %d fragments PERSISTED (want 2 or more)", stream, err, len(numbers))
		}
		// ListFragments says each fragment's size as GetMedia gives it (the
		// seed service's meaning, which the compat suite checks against the
		// frames); the store's own records say what it keeps.
		frags, _, err := client.ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName(stream)})
		if err != nil {
			t.Fatal(err)
		}
		listed := int64(0)
		for _, f := range frags {
			listed += f.FragmentSizeInBytes
		}
		stored := storedBytes(t, srv, stream)
		rc, err := client.GetMediaForFragmentList(ctx, sdk.ByName(stream), numbers)
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(back, out, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes put, %d stored (%.2f×), %d listed, %d served", stream, len(body), stored, float64(stored)/float64(len(body)), listed, len(out))
		if listed < int64(len(body))*9/10 {
			t.Errorf("%s: ListFragments says %d bytes for the %d put: it gives the stored size, not the size read", stream, listed, len(body))
		}
		if float64(stored) > 0.9*float64(len(body)) {
			t.Errorf("%s: %d bytes stored for %d put: the PCM was not packed", stream, stored, len(body))
		}
		wantHash, wantSize := packetHashes(t, put)
		gotHash, gotSize := packetHashes(t, back)
		if len(wantHash) == 0 || strings.Join(gotHash, " ") != strings.Join(wantHash, " ") || strings.Join(gotSize, " ") != strings.Join(wantSize, " ") {
			t.Fatalf("%s: GetMedia gave %d packets, %d were put; their MD5s differ", stream, len(gotHash), len(wantHash))
		}
	}
}
